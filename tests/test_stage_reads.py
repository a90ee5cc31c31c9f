"""Publishing and the published-table checks in proportion to their work: the DuckDB statements
they run do not grow with the number of months (no loop of one statement per month), each side
of the Parquet comparison is read once, and Great Expectations gets frames it checks vectorised.
The statements are counted by `warehouse.query_log`, around the real Dagster assets and checks."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_contracts_expectations import _scores

from assets import publishing
from assets.partitions import partition_key_of, register_months
from data_contracts import load_published_contracts
from data_contracts.expectations import check_published_months, gx_ready_frame
from features import month_ends
from pipelines.resources import PublishedStoreResource, WarehouseResource
from warehouse import open_warehouse
from warehouse.publish import commit_months, parquet_differences, stale_months_rows, sync_published_copies
from warehouse.query_log import CountingConnection, QueryLog, counting_connections

MONTHS = month_ends(date(2025, 1, 1), date(2025, 8, 31))  # eight month ends
SUPPLIERS = 6
PUBLISHED = load_published_contracts()


def _month_scores(as_of_date: date) -> pd.DataFrame:
    scores = _scores(SUPPLIERS).drop(columns=["run_id", "published_at"])
    scores["as_of_date"] = as_of_date
    scores["amount_binding_from"] = pd.Series(pd.NaT, index=scores.index, dtype="datetime64[us]")  # no notice:
    scores["amount_before_binding_usd"] = np.nan  # one must fall in its own month
    return scores


def _month_features(as_of_date: date) -> pd.DataFrame:
    return pd.DataFrame({"as_of_date": as_of_date, "supplier_id": [f"S{i}" for i in range(SUPPLIERS)],
                         "orders_6m": np.arange(SUPPLIERS), "completion_rate_6m": np.linspace(0.5, 1.0, SUPPLIERS)})


def _month_storefront(as_of_date: date) -> pd.DataFrame:
    return pd.DataFrame({"as_of_date": as_of_date, "supplier_id": [f"S{i}" for i in range(SUPPLIERS)],
                         "transactions_12m": np.arange(SUPPLIERS), "deal_value_12m_usd": np.arange(SUPPLIERS) * 10.0,
                         "response_rate_6m": 0.5, "median_response_hours_6m": 2.0, "on_time_shipment_rate_6m": 0.9})


@pytest.fixture
def home(tmp_path):
    """A working warehouse with eight months of scores, features and storefront figures."""
    con = open_warehouse(tmp_path / "warehouse.duckdb")
    for schema in ("features", "models"):
        con.execute(f"CREATE SCHEMA {schema}")
    no_notice = ", amount_binding_from::DATE AS amount_binding_from, amount_before_binding_usd::DOUBLE AS amount_before_binding_usd"
    for table, rows, typed in (("models.scores", _month_scores, no_notice), ("features.supplier_features", _month_features, ""),
                               ("features.storefront_metrics", _month_storefront, "")):
        frame = pd.concat([rows(month) for month in MONTHS], ignore_index=True)
        con.register("_rows", frame)
        con.execute(f"CREATE TABLE {table} AS SELECT * REPLACE (as_of_date::DATE AS as_of_date{typed}) FROM _rows")
        con.unregister("_rows")
    con.close()
    return tmp_path, {
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "published_store": PublishedStoreResource(parquet_root=str(tmp_path / "published"), reports_dir=str(tmp_path / "reports")),
    }


def _publish_and_check(resources: dict, months: list[date]):
    """Materialise the published tables and every check on them for `months`, counting statements."""
    instance = dg.DagsterInstance.ephemeral()
    register_months(instance, [partition_key_of(month) for month in MONTHS])
    lookups, fetch = [], instance.fetch_materializations  # the checks' reads of the event log

    def counted_fetch(*args, **kwargs):
        lookups.append(args)
        return fetch(*args, **kwargs)

    instance.fetch_materializations = counted_fetch
    with counting_connections() as log:
        result = dg.materialize(
            [publishing.published_tables, publishing.supplier_scores_meet_contract, publishing.supplier_features_meet_contract,
             publishing.storefront_metrics_meet_contract, publishing.parquet_matches_warehouse],
            resources=resources, instance=instance, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": partition_key_of(months[0]),
                  "dagster/asset_partition_range_end": partition_key_of(months[-1])},
        )
    log.event_log_lookups = len(lookups)
    return result, log


def test_publishing_and_its_checks_take_as_many_statements_for_eight_months_as_for_two(home):
    _, resources = home
    two, two_log = _publish_and_check(resources, MONTHS[:2])
    eight, eight_log = _publish_and_check(resources, MONTHS)

    for result, months in ((two, MONTHS[:2]), (eight, MONTHS)):
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == 4 * len(months) and all(e.passed for e in evaluations), \
            [(e.check_name, e.partition, e.metadata) for e in evaluations if not e.passed]
    # A loop of one statement per month (the old publishing ran ~26 a month) would add 6 x its
    # length here; reads of whole months at once do not.
    assert eight_log.queries == two_log.queries
    # each check finds the materialization every month's evaluation targets in one lookup
    assert 0 < eight_log.event_log_lookups == two_log.event_log_lookups
    most, statement = eight_log.most_repeated()
    assert most < len(MONTHS), statement  # none once a month


def test_a_failed_publishing_still_brings_the_copies_in_line(home, monkeypatch):
    """The reconciliation runs once per publishing, after the commit: a commit that fails
    leaves the copies in line with the working file all the same (as the start-up one did)."""
    path, resources = home
    assert _publish_and_check(resources, MONTHS[:2])[0].success
    stale = path / "published" / "supplier_scores" / f"as_of_date={MONTHS[0]}" / "part-0.parquet"
    stale.unlink()  # as a run killed before its Parquet copy would leave it

    def failing_commit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(publishing, "commit_months", failing_commit)
    result, _ = _publish_and_check(resources, MONTHS[:2])
    assert not result.success
    assert stale.exists()


def test_parquet_check_reads_each_side_once_and_compares_copies_of_a_row(tmp_path):
    con = duckdb.connect()
    rows = pa.table({"as_of_date": pa.array([MONTHS[0]] * 3 + [MONTHS[1]] * 2, pa.date32()),
                     "supplier_id": ["S1", "S1", "S2", "S1", "S2"], "amount": [1.0, 1.0, 2.0, 3.0, 4.0]})
    commit_months(con, MONTHS[:2], {"supplier_scores": rows})
    sync_published_copies(con, tmp_path / "published")
    log = QueryLog()
    counted = CountingConnection(con, log)
    assert parquet_differences(counted, "supplier_scores", MONTHS[:2], tmp_path / "published") == \
        {MONTHS[0]: None, MONTHS[1]: None}
    # one copy of a duplicated row goes missing: the same distinct rows, one row fewer
    con.execute("DELETE FROM published.supplier_scores WHERE rowid = (SELECT min(rowid) FROM published.supplier_scores)")
    assert parquet_differences(counted, "supplier_scores", MONTHS[:2], tmp_path / "published") == \
        {MONTHS[0]: "0 warehouse rows not in Parquet, 1 Parquet rows not in the warehouse", MONTHS[1]: None}
    # each comparison reads each side once (EXCEPT ALL both ways read each twice)
    assert log.scans("READ_PARQUET") == 2 and log.scans("published.supplier_scores") == 2


def test_stale_months_stream_one_month_at_a_time_whatever_the_batches(tmp_path):
    con = duckdb.connect()
    months = MONTHS[:4]
    rows = pa.table({"as_of_date": pa.array([m for m in months for _ in range(5)], pa.date32()),
                     "supplier_id": [f"S{i}" for _ in months for i in range(5)], "x": list(range(20))})
    commit_months(con, months, {"supplier_scores": rows})
    with counting_connections() as log:
        counted = duckdb.connect()  # a counted connection over the same rows
        counted.register("r", rows)
        counted.execute("CREATE SCHEMA published; CREATE TABLE published.supplier_scores AS SELECT * FROM r")
        # batches of 3 rows: months start and end inside batches and span several
        streamed = [(month, table.to_pydict()) for month, table in stale_months_rows(counted, "supplier_scores", months[1:], 3)]
    assert [month for month, _ in streamed] == months[1:]
    assert all(t == {"supplier_id": [f"S{i}" for i in range(5)], "x": list(range(5 * k, 5 * k + 5))}
               for k, (_, t) in enumerate(streamed, start=1))
    assert log.queries == 2  # the table made, then one statement for all three months


def test_months_together_take_the_same_statements_for_any_number_of_months():
    def statements(months: list[date]) -> int:
        frame = pd.concat([_month_scores(m).assign(run_id="r", published_at=datetime(2025, 9, 1)) for m in months])
        with counting_connections() as log:
            results = check_published_months(frame, PUBLISHED["supplier_scores"])
        assert all(r.passed for r in results.values()) and len(results) == len(months)
        return log.queries

    assert statements(MONTHS[:2]) == statements(MONTHS)


@pytest.mark.parametrize(
    "column, widened",
    [
        (pd.Series([3, 4], dtype="int32"), "int64"),  # DuckDB's INTEGER: GX compares only int64 vectorised
        (pd.Series([1, 2], dtype="uint16"), "int64"),
        (pd.Series(pd.to_datetime(["2025-01-01", None]).astype("datetime64[us]")), "datetime64[ns]"),  # TIMESTAMP
        (pd.Series([datetime(1500, 1, 1)], dtype="datetime64[us]"), "datetime64[us]"),  # outside ns: kept as it is
        (pd.Series([np.array(["A", "B"], dtype=object), None]), "object"),  # VARCHAR[]: tuples, hashable
        (pd.Series(["x", None]), "object"),  # text: untouched
    ],
)
def test_gx_gets_columns_in_dtypes_it_compares_vectorised(column, widened):
    frame = gx_ready_frame(pd.DataFrame({"c": column}))
    assert str(frame["c"].dtype) == widened
    original = [tuple(v) if isinstance(v, np.ndarray) else v for v in column]
    assert [None if v is None or v is pd.NaT else v for v in frame["c"]] == \
        [None if v is None or v is pd.NaT else v for v in original]
    pd.util.hash_pandas_object(frame)  # GX fingerprints a batch so; on arrays it pickled the frame instead


def test_the_range_checks_of_a_suite_never_call_python_per_value(monkeypatch):
    """GX's slow path for `between` maps a Python function over the column; with the frame
    widened it is not taken (a timestamp and an int32 column, as DuckDB hands them over)."""
    import great_expectations.expectations.metrics.column_map_metrics.column_values_between as between

    from data_contracts.expectations import _run_gx, contract_checks

    def per_value(*args, **kwargs):
        raise AssertionError("the per-value path ran")

    monkeypatch.setattr(pd.Series, "map", per_value)
    frame = pd.DataFrame({"review_id": ["R1", "R2"], "order_id": ["O1", "O2"],
                          "created_at": pd.Series(pd.to_datetime(["2025-01-01", "2025-02-01"])).astype("datetime64[us]"),
                          "rating": pd.Series([1, 5], dtype="int32")})
    from data_contracts import load_landing_contracts

    reviews = load_landing_contracts()["reviews"]
    checks = [c for c in contract_checks(reviews, datetime(2025, 6, 30)) if c.kind == "between"]
    assert checks and between.ColumnValuesBetween
    outcomes = _run_gx(frame, reviews, checks)
    assert len(outcomes) == len(checks) and all(o.success for o in outcomes)


def test_a_reference_profile_counts_every_month_in_one_pass_per_column(monkeypatch):
    """Monitoring's reference windows: the per-month counts drift compares with come from one
    binning of each column, not a filter of the frame per month and column; they equal the
    counts of each month binned on its own."""
    from models import monitoring

    rng = np.random.default_rng(3)
    months = MONTHS[:5]
    frame = pd.DataFrame({"as_of_date": np.repeat(months, 40), "x": rng.normal(size=200),
                          "tier": rng.choice(["free", "gold", None], 200)})
    frame.loc[::9, "x"] = np.nan
    binned, bin_index = [], monitoring.bin_index
    monkeypatch.setattr(monitoring, "bin_index", lambda *args: binned.append(1) or bin_index(*args))

    reference = monitoring.profile(frame, ["x", "tier"])

    assert len(binned) == 2  # one per column, whatever the number of months
    for column in ("x", "tier"):
        each_month = [monitoring.bin_counts(frame[frame["as_of_date"] == month][column], reference.bins[column]) for month in months]
        assert np.array_equal(reference.monthly_counts[column], np.array(each_month))
        assert np.array_equal(reference.counts[column], monitoring.bin_counts(frame[column], reference.bins[column]))
