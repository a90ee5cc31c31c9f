"""Breach labels on hand-built disputes: window boundaries, outcomes, completeness."""

from datetime import date, datetime

import duckdb
import pytest

from models.labels import add_months, compute_breach_labels

T = date(2024, 1, 31)  # label window: resolved_at in [2024-02-01 00:00, 2024-08-01 00:00)


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA validated")
    con.execute(
        "CREATE TABLE validated.suppliers (supplier_id VARCHAR, country VARCHAR, membership_tier VARCHAR,"
        " joined_at TIMESTAMP, assurance_opt_in_at TIMESTAMP, category VARCHAR)"
    )
    con.execute(
        "CREATE TABLE validated.orders (order_id VARCHAR, supplier_id VARCHAR, buyer_id VARCHAR,"
        " buyer_country VARCHAR, created_at TIMESTAMP, amount_usd DOUBLE, payment_method VARCHAR,"
        " assured BOOLEAN, promised_ship_by TIMESTAMP, shipped_at TIMESTAMP, delivered_at TIMESTAMP,"
        " status VARCHAR, cancelled_by VARCHAR)"
    )
    con.execute(
        "CREATE TABLE validated.disputes (dispute_id VARCHAR, order_id VARCHAR, opened_at TIMESTAMP,"
        " reason VARCHAR, outcome VARCHAR, resolved_at TIMESTAMP, refund_usd DOUBLE)"
    )
    suppliers = {
        "at_day_start": "2023-01-01",   # buyer_favored resolved exactly at T + 1 day 00:00 -> breach
        "at_t_2359": "2023-01-01",      # resolved at T 23:59:59 -> known at T, not a label
        "open": "2023-01-01",           # open dispute -> never a breach
        "supplier_won": "2023-01-01",   # supplier_favored -> not a breach
        "window_last_day": "2023-01-01",  # resolved 2024-07-31 23:59 -> breach; 08-01 00:00 -> not
        "after_window": "2023-01-01",
        "joined_day_t": "2024-01-31 18:00:00",  # joined during day T -> in population
        "joined_after": "2024-02-01",           # joined after T -> not in T's population
    }
    for i, (supplier, joined) in enumerate(suppliers.items()):
        con.execute("INSERT INTO validated.suppliers VALUES (?, 'CN', 'gold', ?, NULL, 'apparel')", [supplier, joined])
        con.execute(
            "INSERT INTO validated.orders VALUES (?, ?, 'b', 'US', '2023-12-01', 500, 'tt', true,"
            " NULL, NULL, NULL, 'completed', NULL)",
            [f"o{i}", supplier],
        )
    disputes = [
        ("at_day_start", "quality", "buyer_favored", "2024-02-01 00:00:00", 100.0),
        ("at_day_start", "late_shipment", "buyer_favored", "2024-03-01 00:00:00", 50.0),
        ("at_t_2359", "quality", "buyer_favored", "2024-01-31 23:59:59", 100.0),
        ("open", "quality", "open", None, 0.0),
        ("supplier_won", "quality", "supplier_favored", "2024-03-01", 0.0),
        ("window_last_day", "not_received", "buyer_favored", "2024-07-31 23:59:59", 70.0),
        ("after_window", "quality", "buyer_favored", "2024-08-01 00:00:00", 70.0),
        ("joined_day_t", "other", "buyer_favored", "2024-05-01", 10.0),
        ("joined_after", "quality", "buyer_favored", "2024-05-01", 10.0),
    ]
    index = {name: i for i, name in enumerate(suppliers)}
    for j, (supplier, reason, outcome, resolved, refund) in enumerate(disputes):
        con.execute(
            "INSERT INTO validated.disputes VALUES (?, ?, '2024-01-15', ?, ?, ?, ?)",
            [f"d{j}", f"o{index[supplier]}", reason, outcome, resolved, refund],
        )
    return con


def _by_supplier(table):
    return {row["supplier_id"]: row for row in table.to_pylist()}


def test_window_boundaries_are_end_of_day_exact(con):
    labels = _by_supplier(compute_breach_labels(con, [T], data_horizon=datetime(2024, 9, 30, 12)))
    assert labels["at_day_start"]["breach_6m"] is True
    assert labels["at_day_start"]["breach_refund_usd_6m"] == 150.0
    assert labels["at_day_start"]["breach_count_6m"] == 2
    assert labels["at_day_start"]["pre_shipment_breach_6m"] is True
    assert labels["at_day_start"]["post_delivery_breach_6m"] is True
    assert labels["at_t_2359"]["breach_6m"] is False
    assert labels["window_last_day"]["breach_6m"] is True
    assert labels["window_last_day"]["pre_shipment_breach_6m"] is True
    assert labels["window_last_day"]["post_delivery_breach_6m"] is False
    assert labels["after_window"]["breach_6m"] is False


def test_open_and_supplier_won_disputes_are_never_breaches(con):
    labels = _by_supplier(compute_breach_labels(con, [T], data_horizon=datetime(2024, 9, 30)))
    for supplier in ("open", "supplier_won"):
        assert labels[supplier]["breach_6m"] is False
        assert labels[supplier]["breach_refund_usd_6m"] == 0.0


def test_population_is_suppliers_joined_by_end_of_day_t(con):
    labels = _by_supplier(compute_breach_labels(con, [T], data_horizon=datetime(2024, 9, 30)))
    assert "joined_after" not in labels
    assert labels["joined_day_t"]["breach_6m"] is True  # 'other' is a breach of neither kind
    assert labels["joined_day_t"]["pre_shipment_breach_6m"] is False
    assert labels["joined_day_t"]["post_delivery_breach_6m"] is False


def test_label_complete_needs_the_whole_window_observed(con):
    months = [date(2024, 1, 31), date(2024, 2, 29)]
    table = compute_breach_labels(con, months, data_horizon=datetime(2024, 7, 31, 23, 0))
    complete = {row["as_of_date"]: row["label_complete"] for row in table.to_pylist()}
    assert complete == {date(2024, 1, 31): True, date(2024, 2, 29): False}
    ends = {row["as_of_date"]: row["label_window_end"] for row in table.to_pylist()}
    assert ends[date(2024, 2, 29)] == date(2024, 8, 31)  # month end maps to month end
    earlier = compute_breach_labels(con, [T], data_horizon=datetime(2024, 7, 30, 23, 59))
    assert not any(earlier.column("label_complete").to_pylist())


def test_horizon_defaults_to_newest_event(con):
    table = compute_breach_labels(con, [T])  # newest event: 2024-08-01 resolution
    assert all(table.column("label_complete").to_pylist())


def test_add_months_keeps_month_ends():
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 15), 1) == date(2024, 2, 15)
    assert add_months(date(2023, 12, 31), 2) == date(2024, 2, 29)
