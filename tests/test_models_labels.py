"""Labels on hand-built orders and disputes: window boundaries, outcomes, completeness,
exposure, refunds by reason group and the default rule."""

from datetime import date, datetime, timedelta

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


# --------------------------------------------------------------------------------------
# Loss rate and default labels: one supplier per case, T = 2024-01-31.
# Exposure window: created_at in [2024-02-01 00:00, 2024-08-01 00:00).
# Due window (DEFAULT_GRACE_DAYS = 14): promised day in [2024-02-01, 2024-07-18).
# Deadline: shipped_at < promised day + 15 days 00:00.

def _order(created, amount=100.0, promised=None, shipped=None, status="completed", cancelled_by=None):
    return (created, amount, promised, shipped, status, cancelled_by)


def _on_time(promised, amount=100.0):
    """An order created a week before its promised day and shipped on that day."""
    day = datetime.fromisoformat(promised)
    created = (day - timedelta(days=7)).isoformat(sep=" ")
    return _order(created, amount, promised, (day + timedelta(hours=10)).isoformat(sep=" "))


def _unshipped(promised, status="placed", cancelled_by=None):
    day = datetime.fromisoformat(promised)
    return _order((day - timedelta(days=7)).isoformat(sep=" "), 100.0, promised, None, status, cancelled_by)


