"""Contract bounds: a maximum amount and refund, a plausible era for timestamps; rows beyond
are quarantined by a named rule and counted, and an accepted row at the maximum goes through
the features without overflow."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
from test_contracts_support import assert_reconciles, valid_tables, write_landing

from data_contracts import ingest_landing_zone, load_landing_contracts, validate_landing_zone
from data_contracts.contracts import EARLIEST_PLAUSIBLE_TIMESTAMP, LANDING_DIR, load_contract
from data_contracts.quarantine import single_row_rule_sql
from features import compute_storefront_metrics, compute_supplier_features, month_ends

MAX_USD = 1e9




def test_the_era_start_is_the_named_constant_and_every_landing_table_uses_it():
    assert EARLIEST_PLAUSIBLE_TIMESTAMP == datetime(2000, 1, 1)
    assert {name: c.plausible_from for name, c in load_landing_contracts().items()} == dict.fromkeys(
        load_landing_contracts(), EARLIEST_PLAUSIBLE_TIMESTAMP
    )
    orders = load_landing_contracts()["orders"]
    assert (orders.column("amount_usd").max, orders.column("amount_usd").above_max_rule) == (MAX_USD, "amount_above_maximum")
    assert load_landing_contracts()["disputes"].column("refund_usd").above_max_rule == "refund_above_maximum"


def test_the_era_start_and_the_maximum_are_configurable_in_the_contract(tmp_path):
    text = (LANDING_DIR / "orders.yaml").read_text()
    assert "plausible_from: 2000-01-01" in text and "max: 1.0e+9" in text
    edited = tmp_path / "orders.yaml"
    edited.write_text(text.replace("plausible_from: 2000-01-01", "plausible_from: 1990-06-01").replace("max: 1.0e+9", "max: 5000"))
    contract = load_contract(edited)
    assert contract.plausible_from == datetime(1990, 6, 1)
    rule_sql, _ = single_row_rule_sql(contract)
    assert "TIMESTAMP '1990-06-01 00:00:00.000000'" in rule_sql and """("amount_usd" > 5000.0) THEN 'amount_above_maximum'""" in rule_sql
    without = tmp_path / "default.yaml"
    without.write_text(text.replace("plausible_from: 2000-01-01\n", ""))
    assert load_contract(without).plausible_from == EARLIEST_PLAUSIBLE_TIMESTAMP


def test_an_order_dated_1900_and_an_amount_of_1e12_are_quarantined_and_counted(tmp_path):
    tables = valid_tables()
    tables["orders"].loc[3, "created_at"] = datetime(1900, 1, 1)
    tables["orders"].loc[7, "amount_usd"] = 1e12
    report, code, text = validate_landing_zone(write_landing(tmp_path / "landing", tables))
    assert report.tables["orders"].quarantined_by_rule == {"before_plausible_era": 1, "amount_above_maximum": 1}
    assert "orders.before_plausible_era: 1" in text and "orders.amount_above_maximum: 1" in text


def test_an_accepted_amount_at_the_maximum_goes_through_the_features_exactly(tmp_path):
    """Every order of one supplier at the contract maximum, and a refund at it: accepted, and
    the exact money sums (DECIMAL(18, 6) per amount, 64-bit micro-dollars in the sums) hold them."""
    tables = valid_tables(n_suppliers=3, orders_per_supplier=12)
    orders = tables["orders"]
    top = orders.supplier_id == "S000"
    orders.loc[top, "amount_usd"] = MAX_USD
    disputes = tables["disputes"]
    disputed = disputes.order_id.isin(orders.loc[top, "order_id"])
    disputes.loc[disputed, "refund_usd"] = MAX_USD
    con = duckdb.connect()
    report = ingest_landing_zone(write_landing(tmp_path / "landing", tables), con)
    assert report.tables["orders"].rows_quarantined == 0
    assert_reconciles(report, con)
    assert con.execute("SELECT count(*) FROM validated.orders WHERE amount_usd = ?", [MAX_USD]).fetchone()[0] == top.sum()

    as_of = month_ends(date(2025, 1, 1), date(2025, 1, 31))
    features = compute_supplier_features(con, as_of).to_pandas().set_index("supplier_id")
    delivered = con.execute(
        "SELECT count(*) FROM validated.orders WHERE supplier_id = 'S000' AND delivered_at < ? AND status <> 'cancelled'",
        [datetime(2025, 2, 1)],
    ).fetchone()[0]
    assert delivered >= 2
    assert features.loc["S000", "deal_value_12m_usd"] == delivered * MAX_USD
    storefront = compute_storefront_metrics(con, as_of).to_pandas().set_index("supplier_id")
    assert storefront.loc["S000", "deal_value_12m_usd"] == delivered * MAX_USD
