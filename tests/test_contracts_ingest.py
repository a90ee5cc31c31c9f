"""ingest_landing_zone: typed validated tables, quarantine rules, table-level errors, report."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_contracts_support import assert_reconciles, valid_tables, write_landing

from data_contracts import (
    LandingZoneError,
    ingest_landing_zone,
    load_landing_contracts,
    load_published_contracts,
    validate_landing_zone,
)
from data_contracts.docs import DOC_PATH, render_markdown

# docs/architecture.md, "Validated table columns (DuckDB types)"
ARCHITECTURE_TYPES = {
    "suppliers": {"supplier_id": "VARCHAR", "country": "VARCHAR", "membership_tier": "VARCHAR",
                  "joined_at": "TIMESTAMP", "assurance_opt_in_at": "TIMESTAMP", "category": "VARCHAR"},
    "orders": {"order_id": "VARCHAR", "supplier_id": "VARCHAR", "buyer_id": "VARCHAR",
               "buyer_country": "VARCHAR", "created_at": "TIMESTAMP", "amount_usd": "DOUBLE",
               "payment_method": "VARCHAR", "assured": "BOOLEAN", "promised_ship_by": "TIMESTAMP",
               "shipped_at": "TIMESTAMP", "delivered_at": "TIMESTAMP", "status": "VARCHAR",
               "cancelled_by": "VARCHAR", "cancelled_at": "TIMESTAMP"},
    "inquiries": {"inquiry_id": "VARCHAR", "supplier_id": "VARCHAR", "buyer_id": "VARCHAR",
                  "received_at": "TIMESTAMP", "first_response_at": "TIMESTAMP"},
    "disputes": {"dispute_id": "VARCHAR", "order_id": "VARCHAR", "opened_at": "TIMESTAMP",
                 "reason": "VARCHAR", "outcome": "VARCHAR", "resolved_at": "TIMESTAMP",
                 "refund_usd": "DOUBLE"},
    "reviews": {"review_id": "VARCHAR", "order_id": "VARCHAR", "created_at": "TIMESTAMP",
                "rating": "INTEGER"},
}


def _types(con, table: str) -> dict[str, str]:
    return {name: dtype for name, dtype, *_ in con.execute(f"DESCRIBE validated.{table}").fetchall()}


def _ingest(tmp_path, tables, fmt="parquet", **kwargs):
    root = write_landing(tmp_path / "landing", tables, fmt)
    con = duckdb.connect()
    return ingest_landing_zone(root, con, **kwargs), con


def _rules(con, table: str) -> dict[str, str]:
    """Quarantined id -> rule."""
    key = load_landing_contracts()[table].primary_key[0]
    return dict(con.execute(f"SELECT {key}, rule FROM quarantine.{table}").fetchall())




# --------------------------------------------------------------------------- contracts


def test_contracts_load_and_match_architecture_types():
    landing = load_landing_contracts()
    assert list(landing) == ["suppliers", "orders", "inquiries", "disputes", "reviews"]
    for name, expected in ARCHITECTURE_TYPES.items():
        assert {c.name: c.type for c in landing[name].columns} == expected
    assert [t for t, c in landing.items() if c.optional] == ["inquiries", "reviews"]
    published = load_published_contracts()
    assert set(published) == {"supplier_scores", "supplier_features", "storefront_metrics", "override_audit"}
    assert published["supplier_features"].extra_columns == "allowed"
    assert published["supplier_features"].column_names == ["as_of_date", "supplier_id"]


def test_generated_doc_is_up_to_date():
    assert DOC_PATH.read_text(encoding="utf-8") == render_markdown(), \
        "docs/data_contracts.md is stale: run `uv run python -m data_contracts.docs`"


# --------------------------------------------------------------------------- valid input


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_valid_landing_zone_is_accepted_whole_with_contract_types(tmp_path, fmt):
    tables = valid_tables()
    report, con = _ingest(tmp_path, tables, fmt, quarantine_parquet_dir=tmp_path / "q")
    for name, frame in tables.items():
        assert _types(con, name) == ARCHITECTURE_TYPES[name]
        assert report.tables[name].rows_read == report.tables[name].rows_accepted == len(frame)
        assert report.tables[name].quarantined_by_rule == {}
    assert_reconciles(report, con)
    assert report.data_horizon == datetime(2025, 2, 10, 23, 59, 59, 999999)
    assert report.exit_code() == 0
    quarantine_cols = [r[0] for r in con.execute("DESCRIBE quarantine.orders").fetchall()]
    assert quarantine_cols[-4:] == ["rule", "rule_detail", "source_file", "source_row"]
    assert (tmp_path / "q" / "orders" / "quarantine.parquet").exists()
    got = con.execute("SELECT amount_usd, assured, created_at FROM validated.orders ORDER BY order_id").fetchall()
    expected = tables["orders"].sort_values("order_id")
    assert [g[0] for g in got] == expected.amount_usd.tolist()
    assert [g[1] for g in got] == expected.assured.tolist()
    assert [g[2] for g in got] == [t.to_pydatetime() for t in expected.created_at]
    report_rows = con.execute(
        "SELECT \"table\", outcome, \"rows\" FROM validated._ingest_report WHERE outcome = 'read'").fetchall()
    assert dict((t, n) for t, _, n in report_rows) == {n: len(f) for n, f in tables.items()}


def test_optional_tables_and_columns_may_be_absent_and_rerun_replaces(tmp_path):
    tables = valid_tables()
    root = write_landing(tmp_path / "landing", tables)
    con = duckdb.connect()
    ingest_landing_zone(root, con)
    assert con.execute("SELECT count(*) FROM validated.reviews").fetchone()[0] > 0

    lean = {n: f for n, f in tables.items() if n not in ("inquiries", "reviews")}
    lean["orders"] = lean["orders"].drop(columns=["buyer_country", "payment_method", "cancelled_by",
                                                  "promised_ship_by", "shipped_at", "delivered_at"])
    lean["suppliers"] = lean["suppliers"].drop(columns=["category", "assurance_opt_in_at"])
    root2 = write_landing(tmp_path / "lean", lean)
    report = ingest_landing_zone(root2, con)  # same connection: re-run replaces everything
    assert report.absent_optional_tables == ["inquiries", "reviews"]
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'validated'").fetchall()}
    assert existing == {"suppliers", "orders", "disputes", "_ingest_report", "_outcome_definition"}
    assert _types(con, "orders") == ARCHITECTURE_TYPES["orders"]
    assert con.execute("SELECT count(shipped_at), count(*) FROM validated.orders").fetchone() == (0, len(tables["orders"]))
    assert "absent or not collected" in report.to_text()


def test_ingest_is_idempotent_and_deterministic(tmp_path):
    tables = valid_tables()
    tables["orders"].loc[3, "amount_usd"] = -5.0
    tables["orders"] = pd.concat([tables["orders"], tables["orders"].iloc[[0]]], ignore_index=True)
    root = write_landing(tmp_path / "landing", tables)
    con = duckdb.connect()
    first = ingest_landing_zone(root, con)
    q1 = con.execute("SELECT * FROM quarantine.orders ORDER BY ALL").fetchall()
    v1 = con.execute("SELECT * FROM validated.orders ORDER BY ALL").fetchall()
    second = ingest_landing_zone(root, con)
    assert first == second
    assert con.execute("SELECT * FROM quarantine.orders ORDER BY ALL").fetchall() == q1
    assert con.execute("SELECT * FROM validated.orders ORDER BY ALL").fetchall() == v1


# --------------------------------------------------------------------------- row rules


def _mutate(table, index, **values):
    def apply(tables):
        for col, value in values.items():
            if isinstance(value, str) and col.endswith("_at") and value[:1].isdigit():
                value = pd.Timestamp(value)
            tables[table].loc[index, col] = value
    return apply


ROW_RULE_CASES = [
    ("suppliers", _mutate("suppliers", 1, membership_tier="Gold"), "unknown_enum"),
    ("suppliers", _mutate("suppliers", 1, country="cn"), "invalid_format"),
    ("suppliers", _mutate("suppliers", 1, supplier_id=None), "null_required"),
    ("orders", _mutate("orders", 2, amount_usd=0.0), "non_positive_amount"),
    ("orders", _mutate("orders", 2, amount_usd=-10.0), "non_positive_amount"),
    ("orders", _mutate("orders", 2, amount_usd=float("inf")), "non_finite_number"),
    ("orders", _mutate("orders", 2, status="Completed"), "unknown_enum"),
    ("orders", _mutate("orders", 2, status=" completed"), "unknown_enum"),
    ("orders", _mutate("orders", 2, buyer_id=""), "null_required"),
    ("orders", _mutate("orders", 0, shipped_at="2024-12-01 00:00:00"), "shipped_before_created"),
    ("orders", _mutate("orders", 0, delivered_at="2025-01-02 00:00:00"), "delivered_before_shipped"),
    ("orders", _mutate("orders", 0, delivered_at="2025-06-01 00:00:00"), "after_horizon"),
    ("orders", _mutate("orders", 4, cancelled_at="2025-01-13 12:59:59"), "cancelled_before_created"),
    ("orders", _mutate("orders", 2, cancelled_at="2025-01-09 00:00:00"), "cancelled_at_without_cancellation"),
    ("orders", _mutate("orders", 4, cancelled_at="2025-06-01 00:00:00"), "after_horizon"),
    ("orders", _mutate("orders", 2, supplier_id="S999"), "orphan_supplier"),
    ("orders", _mutate("orders", 2, payment_method="Credit Card"), "invalid_format"),
    ("disputes", _mutate("disputes", 0, refund_usd=-1.0), "negative_refund"),
    ("disputes", _mutate("disputes", 0, refund_usd=1e9), "refund_exceeds_order_amount"),
    ("disputes", _mutate("disputes", 0, opened_at="2024-06-01 00:00:00"), "dispute_before_order"),
    ("disputes", _mutate("disputes", 0, order_id="O99999"), "orphan_order"),
    ("disputes", _mutate("disputes", 0, reason="Quality"), "unknown_enum"),
    ("disputes", _mutate("disputes", 0, resolved_at="2024-06-01 00:00:00"), "resolved_before_opened"),
    ("reviews", _mutate("reviews", 0, rating=6), "rating_out_of_range"),
    ("reviews", _mutate("reviews", 0, rating=0), "rating_out_of_range"),
    ("reviews", _mutate("reviews", 0, created_at="2024-01-01 00:00:00"), "review_before_order"),
    ("inquiries", _mutate("inquiries", 1, first_response_at="2024-01-01 00:00:00"), "response_before_received"),
    ("inquiries", _mutate("inquiries", 1, supplier_id="S999"), "orphan_supplier"),
    ("inquiries", _mutate("inquiries", 0, received_at="2030-01-01 00:00:00"), "after_horizon"),
    ("orders", _mutate("orders", 2, amount_usd=1e9 + 0.01), "amount_above_maximum"),
    ("orders", _mutate("orders", 2, amount_usd=1e12), "amount_above_maximum"),
    ("disputes", _mutate("disputes", 0, refund_usd=2e9), "refund_above_maximum"),
    ("orders", _mutate("orders", 2, created_at="1900-01-01 00:00:00"), "before_plausible_era"),
    ("orders", _mutate("orders", 2, promised_ship_by="1970-01-01 00:00:00"), "before_plausible_era"),
    ("suppliers", _mutate("suppliers", 1, joined_at="1999-12-31 23:59:59"), "before_plausible_era"),
    ("reviews", _mutate("reviews", 0, created_at="1970-01-01 00:00:00"), "before_plausible_era"),
]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("table,mutation,rule", ROW_RULE_CASES,
                         ids=[f"{t}-{r}-{i}" for i, (t, _, r) in enumerate(ROW_RULE_CASES)])
def test_each_row_rule_quarantines_exactly_the_bad_row(tmp_path, fmt, table, mutation, rule):
    tables = valid_tables()
    mutation(tables)
    report, con = _ingest(tmp_path, tables, fmt)
    stats = report.tables[table]
    assert stats.quarantined_by_rule.get(rule) == 1, (stats.quarantined_by_rule, report.to_text())
    assert con.execute(f"SELECT count(*) FROM quarantine.{table} WHERE rule = ?", [rule]).fetchone()[0] == 1
    detail, source = con.execute(f"SELECT rule_detail, source_file FROM quarantine.{table}").fetchone()
    assert detail and source.startswith(f"{table}/")
    assert_reconciles(report, con)


def test_unparseable_csv_values_are_quarantined_with_original_text(tmp_path):
    tables = valid_tables()
    root = write_landing(tmp_path / "landing", tables, "csv")
    path = root / "orders" / "part-0.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("created_at")] = "05/01/2025 10:00"
    lines[1] = ",".join(row)
    row = lines[2].split(",")
    row[header.index("amount_usd")] = "12.5 USD"
    lines[2] = ",".join(row)
    row = lines[3].split(",")
    row[header.index("assured")] = "maybe"
    lines[3] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    assert report.tables["orders"].quarantined_by_rule == {
        "unparseable_timestamp": 1, "unparseable_number": 1, "unparseable_boolean": 1}
    shown = dict(con.execute("SELECT rule, created_at FROM quarantine.orders").fetchall())
    assert shown["unparseable_timestamp"] == "05/01/2025 10:00"
    # The orders' disputes/reviews cascade when they pointed at these orders.
    assert_reconciles(report, con)


def test_cascade_supplier_to_orders_to_disputes_and_reviews(tmp_path):
    tables = valid_tables()
    tables["suppliers"].loc[0, "membership_tier"] = "platinum"
    report, con = _ingest(tmp_path, tables)
    s0_orders = set(tables["orders"].order_id[tables["orders"].supplier_id == "S000"])
    assert set(_rules(con, "orders")) == s0_orders
    assert set(_rules(con, "orders").values()) == {"supplier_quarantined"}
    cascaded = set(tables["disputes"].order_id) & s0_orders
    assert cascaded, "fixture should have a dispute on S000"
    assert set(_rules(con, "disputes").values()) == {"order_quarantined"}
    assert report.tables["inquiries"].quarantined_by_rule == {"supplier_quarantined": 2}
    assert_reconciles(report, con)


def test_duplicates_identical_copy_keeps_first_conflicting_keeps_none(tmp_path):
    tables = valid_tables()
    orders = tables["orders"]
    copy = orders.iloc[[1]]
    conflict = orders.iloc[[2]].assign(amount_usd=999.0)
    tables["orders"] = pd.concat([orders, copy, conflict], ignore_index=True)
    report, con = _ingest(tmp_path, tables)
    assert report.tables["orders"].quarantined_by_rule["duplicate_row"] == 1
    assert report.tables["orders"].quarantined_by_rule["duplicate_id"] == 2
    accepted = {r[0] for r in con.execute("SELECT order_id FROM validated.orders").fetchall()}
    assert orders.order_id[1] in accepted and orders.order_id[2] not in accepted
    row = con.execute("SELECT source_row FROM quarantine.orders WHERE rule = 'duplicate_row'").fetchone()[0]
    assert row == len(orders)  # the later copy is the one quarantined
    assert_reconciles(report, con)


def test_horizon_ignores_a_stray_future_order_and_can_be_given(tmp_path):
    tables = valid_tables()
    tables["orders"].loc[3, "created_at"] = pd.Timestamp("2099-01-01")
    report, con = _ingest(tmp_path, tables)
    assert report.data_horizon == datetime(2025, 2, 10, 23, 59, 59, 999999)
    assert _rules(con, "orders")[tables["orders"].order_id[3]] == "after_horizon"

    report2, con2 = _ingest(tmp_path / "b", valid_tables(), horizon=datetime(2025, 1, 10))
    assert report2.data_horizon == datetime(2025, 1, 10) and report2.horizon_source == "argument"
    assert report2.tables["orders"].quarantined_by_rule["after_horizon"] > 0
    # promised_ship_by is a promise: never quarantined for lying beyond the horizon
    assert con2.execute("SELECT count(*) FROM validated.orders WHERE promised_ship_by > TIMESTAMP '2025-01-10'"
                        ).fetchone()[0] > 0


# --------------------------------------------------------------------------- reading variants


def test_hive_partitioned_parquet_with_partition_column_from_path(tmp_path):
    tables = valid_tables()
    root = tmp_path / "landing"
    write_landing(root, {n: f for n, f in tables.items() if n != "orders"})
    for supplier, group in tables["orders"].groupby("supplier_id"):
        folder = root / "orders" / f"supplier_id={supplier}"
        folder.mkdir(parents=True)
        group.drop(columns=["supplier_id"]).to_parquet(folder / "data.parquet", index=False)
    (root / "orders" / "_SUCCESS").write_text("")
    (root / "orders" / "README.txt").write_text("notes")
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    assert report.tables["orders"].rows_accepted == len(tables["orders"])
    assert len(report.tables["orders"].files) == 4
    assert report.tables["orders"].ignored_files == ["orders/README.txt"]
    assert con.execute("SELECT count(DISTINCT supplier_id) FROM validated.orders").fetchone()[0] == 4


def test_csv_quirks_that_are_fine(tmp_path):
    tables = valid_tables()
    tables["suppliers"].loc[0, "category"] = 'home, garden\nand "outdoor"'
    root = write_landing(tmp_path / "landing", tables, "csv")
    # Byte-order mark, extra and reordered columns, ISO 'T' and 'Z' timestamps.
    orders = tables["orders"].copy()
    orders["internal_note"] = "x"
    orders = orders[list(reversed(orders.columns))]
    for col in ("created_at", "shipped_at", "delivered_at", "promised_ship_by"):
        orders[col] = orders[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(orders[col].notna(), None)
    (root / "orders" / "part-0.csv").write_bytes(b"\xef\xbb\xbf" + orders.to_csv(index=False).encode())
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    assert all(not s.quarantined_by_rule for s in report.tables.values()), report.to_text()
    assert con.execute("SELECT category FROM validated.suppliers WHERE supplier_id = 'S000'").fetchone()[0] \
        == 'home, garden\nand "outdoor"'


def test_consistent_offset_is_converted_to_utc(tmp_path):
    tables = valid_tables()
    root = write_landing(tmp_path / "landing", tables, "csv")
    sup = tables["suppliers"].copy()
    sup["joined_at"] = sup["joined_at"].dt.strftime("%Y-%m-%d %H:%M:%S+02:00")
    sup.to_csv(root / "suppliers" / "part-0.csv", index=False)
    con = duckdb.connect()
    ingest_landing_zone(root, con)
    got = con.execute("SELECT joined_at FROM validated.suppliers ORDER BY supplier_id").fetchall()
    assert got[0][0] == (tables["suppliers"].joined_at[0] - pd.Timedelta(hours=2)).to_pydatetime()


def test_timestamptz_and_integer_ids_in_parquet(tmp_path):
    tables = valid_tables()
    root = write_landing(tmp_path / "landing", tables)
    sup = tables["suppliers"].copy()
    sup["joined_at"] = sup["joined_at"].dt.tz_localize("Asia/Shanghai")
    sup.to_parquet(root / "suppliers" / "part-0.parquet", index=False)
    con = duckdb.connect()
    ingest_landing_zone(root, con)
    got = con.execute("SELECT joined_at FROM validated.suppliers ORDER BY supplier_id").fetchone()[0]
    assert got == (tables["suppliers"].joined_at[0] - pd.Timedelta(hours=8)).to_pydatetime()


# --------------------------------------------------------------------------- table-level errors


def _write_bytes(root, table, name, data: bytes):
    for f in (root / table).iterdir():
        f.unlink()
    (root / table / name).write_bytes(data)


def _error(root) -> LandingZoneError:
    with pytest.raises(LandingZoneError) as info:
        ingest_landing_zone(root, duckdb.connect())
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return info.value


def test_missing_required_table(tmp_path):
    tables = valid_tables()
    del tables["disputes"]
    err = _error(write_landing(tmp_path / "l", tables))
    assert err.table == "disputes" and "missing" in str(err)


def test_missing_landing_folder(tmp_path):
    err = _error(tmp_path / "nope")
    assert "does not exist" in str(err)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_missing_required_column_names_file_and_column(tmp_path, fmt):
    tables = valid_tables()
    tables["orders"] = tables["orders"].rename(columns={"amount_usd": "Amount_USD"})
    err = _error(write_landing(tmp_path / "l", tables, fmt))
    assert err.table == "orders" and err.column == "amount_usd"
    assert err.file == f"orders/part-0.{fmt}"
    assert "'Amount_USD'" in str(err) and "case-sensitive" in str(err)


def test_amount_as_text_in_parquet_is_a_type_error(tmp_path):
    tables = valid_tables()
    tables["orders"]["amount_usd"] = tables["orders"]["amount_usd"].astype(str)
    err = _error(write_landing(tmp_path / "l", tables))
    assert err.column == "amount_usd" and "VARCHAR" in str(err) and "DOUBLE" in str(err)


def test_csv_column_of_the_wrong_type(tmp_path):
    tables = valid_tables()
    tables["orders"]["amount_usd"] = "about a hundred"
    err = _error(write_landing(tmp_path / "l", tables, "csv"))
    assert err.column == "amount_usd" and "DOUBLE" in str(err)


@pytest.mark.parametrize("name,data,expected", [
    ("part-0.csv", b"", "empty"),
    ("part-0.parquet", b"", "empty"),
    ("part-0.csv", b"\n\n", "empty"),
    ("part-0.parquet", b"PAR1 this is not parquet", "cannot read"),
    ("part-0.csv", "supplier_id;country;membership_tier;joined_at\nS1;CN;free;2024-01-01\n".encode(), "';'"),
    ("part-0.csv", "supplier_id,country,membership_tier,joined_at,category\nS1,CN,free,2024-01-01,caf\xe9\n"
     .encode("latin-1"), "UTF-8"),
    ("part-0.csv", "supplier_id,country\n".encode("utf-16"), "UTF-16"),
])
def test_unusable_files(tmp_path, name, data, expected):
    root = write_landing(tmp_path / "l", valid_tables())
    _write_bytes(root, "suppliers", name, data)
    err = _error(root)
    assert err.table == "suppliers" and err.file == f"suppliers/{name}"
    assert expected in str(err)


def test_mixed_timezone_offsets(tmp_path):
    tables = valid_tables()
    root = write_landing(tmp_path / "l", tables, "csv")
    sup = tables["suppliers"].copy()
    sup["joined_at"] = [t.strftime("%Y-%m-%d %H:%M:%S") + off
                        for t, off in zip(sup.joined_at, ["+02:00", "Z", "+02:00", "-05:00"])]
    sup.to_csv(root / "suppliers" / "part-0.csv", index=False)
    err = _error(root)
    assert err.column == "joined_at" and "mixed timezone offsets" in str(err)


def test_truncated_parquet(tmp_path):
    root = write_landing(tmp_path / "l", valid_tables())
    path = root / "orders" / "part-0.parquet"
    path.write_bytes(path.read_bytes()[:200])
    err = _error(root)
    assert err.table == "orders"


# --------------------------------------------------------------------------- report and exit codes


def test_report_text_and_exit_codes(tmp_path):
    tables = valid_tables(n_suppliers=10, orders_per_supplier=12)
    tables["orders"].loc[15, "amount_usd"] = -1.0  # 1 of 120 "placed" orders: 0.83% < 1%
    root = write_landing(tmp_path / "ok", tables)
    report, code, text = validate_landing_zone(root)
    assert code == 0 and report is not None
    assert "orders.non_positive_amount: 1" in text
    assert "result: ok" in text and "exit 0" in text
    assert report.exit_code({"default": 0.0}) == 1
    for line in ("table", "suppliers", "orders", "disputes", "reviews", "inquiries"):
        assert line in text

    tables["orders"].loc[27, "amount_usd"] = 0.0  # 2 of 120: beyond 1%
    report, code, text = validate_landing_zone(write_landing(tmp_path / "bad", tables))
    assert code == 1 and "BEYOND TOLERANCE" in text and "exit 1" in text

    del tables["suppliers"]
    report, code, text = validate_landing_zone(write_landing(tmp_path / "broken", tables))
    assert report is None and code == 2 and "suppliers" in text and "exit 2" in text


def test_parquet_quarantine_copy_is_replaced_on_rerun(tmp_path):
    tables = valid_tables()
    tables["orders"].loc[1, "status"] = "SHIPPED"
    root = write_landing(tmp_path / "l", tables)
    out = tmp_path / "q"
    ingest_landing_zone(root, duckdb.connect(), quarantine_parquet_dir=out)
    t = pq.read_table(out / "orders" / "quarantine.parquet")
    assert t.num_rows == 1 and t.column("rule").to_pylist() == ["unknown_enum"]
    assert t.schema.field("status").type == pa.string()
    ingest_landing_zone(write_landing(tmp_path / "clean", valid_tables()), duckdb.connect(),
                        quarantine_parquet_dir=out)
    assert pq.read_table(out / "orders" / "quarantine.parquet").num_rows == 0


# --------------------------------------------------------------------------- reconciliation


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_rows_in_files_reconcile_with_the_stored_tables(tmp_path, fmt):
    from data_contracts.ingest import reconcile_row_counts

    tables = valid_tables()
    # a quoted newline: one CSV record over two lines
    tables["suppliers"].loc[0, "category"] = 'home, garden\nand "outdoor"'
    tables["orders"].loc[0, "amount_usd"] = -5.0  # quarantined, still accounted for
    root = write_landing(tmp_path / "landing", tables, fmt)
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    counts = reconcile_row_counts(root, con, report)
    assert {name: in_files for name, (in_files, _, _) in counts.items()} == {n: len(f) for n, f in tables.items()}
    assert all(in_files == accepted + quarantined for in_files, accepted, quarantined in counts.values())
    assert counts["orders"][2] == 1


def test_rows_reconcile_check_fails_when_a_row_is_lost(tmp_path):
    from assets.landing import rows_reconcile
    from data_contracts.ingest import reconcile_row_counts

    root = write_landing(tmp_path / "landing", valid_tables())
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    assert rows_reconcile(reconcile_row_counts(root, con, report)).passed
    # a row lost after ingest counted it (a partial write, a stray DELETE): ingest's own
    # report still balances, the files against the tables do not
    con.execute("DELETE FROM validated.orders WHERE order_id = (SELECT min(order_id) FROM validated.orders)")
    result = rows_reconcile(reconcile_row_counts(root, con, report))
    assert not result.passed
    assert "+1 rows unaccounted for" in result.metadata["orders"].value


@pytest.mark.parametrize("file_backed", [True, False])
def test_ingest_caps_duckdb_memory_on_a_file_backed_warehouse_and_restores_it(tmp_path, monkeypatch, file_backed):
    from data_contracts import ingest as ingest_module

    limit = "SELECT current_setting('memory_limit')"
    seen = []
    original_stage_table = ingest_module.stage_table

    def stage_table(con, *args, **kwargs):
        seen.append(con.execute(limit).fetchone()[0])
        return original_stage_table(con, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "stage_table", stage_table)
    landing = write_landing(tmp_path / "lz", valid_tables(), "parquet")
    con = duckdb.connect(str(tmp_path / "w.duckdb") if file_backed else ":memory:")
    before = con.execute(limit).fetchone()[0]
    ingest_landing_zone(landing, con)
    capped = duckdb.connect(":memory:")
    capped.execute(f"SET memory_limit = '{ingest_module.INGEST_MEMORY_LIMIT}'")
    # a file-backed warehouse stages under the cap (DuckDB spills beside the file); an in-memory
    # one has nowhere to spill and keeps its limit; either way the limit is the same afterwards
    assert set(seen) == {capped.execute(limit).fetchone()[0] if file_backed else before}
    assert con.execute(limit).fetchone()[0] == before