def _labels_for(orders, disputes=(), with_disputes=True):
    """The T row of one supplier 's' with these orders; disputes: (order index, reason,
    outcome, resolved_at, refund)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA validated")
    con.execute(
        "CREATE TABLE validated.suppliers (supplier_id VARCHAR, country VARCHAR, membership_tier VARCHAR,"
        " joined_at TIMESTAMP, assurance_opt_in_at TIMESTAMP, category VARCHAR)"
    )
    con.execute("INSERT INTO validated.suppliers VALUES ('s', 'CN', 'gold', '2023-01-01', NULL, 'apparel')")
    con.execute(
        "CREATE TABLE validated.orders (order_id VARCHAR, supplier_id VARCHAR, buyer_id VARCHAR,"
        " buyer_country VARCHAR, created_at TIMESTAMP, amount_usd DOUBLE, payment_method VARCHAR,"
        " assured BOOLEAN, promised_ship_by TIMESTAMP, shipped_at TIMESTAMP, delivered_at TIMESTAMP,"
        " status VARCHAR, cancelled_by VARCHAR)"
    )
    for i, (created, amount, promised, shipped, status, cancelled_by) in enumerate(orders):
        con.execute(
            "INSERT INTO validated.orders VALUES (?, 's', 'b', 'US', ?, ?, 'tt', true, ?, ?, NULL, ?, ?)",
            [f"o{i}", created, amount, promised, shipped, status, cancelled_by],
        )
    if with_disputes:
        con.execute(
            "CREATE TABLE validated.disputes (dispute_id VARCHAR, order_id VARCHAR, opened_at TIMESTAMP,"
            " reason VARCHAR, outcome VARCHAR, resolved_at TIMESTAMP, refund_usd DOUBLE)"
        )
        for j, (order, reason, outcome, resolved, refund) in enumerate(disputes):
            con.execute(
                "INSERT INTO validated.disputes VALUES (?, ?, '2024-01-15', ?, ?, ?, ?)",
                [f"d{j}", f"o{order}", reason, outcome, resolved, refund],
            )
    table = compute_breach_labels(con, [T], data_horizon=datetime(2024, 9, 30))
    (row,) = table.to_pylist()
    return row


EXPOSURE_AND_LOSS_CASES = [
    pytest.param(  # created exactly at T + 1 day 00:00 is in the window; T 23:59:59 is not
        [_order("2024-02-01 00:00:00", 100.0), _order("2024-01-31 23:59:59", 1000.0)], [],
        {"forward_order_value_6m_usd": 100.0, "realised_loss_rate_6m": 0.0}, id="exposure-opens-at-T-plus-1-day",
    ),
    pytest.param(  # the window's last instant counts, the next day's first does not
        [_order("2024-07-31 23:59:59", 200.0), _order("2024-08-01 00:00:00", 500.0)], [],
        {"forward_order_value_6m_usd": 200.0}, id="exposure-closes-at-window-end",
    ),
    pytest.param(  # every status is exposure: a cancelled and a placed order count too
        [_order("2024-03-01", 100.0, status="cancelled", cancelled_by="buyer"), _order("2024-03-02", 50.0, status="placed")],
        [], {"forward_order_value_6m_usd": 150.0}, id="exposure-all-statuses",
    ),
    pytest.param(  # buyer-won refunds split by reason group; 'other' only in the total;
        # supplier-won and settled refunds are no loss; refunds on an order created
        # before T count (resolved in the window)
        [_order("2024-01-10", 400.0), _order("2024-03-01", 1000.0)],
        [
            (0, "late_shipment", "buyer_favored", "2024-02-10", 10.0),
            (0, "not_received", "buyer_favored", "2024-03-10", 20.0),
            (1, "quality", "buyer_favored", "2024-04-10", 40.0),
            (1, "other", "buyer_favored", "2024-04-11", 5.0),
            (1, "quality", "supplier_favored", "2024-04-12", 0.0),
            (1, "quality", "settled", "2024-04-13", 30.0),
        ],
        {"forward_order_value_6m_usd": 1000.0, "breach_refund_usd_6m": 75.0, "pre_shipment_refund_usd_6m": 30.0,
         "post_delivery_refund_usd_6m": 40.0, "realised_loss_rate_6m": 0.075, "realised_loss_rate_pre_shipment_6m": 0.03,
         "realised_loss_rate_post_delivery_6m": 0.04},
        id="refunds-by-reason-group",
    ),
    pytest.param(  # refunds resolved outside the window (T 23:59:59, window end + 1 day) are not losses
        [_order("2024-03-01", 100.0)],
        [(0, "quality", "buyer_favored", "2024-01-31 23:59:59", 50.0),
         (0, "late_shipment", "buyer_favored", "2024-08-01 00:00:00", 50.0)],
        {"breach_refund_usd_6m": 0.0, "pre_shipment_refund_usd_6m": 0.0, "post_delivery_refund_usd_6m": 0.0},
        id="refunds-outside-window",
    ),
    pytest.param(  # no order in the window: a refund with no exposure has no rate (NULL)
        [_order("2023-12-01", 100.0)], [(0, "quality", "buyer_favored", "2024-02-10", 60.0)],
        {"forward_order_value_6m_usd": 0.0, "breach_refund_usd_6m": 60.0, "realised_loss_rate_6m": None,
         "realised_loss_rate_pre_shipment_6m": None, "realised_loss_rate_post_delivery_6m": None},
        id="zero-exposure-null-rate",
    ),
]


@pytest.mark.parametrize(("orders", "disputes", "expected"), EXPOSURE_AND_LOSS_CASES)
def test_exposure_refunds_and_loss_rates(orders, disputes, expected):
    row = _labels_for(orders, disputes)
    for column, value in expected.items():
        assert row[column] == (pytest.approx(value) if value is not None else None), column


def test_dollar_sums_are_exact_so_they_do_not_depend_on_the_order_rows_are_added_in():
    # Ten orders of $0.10 and ten buyer-won refunds of $0.10: a float sum gives
    # 0.9999999999999999, and DuckDB's threads add rows in varying order, so a float sum
    # changed the training data's fingerprint from one run to the next (every rerun
    # retrained). Exact decimal sums give 1.0 whatever the order.
    orders = [_order(f"2024-03-{day:02d}", 0.1) for day in range(1, 11)]
    disputes = [(i, "quality", "buyer_favored", f"2024-04-{i + 1:02d}", 0.1) for i in range(10)]
    row = _labels_for(orders, disputes)
    assert row["forward_order_value_6m_usd"] == 1.0
    assert row["breach_refund_usd_6m"] == 1.0
    assert row["post_delivery_refund_usd_6m"] == 1.0


DEFAULT_CASES = [
    pytest.param(  # below the minimum: two orders due, both unshipped, is no default
        [_unshipped("2024-03-01"), _unshipped("2024-03-02")], [], (2, 2, False), id="below-min-orders",
    ),
    pytest.param(  # exactly at the share: 2 of 4 due failed -> default
        [_unshipped("2024-03-01"), _unshipped("2024-03-02"), _on_time("2024-03-03"), _on_time("2024-03-04")],
        [], (4, 2, True), id="exactly-at-share",
    ),
    pytest.param(  # just under the share: 1 of 3 failed -> no default
        [_unshipped("2024-03-01"), _on_time("2024-03-03"), _on_time("2024-03-04")], [], (3, 1, False),
        id="under-share",
    ),
    pytest.param(  # grace boundary: shipped on promised day + 14 at 23:59:59 is in time,
        # on promised day + 15 at 00:00 is a failure
        [_order("2024-02-20", promised="2024-03-01", shipped="2024-03-15 23:59:59"),
         _order("2024-02-20", promised="2024-03-01", shipped="2024-03-16 00:00:00"),
         # a promise with a time of day: the grace still counts from the promised day's start
         _order("2024-02-20", promised="2024-03-01 18:00:00", shipped="2024-03-16 00:00:00")],
        [], (3, 2, True), id="grace-boundary",
    ),
    pytest.param(  # buyer-cancelled orders are neither due nor failures
        [_unshipped("2024-03-01", "cancelled", "buyer"), _unshipped("2024-03-02", "cancelled", "buyer"),
         _unshipped("2024-03-03", "cancelled", "buyer"), _on_time("2024-03-04")],
        [], (1, 0, False), id="buyer-cancelled-not-counted",
    ),
    pytest.param(  # supplier- and platform-cancelled orders are failures
        [_unshipped("2024-03-01", "cancelled", "supplier"), _unshipped("2024-03-02", "cancelled", "platform"),
         _on_time("2024-03-04")],
        [], (3, 2, True), id="supplier-platform-cancelled-fail",
    ),
    pytest.param(  # due window: promised day T (before) and 2024-07-18 (grace would end after
        # the window) are not due; 2024-02-01 and 2024-07-17 are
        [_unshipped("2024-01-31"), _unshipped("2024-02-01"), _unshipped("2024-07-17"), _unshipped("2024-07-18")],
        [], (2, 2, False), id="due-window-boundaries",
    ),
    pytest.param(  # shipped on time but a buyer-won not_received claim resolved by the window
        # end fails it; one resolved after the window end, a lost claim or a quality
        # claim does not
        [_on_time("2024-03-01"), _on_time("2024-03-02"), _on_time("2024-03-03"), _on_time("2024-03-04")],
        [(0, "not_received", "buyer_favored", "2024-07-31 23:59:59", 100.0),
         (1, "not_received", "buyer_favored", "2024-08-01 00:00:00", 100.0),
         (2, "not_received", "supplier_favored", "2024-05-01", 0.0),
         (3, "quality", "buyer_favored", "2024-05-01", 100.0)],
        (4, 1, False), id="not-received-claims",
    ),
    pytest.param(  # no promise recorded: due created_at + 14 days; created 2024-01-17 12:00 is
        # due 2024-01-31 (not in the window), 2024-01-18 is due 2024-02-01
        [_order("2024-01-17 12:00:00", shipped=None, status="placed"),
         _order("2024-01-18 00:00:00", shipped=None, status="placed")],
        [], (1, 1, False), id="no-promise-lead",
    ),
]


@pytest.mark.parametrize(("orders", "disputes", "expected"), DEFAULT_CASES)
def test_default_rule(orders, disputes, expected):
    row = _labels_for(orders, disputes)
    assert (row["orders_due_6m"], row["failed_orders_due_6m"], row["default_6m"]) == expected


def test_without_disputes_default_and_exposure_come_from_orders_and_loss_is_unknown():
    orders = [_unshipped("2024-03-01"), _unshipped("2024-03-02"), _on_time("2024-03-04", amount=300.0)]
    row = _labels_for(orders, with_disputes=False)
    assert (row["orders_due_6m"], row["failed_orders_due_6m"], row["default_6m"]) == (3, 2, True)
    assert row["forward_order_value_6m_usd"] == 500.0
    for column in ("breach_refund_usd_6m", "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m",
                   "realised_loss_rate_6m", "realised_loss_rate_pre_shipment_6m", "realised_loss_rate_post_delivery_6m", "breach_6m"):
        assert row[column] is None, column
    assert row["label_complete"] is False



def test_training_set_carries_every_label_column(tmp_path):
    from data_contracts import ingest_landing_zone
    from models.training_set import LABEL_COLUMNS, build_training_set
    from synthetic import generate_landing_zone

    generate_landing_zone(tmp_path, n_suppliers=60, months=9, seed=2, include_inquiries=False, include_reviews=False)
    con = duckdb.connect()
    report = ingest_landing_zone(tmp_path, con)
    training = build_training_set(con, report.data_horizon).to_pandas()
    for column in ("forward_order_value_6m_usd", "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m",
                   "realised_loss_rate_6m", "realised_loss_rate_pre_shipment_6m", "realised_loss_rate_post_delivery_6m",
                   "orders_due_6m", "failed_orders_due_6m", "default_6m"):
        assert column in LABEL_COLUMNS and column in training.columns, column
    labels = compute_breach_labels(con, sorted(training.as_of_date.unique()), data_horizon=report.data_horizon)
    labels = labels.to_pandas().set_index(["as_of_date", "supplier_id"]).loc[
        training.set_index(["as_of_date", "supplier_id"]).index
    ]
    assert training.forward_order_value_6m_usd.to_numpy() == pytest.approx(labels.forward_order_value_6m_usd.to_numpy())
    assert (training.default_6m.to_numpy() == labels.default_6m.to_numpy()).all()
    assert training.forward_order_value_6m_usd.sum() > 0


def test_no_label_column_shares_a_feature_name():
    # a label named like a feature (e.g. the past window's order_value_6m_usd) would be
    # ambiguous in the training set and could leak the future into a model input
    from features import FEATURES
    from models.labels import LABEL_SCHEMA

    assert not set(LABEL_SCHEMA.names) & {f.name for f in FEATURES}
