"""The synthetic landing zone: columns and types (docs/design.md §3), internal consistency, the
snapshot rule, determinism, optional tables."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthetic import GenerationSummary, generate_landing_zone

TS = pa.timestamp("us", tz="UTC")
EXPECTED_COLUMNS = {
    "suppliers": {
        "supplier_id": pa.string(), "country": pa.string(), "membership_tier": pa.string(),
        "joined_at": TS, "assurance_opt_in_at": TS, "category": pa.string(),
    },
    "orders": {
        "order_id": pa.string(), "supplier_id": pa.string(), "buyer_id": pa.string(),
        "buyer_country": pa.string(), "created_at": TS, "amount_usd": pa.float64(),
        "payment_method": pa.string(), "assured": pa.bool_(), "promised_ship_by": TS,
        "shipped_at": TS, "delivered_at": TS, "status": pa.string(), "cancelled_by": pa.string(),
        "cancelled_at": TS,
    },
    "inquiries": {
        "inquiry_id": pa.string(), "supplier_id": pa.string(), "buyer_id": pa.string(),
        "received_at": TS, "first_response_at": TS,
    },
    "disputes": {
        "dispute_id": pa.string(), "order_id": pa.string(), "opened_at": TS, "reason": pa.string(),
        "outcome": pa.string(), "resolved_at": TS, "refund_usd": pa.float64(),
    },
    "reviews": {"review_id": pa.string(), "order_id": pa.string(), "created_at": TS, "rating": pa.int32()},
}
SMALL = dict(n_suppliers=300, start="2024-01", months=12, seed=11)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> tuple[Path, GenerationSummary, list[str]]:
    out = tmp_path_factory.mktemp("landing")
    lines: list[str] = []
    summary = generate_landing_zone(out, progress=lines.append, **SMALL)
    return out, summary, lines


@pytest.fixture(scope="module")
def con(small_world) -> duckdb.DuckDBPyConnection:
    out, _, _ = small_world
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for table in EXPECTED_COLUMNS:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{out}/{table}/*.parquet')")
    return connection


def scalar(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_summary_and_progress(small_world):
    out, summary, lines = small_world
    assert summary.out_dir == out
    assert summary.n_suppliers == 300
    assert summary.first_month_end == date(2024, 1, 31)
    assert summary.last_month_end == date(2024, 12, 31)
    assert summary.data_horizon == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert summary.n_orders > 10_000 and summary.n_disputes > 0 and summary.n_reviews > 0
    assert summary.n_inquiries > summary.n_orders  # 1.5 inquiries per order by default
    assert [line[:7] for line in lines[:12]] == [f"2024-{m:02d}" for m in range(1, 13)]
    assert "orders" in lines[0]


@pytest.mark.parametrize("table", list(EXPECTED_COLUMNS))
def test_every_file_has_exactly_the_contract_columns_and_types(small_world, table):
    out, summary, _ = small_world
    files = sorted((out / table).glob("*.parquet"))
    assert files
    rows = 0
    for file in files:
        schema = pq.read_schema(file)
        assert dict(zip(schema.names, schema.types)) == EXPECTED_COLUMNS[table], file
        rows += pq.read_metadata(file).num_rows
    assert rows == summary.row_counts[table]


def test_ids_are_unique_and_references_resolve(con):
    for table, key in [("suppliers", "supplier_id"), ("orders", "order_id"), ("disputes", "dispute_id"),
                       ("reviews", "review_id"), ("inquiries", "inquiry_id")]:
        assert scalar(con, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}") == 0, table
    assert scalar(con, "SELECT min(supplier_id) FROM suppliers") == "S000001"
    assert scalar(con, "SELECT count(*) FROM orders WHERE supplier_id NOT IN (SELECT supplier_id FROM suppliers)") == 0
    assert scalar(con, "SELECT count(*) FROM inquiries WHERE supplier_id NOT IN (SELECT supplier_id FROM suppliers)") == 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE order_id NOT IN (SELECT order_id FROM orders)") == 0
    assert scalar(con, "SELECT count(*) FROM reviews WHERE order_id NOT IN (SELECT order_id FROM orders)") == 0
    assert scalar(con, "SELECT count(*) - count(DISTINCT order_id) FROM disputes") == 0  # one dispute per order


def test_enums_and_value_ranges(con):
    assert {r[0] for r in con.execute("SELECT DISTINCT status FROM orders").fetchall()} == {
        "placed", "shipped", "completed", "cancelled"}
    assert {r[0] for r in con.execute("SELECT DISTINCT cancelled_by FROM orders WHERE cancelled_by IS NOT NULL").fetchall()} == {
        "buyer", "supplier", "platform"}
    assert {r[0] for r in con.execute("SELECT DISTINCT reason FROM disputes").fetchall()} == {
        "late_shipment", "quality", "not_received", "other"}
    assert {r[0] for r in con.execute("SELECT DISTINCT outcome FROM disputes").fetchall()} <= {
        "open", "buyer_favored", "supplier_favored", "settled", "withdrawn"}
    assert {r[0] for r in con.execute("SELECT DISTINCT membership_tier FROM suppliers").fetchall()} <= {
        "free", "gold", "verified", "unknown"}
    assert scalar(con, "SELECT count(*) FROM suppliers WHERE NOT regexp_full_match(country, '[A-Z]{2}')") == 0
    assert scalar(con, "SELECT min(amount_usd) FROM orders") > 0
    assert scalar(con, "SELECT min(rating) FROM reviews") >= 1
    assert scalar(con, "SELECT max(rating) FROM reviews") <= 5
    # Some suppliers never opt in, some join during the range, all kinds of assured flags.
    assert 0 < scalar(con, "SELECT count(*) FROM suppliers WHERE assurance_opt_in_at IS NULL") < 300
    assert scalar(con, "SELECT count(*) FROM suppliers WHERE joined_at >= TIMESTAMPTZ '2024-01-01'") > 10
    assert scalar(con, "SELECT count(*) FROM suppliers WHERE joined_at < TIMESTAMPTZ '2021-01-01'") > 10
    assert 0.2 < scalar(con, "SELECT avg(assured::INT) FROM orders") < 0.9
    assert scalar(con, """SELECT count(*) FROM orders o JOIN suppliers s USING (supplier_id)
                          WHERE o.assured AND (s.assurance_opt_in_at IS NULL OR s.assurance_opt_in_at > o.created_at)""") == 0


def test_order_timestamps_and_status_are_consistent(con):
    assert scalar(con, "SELECT count(*) FROM orders WHERE shipped_at < created_at") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE delivered_at < shipped_at OR (delivered_at IS NOT NULL AND shipped_at IS NULL)") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE promised_ship_by <= created_at") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE (status = 'cancelled') <> (cancelled_by IS NOT NULL)") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE (status = 'cancelled') <> (cancelled_at IS NOT NULL)") == 0
    # cancelled after it was placed and by the end of its promised ship day
    assert scalar(con, "SELECT count(*) FROM orders WHERE cancelled_at < created_at "
                       "OR cancelled_at >= promised_ship_by + INTERVAL 1 DAY") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'cancelled' AND shipped_at IS NOT NULL") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'completed' AND delivered_at IS NULL") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'shipped' AND (shipped_at IS NULL OR delivered_at IS NOT NULL)") == 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'placed' AND shipped_at IS NOT NULL") == 0
    # Late shipments exist but are a minority.
    late = scalar(con, "SELECT avg((shipped_at >= promised_ship_by + INTERVAL 1 DAY)::INT) FROM orders WHERE shipped_at IS NOT NULL")
    assert 0.03 < late < 0.5


def test_disputes_and_reviews_are_consistent_with_their_orders(con):
    assert scalar(con, "SELECT count(*) FROM disputes d JOIN orders o USING (order_id) WHERE d.opened_at <= o.created_at") == 0
    assert scalar(con, "SELECT count(*) FROM disputes d JOIN orders o USING (order_id) WHERE o.status = 'cancelled'") == 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE resolved_at <= opened_at") == 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE (outcome = 'open') <> (resolved_at IS NULL)") == 0
    assert scalar(con, "SELECT count(*) FROM disputes d JOIN orders o USING (order_id) WHERE d.refund_usd < 0 OR d.refund_usd > o.amount_usd") == 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE refund_usd > 0 AND outcome NOT IN ('buyer_favored', 'settled')") == 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE outcome = 'buyer_favored' AND refund_usd = 0") == 0
    assert scalar(con, "SELECT count(*) FROM disputes d JOIN orders o USING (order_id) WHERE d.reason = 'quality' AND NOT (o.delivered_at < d.opened_at)") == 0
    assert scalar(con, "SELECT count(*) FROM reviews r JOIN orders o USING (order_id) WHERE o.delivered_at IS NULL OR r.created_at <= o.delivered_at") == 0
    assert scalar(con, "SELECT count(*) FROM inquiries WHERE first_response_at <= received_at") == 0


def test_snapshot_hides_everything_after_the_horizon(con, small_world):
    horizon = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
    for table, columns in [
        ("orders", ["created_at", "promised_ship_by", "shipped_at", "delivered_at"]),
        ("disputes", ["opened_at", "resolved_at"]),
        ("reviews", ["created_at"]),
        ("inquiries", ["received_at", "first_response_at"]),
        ("suppliers", ["joined_at", "assurance_opt_in_at"]),
    ]:
        for column in columns:
            if column == "promised_ship_by":
                continue  # a promise is known when the order is placed, even if it is for later
            assert scalar(con, f"SELECT count(*) FROM {table} WHERE {column} >= {horizon}") == 0, (table, column)
    # The cut is visible: recent orders still in flight, recent disputes still open.
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'placed' AND created_at >= TIMESTAMPTZ '2024-12-15'") > 0
    assert scalar(con, "SELECT count(*) FROM orders WHERE status = 'shipped' AND created_at >= TIMESTAMPTZ '2024-12-01'") > 0
    assert scalar(con, "SELECT count(*) FROM disputes WHERE outcome = 'open'") > 0
    assert scalar(con, "SELECT count(*) FROM inquiries WHERE first_response_at IS NULL AND received_at >= TIMESTAMPTZ '2024-12-31 12:00:00+00'") > 0


def test_truth_has_one_row_per_joined_supplier_and_month_end(small_world):
    out, summary, _ = small_world
    truth = pq.read_table(out / "_truth" / "breach_probability.parquet")
    assert truth.schema.field("as_of_date").type == pa.date32()
    assert truth.schema.field("breach_probability_6m").type == pa.float64()
    assert {"supplier_id", "latent_reliability", "is_fraudulent"} <= set(truth.schema.names)
    suppliers = pq.read_table(out / "suppliers").to_pandas()
    frame = truth.to_pandas()
    assert frame.duplicated(["supplier_id", "as_of_date"]).sum() == 0
    assert frame.breach_probability_6m.between(0, 1).all()
    month_ends = sorted(frame.as_of_date.unique())
    assert len(month_ends) == 12 and month_ends[0] == date(2024, 1, 31) and month_ends[-1] == date(2024, 12, 31)
    for month_end in (month_ends[0], month_ends[5], month_ends[-1]):
        cutoff = pd_timestamp(month_end)
        joined = set(suppliers.loc[suppliers.joined_at < cutoff, "supplier_id"])
        assert set(frame.loc[frame.as_of_date == month_end, "supplier_id"]) == joined


def pd_timestamp(month_end: date):
    import pandas as pd

    return pd.Timestamp(month_end, tz="UTC") + pd.Timedelta(days=1)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_same_arguments_give_byte_identical_files(tmp_path, small_world):
    out, _, _ = small_world
    again = generate_landing_zone(tmp_path / "again", **SMALL)
    assert again.n_orders == small_world[1].n_orders
    assert file_bytes(tmp_path / "again") == file_bytes(out)


def test_another_seed_gives_another_world(tmp_path):
    a = generate_landing_zone(tmp_path / "a", n_suppliers=50, months=3, seed=1)
    b = generate_landing_zone(tmp_path / "b", n_suppliers=50, months=3, seed=2)
    assert file_bytes(tmp_path / "a") != file_bytes(tmp_path / "b")
    assert (a.n_orders, a.n_disputes) != (b.n_orders, b.n_disputes)


def test_optional_tables_can_be_left_out_without_changing_the_others(tmp_path, small_world):
    out, _, _ = small_world
    bare = tmp_path / "bare"
    summary = generate_landing_zone(bare, include_inquiries=False, include_reviews=False, **SMALL)
    assert not (bare / "inquiries").exists() and not (bare / "reviews").exists()
    assert summary.n_inquiries == 0 and summary.n_reviews == 0
    full = file_bytes(out)
    for name, content in file_bytes(bare).items():
        assert full[name] == content, name


def test_regenerating_into_the_same_folder_replaces_the_tables(tmp_path):
    generate_landing_zone(tmp_path, n_suppliers=40, months=4, seed=3)
    generate_landing_zone(tmp_path, n_suppliers=40, months=2, seed=3, include_reviews=False)
    assert len(list((tmp_path / "orders").glob("*.parquet"))) == 2
    assert not (tmp_path / "reviews").exists()


def test_public_signature_is_stable():
    import inspect

    parameters = inspect.signature(generate_landing_zone).parameters
    assert list(parameters)[:8] == [
        "out_dir", "n_suppliers", "start", "months", "seed", "orders_per_supplier_month",
        "inquiries_per_order", "progress",
    ]
    assert parameters["n_suppliers"].default == 5000
    assert parameters["start"].default == "2024-01"
    assert parameters["months"].default == 30
    assert parameters["seed"].default == 7
    assert parameters["inquiries_per_order"].default == 1.5


def test_volume_parameters_scale_the_tables(tmp_path):
    base = generate_landing_zone(tmp_path / "base", n_suppliers=200, months=6, seed=4, orders_per_supplier_month=5)
    busy = generate_landing_zone(
        tmp_path / "busy", n_suppliers=200, months=6, seed=4, orders_per_supplier_month=10, inquiries_per_order=3.0
    )
    assert 1.8 < busy.n_orders / base.n_orders < 2.2
    assert 3.4 < busy.n_inquiries / base.n_inquiries < 4.6
    assert 1.3 < base.n_inquiries / base.n_orders < 1.7


def test_the_range_can_start_mid_year_and_run_short(tmp_path):
    summary = generate_landing_zone(tmp_path, n_suppliers=30, start="2023-11", months=3, seed=2)
    assert summary.first_month_end == date(2023, 11, 30)
    assert summary.last_month_end == date(2024, 1, 31)
    assert summary.data_horizon == datetime(2024, 2, 1, tzinfo=timezone.utc)
    assert sorted(p.name for p in (tmp_path / "orders").iterdir()) == [
        "orders-2023-11.parquet", "orders-2023-12.parquet", "orders-2024-01.parquet"]


def test_summary_describes_itself(small_world):
    _, summary, _ = small_world
    text = summary.describe()
    assert "orders" in text and "2024-12-31" in text and "2025-01-01T00:00:00+00:00" in text
