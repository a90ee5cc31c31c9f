"""Point-in-time behaviour (docs/design.md §4/§5): later facts never reach T, facts appear from
the month they became known, absent tables give NULL, storefront figures hand-checked."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import compute_storefront_metrics, compute_supplier_features, month_ends
from feature_reference import as_comparable_frame
from landing_cut import as_known_at
from test_features_equivalence import assert_frames_match
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates

T = pd.Timestamp


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    as_of=st.sampled_from(zone_as_of_dates()),
    with_inquiries=st.booleans(),
    with_reviews=st.booleans(),
)
def test_events_after_t_change_nothing_at_t(seed, as_of, with_inquiries, with_reviews):
    zone = random_landing_zone(seed, n_suppliers=6, n_orders=150, with_inquiries=with_inquiries,
                               with_reviews=with_reviews)
    everything = connection_with(zone)
    as_known = connection_with(as_known_at(zone, as_of))
    for compute in (compute_supplier_features, compute_storefront_metrics):
        assert_frames_match(
            as_comparable_frame(compute(everything, [as_of])),
            as_comparable_frame(compute(as_known, [as_of])),
        )


# --- hand-built histories -------------------------------------------------------------------

def one_supplier(joined_at: str = "2023-01-01") -> pd.DataFrame:
    return pd.DataFrame(
        {"supplier_id": ["s1"], "country": ["CN"], "membership_tier": ["gold"],
         "joined_at": [T(joined_at)], "assurance_opt_in_at": [T("2024-03-31 23:59:59")], "category": ["toys"]}
    )


def orders_frame(rows: list[dict]) -> pd.DataFrame:
    defaults = {"supplier_id": "s1", "buyer_id": "b1", "buyer_country": "US", "amount_usd": 100.0,
                "payment_method": "tt", "assured": True, "promised_ship_by": None, "shipped_at": None,
                "delivered_at": None, "status": "completed", "cancelled_by": None, "cancelled_at": None}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    for column in ("created_at", "promised_ship_by", "shipped_at", "delivered_at", "cancelled_at"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def disputes_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["dispute_id", "order_id", "opened_at", "reason", "outcome",
                                        "resolved_at", "refund_usd"])
    for column in ("opened_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def by_month(table, column: str) -> dict[date, object]:
    return {row["as_of_date"]: row[column] for row in table.to_pylist()}


def test_dispute_outcome_counts_from_the_month_it_was_resolved():
    orders = orders_frame([
        {"order_id": "o1", "created_at": "2024-01-10"},
        {"order_id": "o2", "created_at": "2024-01-11"},
    ])
    disputes = disputes_frame([
        ("d1", "o1", "2024-02-10", "quality", "buyer_favored", "2024-04-30 23:59:59", 40.0),
        ("d2", "o2", "2024-02-11", "late_shipment", "buyer_favored", "2024-05-01 00:00:00", 60.0),
    ])
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes})
    features = compute_supplier_features(con, month_ends(date(2024, 1, 1), date(2024, 5, 31)))
    assert by_month(features, "buyer_won_disputes_6m") == {
        date(2024, 1, 31): 0, date(2024, 2, 29): 0, date(2024, 3, 31): 0,
        date(2024, 4, 30): 1, date(2024, 5, 31): 2,
    }
    assert by_month(features, "refund_6m_usd")[date(2024, 4, 30)] == 40.0
    assert by_month(features, "refund_6m_usd")[date(2024, 5, 31)] == 100.0
    # opened (known) in February: the dispute ratio sees both disputes from then on
    assert by_month(features, "disputed_orders_6m")[date(2024, 1, 31)] == 0
    assert by_month(features, "disputed_orders_6m")[date(2024, 2, 29)] == 2
    assert by_month(features, "pre_shipment_disputed_orders_6m")[date(2024, 2, 29)] == 1
    assert by_month(features, "post_delivery_disputed_orders_6m")[date(2024, 2, 29)] == 1
    assert by_month(features, "buyer_won_dispute_share_6m")[date(2024, 3, 31)] is None


def test_late_shipment_is_late_from_its_promised_day_even_if_shipped_later():
    orders = orders_frame([
        # promised 15 March, shipped one second after the promised day ended: late
        {"order_id": "o1", "created_at": "2024-03-01", "promised_ship_by": "2024-03-15 10:00",
         "shipped_at": "2024-03-16 00:00:00"},
        # shipped in the last second of the promised day: on time
        {"order_id": "o2", "created_at": "2024-03-01", "promised_ship_by": "2024-03-15 10:00",
         "shipped_at": "2024-03-15 23:59:59"},
        # promised 31 March, shipped only in May: late at 31 March already
        {"order_id": "o3", "created_at": "2024-03-01", "promised_ship_by": "2024-03-31",
         "shipped_at": "2024-05-02"},
    ])
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes_frame([])})
    features = compute_supplier_features(con, month_ends(date(2024, 2, 1), date(2024, 5, 31)))
    assert by_month(features, "promised_shipments_6m") == {
        date(2024, 2, 29): 0, date(2024, 3, 31): 3, date(2024, 4, 30): 3, date(2024, 5, 31): 3}
    assert by_month(features, "on_time_shipments_6m")[date(2024, 3, 31)] == 1
    assert by_month(features, "on_time_shipments_6m")[date(2024, 5, 31)] == 1
    assert by_month(features, "on_time_shipment_rate_6m")[date(2024, 2, 29)] is None


def test_delivery_counts_from_the_month_it_was_recorded():
    orders = orders_frame([
        {"order_id": "o1", "created_at": "2024-01-20", "delivered_at": "2024-03-01 00:00:00"},
    ])
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes_frame([])})
    features = compute_supplier_features(con, month_ends(date(2024, 1, 1), date(2024, 3, 31)))
    assert by_month(features, "completed_orders_6m") == {
        date(2024, 1, 31): 0, date(2024, 2, 29): 0, date(2024, 3, 31): 1}
    assert by_month(features, "deal_count_12m") == {
        date(2024, 1, 31): 0, date(2024, 2, 29): 0, date(2024, 3, 31): 1}
    assert by_month(features, "opted_in") == {
        date(2024, 1, 31): False, date(2024, 2, 29): False, date(2024, 3, 31): True}


def test_open_disputes_and_overdue_orders_are_counted_while_pending_at_t():
    orders = orders_frame([
        # promised 15 January, shipped 2 March: overdue at 31 January and 29 February only
        {"order_id": "o1", "created_at": "2024-01-05", "promised_ship_by": "2024-01-15",
         "shipped_at": "2024-03-02", "status": "shipped"},
        # promised 31 January, never shipped, cancelled: never overdue
        {"order_id": "o2", "created_at": "2024-01-05", "promised_ship_by": "2024-01-31",
         "status": "cancelled", "cancelled_by": "supplier"},
        # shipped on the first second after its promised day ended, in the same month: never overdue
        {"order_id": "o3", "created_at": "2024-01-05", "promised_ship_by": "2024-01-20",
         "shipped_at": "2024-01-21 00:00:00"},
    ])
    disputes = disputes_frame([
        # opened in January, resolved the first second of March: open at January's and February's ends
        ("d1", "o1", "2024-01-31 23:59:59", "late_shipment", "buyer_favored", "2024-03-01 00:00:00", 10.0),
        # opened and resolved within February: never open at a month end
        ("d2", "o3", "2024-02-02", "quality", "supplier_favored", "2024-02-20", 0.0),
    ])
    months = month_ends(date(2023, 12, 1), date(2024, 3, 31))
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes})
    features = compute_supplier_features(con, months)
    assert by_month(features, "open_disputes_at_t") == {
        date(2023, 12, 31): 0, date(2024, 1, 31): 1, date(2024, 2, 29): 1, date(2024, 3, 31): 0}
    assert by_month(features, "overdue_unshipped_orders_at_t") == {
        date(2023, 12, 31): 0, date(2024, 1, 31): 1, date(2024, 2, 29): 1, date(2024, 3, 31): 0}
    # The extract starts in January: a supplier joined in 2023 could trade one month of
    # the window at January's end, three at March's end.
    assert by_month(features, "trading_months_6m") == {
        date(2023, 12, 31): 0, date(2024, 1, 31): 1, date(2024, 2, 29): 2, date(2024, 3, 31): 3}
    assert by_month(features, "orders_per_month_6m")[date(2024, 3, 31)] == 1.0
    assert by_month(features, "orders_per_month_6m")[date(2023, 12, 31)] is None

    # Appending events after T (a new order, a dispute opened on 1 April) changes nothing at T.
    later_orders = pd.concat([orders, orders_frame([
        {"order_id": "o4", "created_at": "2024-04-01", "promised_ship_by": "2024-04-10"}])])
    later_disputes = pd.concat([disputes, disputes_frame([
        ("d3", "o3", "2024-04-01", "quality", "open", None, 0.0)])])
    con_later = connection_with({"suppliers": one_supplier(), "orders": later_orders, "disputes": later_disputes})
    assert_frames_match(
        as_comparable_frame(compute_supplier_features(con_later, months)),
        as_comparable_frame(features),
    )


def test_open_disputes_by_reason_and_orders_in_transit_appear_from_the_month_they_became_known():
    orders = orders_frame([
        # late (promised 15 January, shipped the 20th), delivered at March's first instant:
        # in transit, and late, at January's and February's ends only
        {"order_id": "o1", "created_at": "2024-01-05", "promised_ship_by": "2024-01-15",
         "shipped_at": "2024-01-20", "delivered_at": "2024-03-01 00:00:00"},
        # shipped in the last second of January, on time, never delivered: in transit from January on
        {"order_id": "o2", "created_at": "2024-01-05", "promised_ship_by": "2024-02-28",
         "shipped_at": "2024-01-31 23:59:59", "status": "shipped"},
        # shipped and delivered within February: never in transit at a month end
        {"order_id": "o3", "created_at": "2024-01-05", "promised_ship_by": "2024-01-06",
         "shipped_at": "2024-02-10", "delivered_at": "2024-02-25"},
        # no promised day (never late), shipped 1 February, cancelled on 15 March: in transit in February
        {"order_id": "o4", "created_at": "2024-01-05", "shipped_at": "2024-02-01",
         "status": "cancelled", "cancelled_by": "buyer", "cancelled_at": "2024-03-15"},
        # shipped the first second after its promised day ended, delivered 2 April: late in transit
        # at February's and March's ends
        {"order_id": "o5", "created_at": "2024-02-01", "promised_ship_by": "2024-02-01 09:00",
         "shipped_at": "2024-02-02 00:00:00", "delivered_at": "2024-04-02"},
        # cancelled without a time: cancelled from its creation, never in transit
        {"order_id": "o6", "created_at": "2024-01-05", "promised_ship_by": "2024-01-06",
         "shipped_at": "2024-01-10", "status": "cancelled", "cancelled_by": "supplier"},
    ])
    disputes = disputes_frame([
        # pre-shipment, opened in January's last second, resolved at March's first instant
        ("d1", "o1", "2024-01-31 23:59:59", "not_received", "buyer_favored", "2024-03-01 00:00:00", 10.0),
        # post-delivery (quality), opened in February, resolved only on 1 April: open until March's end
        ("d2", "o3", "2024-02-26", "quality", "supplier_favored", "2024-04-01", 0.0),
        # another reason, never resolved: open, but neither pre-shipment nor post-delivery
        ("d3", "o2", "2024-02-02", "other", "open", None, 0.0),
        # pre-shipment, opened and resolved within February: never open at a month end
        ("d4", "o5", "2024-02-10", "late_shipment", "settled", "2024-02-20", 5.0),
    ])
    months = month_ends(date(2023, 12, 1), date(2024, 4, 30))
    dec, jan, feb, mar, apr = months
    zone = {"suppliers": one_supplier(), "orders": orders, "disputes": disputes, "inquiries": None, "reviews": None}
    features = compute_supplier_features(connection_with(zone), months)
    assert by_month(features, "open_disputes_at_t") == {dec: 0, jan: 1, feb: 3, mar: 2, apr: 1}
    assert by_month(features, "open_pre_shipment_disputes_at_t") == {dec: 0, jan: 1, feb: 1, mar: 0, apr: 0}
    assert by_month(features, "open_post_delivery_disputes_at_t") == {dec: 0, jan: 0, feb: 1, mar: 1, apr: 0}
    assert by_month(features, "in_transit_orders_at_t") == {dec: 0, jan: 2, feb: 4, mar: 2, apr: 1}
    assert by_month(features, "late_in_transit_orders_at_t") == {dec: 0, jan: 1, feb: 2, mar: 1, apr: 0}

    # Each month end sees only what an extract taken that day held: the same values.
    for as_of in months:
        known = compute_supplier_features(connection_with(as_known_at(zone, as_of)), [as_of])
        assert_frames_match(as_comparable_frame(known), as_comparable_frame(features.filter(
            pc.equal(features["as_of_date"], pa.scalar(as_of, pa.date32())))))

    # Without a disputes table the open-dispute counts are unknown, the orders in transit are not.
    features = compute_supplier_features(connection_with({**zone, "disputes": None}), months)
    for column in ("open_disputes_at_t", "open_pre_shipment_disputes_at_t", "open_post_delivery_disputes_at_t"):
        assert features[column].null_count == features.num_rows, column
    assert by_month(features, "in_transit_orders_at_t") == {dec: 0, jan: 2, feb: 4, mar: 2, apr: 1}


def test_cancellation_counts_from_when_it_happened():
    orders = orders_frame([
        # delivered in January, cancelled by the supplier on 5 March (a return): a completed
        # order and a deal at January's and February's ends, a supplier cancellation from March
        {"order_id": "o1", "created_at": "2024-01-10", "shipped_at": "2024-01-12", "delivered_at": "2024-01-20",
         "status": "cancelled", "cancelled_by": "supplier", "cancelled_at": "2024-03-05"},
        # promised 15 January, never shipped, cancelled on 2 April: overdue until March's end
        {"order_id": "o2", "created_at": "2024-01-10", "promised_ship_by": "2024-01-15",
         "status": "cancelled", "cancelled_by": "buyer", "cancelled_at": "2024-04-02"},
    ])
    months = month_ends(date(2024, 1, 1), date(2024, 4, 30))
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes_frame([])})
    features = compute_supplier_features(con, months)
    jan, feb, mar, apr = months
    assert by_month(features, "completed_orders_6m") == {jan: 1, feb: 1, mar: 0, apr: 0}
    assert by_month(features, "deal_count_12m") == {jan: 1, feb: 1, mar: 0, apr: 0}
    assert by_month(compute_storefront_metrics(con, months), "transactions_12m") == {jan: 1, feb: 1, mar: 0, apr: 0}
    assert by_month(features, "supplier_cancelled_orders_6m") == {jan: 0, feb: 0, mar: 1, apr: 1}
    assert by_month(features, "overdue_unshipped_orders_at_t") == {jan: 1, feb: 1, mar: 1, apr: 0}

    # A source without cancellation times: the latest status is all there is, so the
    # cancellations count from the orders' creation.
    undated = orders.assign(cancelled_at=pd.NaT)
    con = connection_with({"suppliers": one_supplier(), "orders": undated, "disputes": disputes_frame([])})
    features = compute_supplier_features(con, months)
    assert by_month(features, "completed_orders_6m") == {jan: 0, feb: 0, mar: 0, apr: 0}
    assert by_month(features, "supplier_cancelled_orders_6m") == {jan: 1, feb: 1, mar: 1, apr: 1}
    assert by_month(features, "overdue_unshipped_orders_at_t") == {jan: 0, feb: 0, mar: 0, apr: 0}


INQUIRY_FEATURES = ["inquiries_6m", "answered_inquiries_6m", "response_rate_6m", "response_rate_6m_shrunk",
                    "median_response_hours_6m", "p90_response_hours_6m"]
REVIEW_FEATURES = ["review_count_6m", "review_rating_sum_6m", "review_mean_6m", "review_mean_6m_shrunk",
                   "low_rating_reviews_6m", "low_rating_share_6m", "low_rating_share_6m_shrunk"]


@pytest.mark.parametrize("absent", ["inquiries", "reviews"])
def test_absent_optional_table_gives_null_features(absent):
    zone = random_landing_zone(seed=5, n_suppliers=5, n_orders=200)
    zone[absent] = None
    features = compute_supplier_features(connection_with(zone), zone_as_of_dates())
    absent_columns = INQUIRY_FEATURES if absent == "inquiries" else REVIEW_FEATURES
    present_columns = REVIEW_FEATURES if absent == "inquiries" else INQUIRY_FEATURES
    for column in absent_columns:
        assert features[column].null_count == features.num_rows, column
    for column in present_columns:
        assert features[column].null_count < features.num_rows, column
    assert features["orders_6m"].null_count == 0


def test_present_but_empty_optional_table_gives_zero_counts_and_null_rates():
    zone = random_landing_zone(seed=5, n_suppliers=3, n_orders=50)
    zone["inquiries"] = zone["inquiries"].iloc[0:0]
    features = compute_supplier_features(connection_with(zone), [date(2024, 6, 30)])
    assert set(features["inquiries_6m"].to_pylist()) == {0}
    assert features["response_rate_6m"].null_count == features.num_rows
    assert features["response_rate_6m_shrunk"].null_count == features.num_rows


# --- storefront, hand-checked (docs/design.md §5) --------------------------------------------------

def storefront_zone(with_inquiries: bool = True) -> dict[str, pd.DataFrame | None]:
    suppliers = pd.concat([
        one_supplier(),
        one_supplier("2024-06-30 23:59:59").assign(supplier_id="s2"),  # joined by T: listed
        one_supplier("2024-07-01 00:00:00").assign(supplier_id="s3"),  # joined after T: not listed
    ])
    orders = orders_frame([
        {"order_id": "o1", "created_at": "2024-06-01", "delivered_at": "2024-06-30 23:59:59", "amount_usd": 100.0,
         "promised_ship_by": "2024-06-30 08:00", "shipped_at": "2024-06-30 23:59:59"},
        {"order_id": "o2", "created_at": "2024-06-01", "delivered_at": "2024-07-01 00:00:00", "amount_usd": 200.0,
         "promised_ship_by": "2024-07-01 00:00:00", "shipped_at": "2024-06-02"},
        {"order_id": "o3", "created_at": "2023-06-01", "delivered_at": "2023-07-01 00:00:00", "amount_usd": 50.0},
        {"order_id": "o4", "created_at": "2023-06-01", "delivered_at": "2023-06-30 23:59:59", "amount_usd": 25.0},
        {"order_id": "o5", "created_at": "2024-05-01", "delivered_at": "2024-05-05", "amount_usd": 1000.0,
         "status": "cancelled", "cancelled_by": "buyer"},
        {"order_id": "o6", "created_at": "2023-12-20", "promised_ship_by": "2024-01-01 00:00:00",
         "shipped_at": "2024-01-02 00:00:00", "status": "shipped"},
        {"order_id": "o7", "created_at": "2023-12-20", "promised_ship_by": "2023-12-31 12:00",
         "shipped_at": "2023-12-31 12:00", "status": "shipped"},
        {"order_id": "o8", "created_at": "2024-04-01", "promised_ship_by": "2024-04-10 12:00", "status": "placed"},
    ])
    inquiries = pd.DataFrame(
        [
            ("q1", "2024-01-01 00:00:00", "2024-01-01 02:00:00"),   # in window, 2 h
            ("q2", "2023-12-31 23:59:59", "2024-01-01 00:10:00"),   # received before the window
            ("q3", "2024-06-30 20:00:00", "2024-06-30 23:59:59"),   # answered in T's last second
            ("q4", "2024-06-30 22:00:00", "2024-07-01 00:00:00"),   # answered at T + 1 day: not by T
            ("q5", "2024-06-30 23:59:59", None),                    # never answered
            ("q6", "2024-07-01 00:00:00", "2024-07-01 01:00:00"),   # received after T
            ("q7", "2024-03-10 00:00:00", "2024-03-10 10:00:00"),   # 10 h
        ],
        columns=["inquiry_id", "received_at", "first_response_at"],
    ).assign(supplier_id="s1", buyer_id="b1")
    for column in ("received_at", "first_response_at"):
        inquiries[column] = pd.to_datetime(inquiries[column], format="ISO8601")
    return {"suppliers": suppliers, "orders": orders, "disputes": disputes_frame([]),
            "inquiries": inquiries if with_inquiries else None, "reviews": None}


def test_storefront_metrics_by_hand():
    metrics = compute_storefront_metrics(connection_with(storefront_zone()), [date(2024, 6, 30)]).to_pylist()
    assert [row["supplier_id"] for row in metrics] == ["s1", "s2"]
    s1, s2 = metrics
    assert s1["as_of_date"] == date(2024, 6, 30)
    # o1 (delivered T 23:59:59) and o3 (delivered at the first instant of the window);
    # not o2 (T + 1 day), o4 (before the window), o5 (cancelled)
    assert s1["transactions_12m"] == 2
    assert s1["deal_value_12m_usd"] == 150.0
    # received in Jan..Jun: q1, q3, q4, q5, q7; answered by T: q1, q3, q7
    assert s1["response_rate_6m"] == pytest.approx(3 / 5, abs=1e-12)
    assert s1["median_response_hours_6m"] == pytest.approx(4 - 1 / 3600, abs=1e-12)
    # promised in the window: o1 (on time, last second), o6 (one second late), o8 (never shipped)
    assert s1["on_time_shipment_rate_6m"] == pytest.approx(1 / 3, abs=1e-12)
    # a supplier with no history: zero deals, no rates
    assert (s2["transactions_12m"], s2["deal_value_12m_usd"]) == (0, 0.0)
    assert s2["response_rate_6m"] is None
    assert s2["median_response_hours_6m"] is None
    assert s2["on_time_shipment_rate_6m"] is None


def test_storefront_metrics_a_month_later():
    metrics = compute_storefront_metrics(connection_with(storefront_zone()), [date(2024, 7, 31)]).to_pylist()
    s1 = next(row for row in metrics if row["supplier_id"] == "s1")
    assert [row["supplier_id"] for row in metrics] == ["s1", "s2", "s3"]
    # window Aug 2023..Jul 2024: o1, o2; o3 has left the window
    assert (s1["transactions_12m"], s1["deal_value_12m_usd"]) == (2, 300.0)
    # received Feb..Jul: q3, q4, q5, q6, q7, all but q5 answered by 31 July
    assert s1["response_rate_6m"] == pytest.approx(4 / 5, abs=1e-12)
    # answered times: q3 4h-1s, q4 2h, q6 1h, q7 10h -> median (2 + 3.99972..)/2
    assert s1["median_response_hours_6m"] == pytest.approx((2 + 4 - 1 / 3600) / 2, abs=1e-12)
    # promised Feb..Jul: o1 on time, o2 (1 July, shipped 2 June) on time, o8 late
    assert s1["on_time_shipment_rate_6m"] == pytest.approx(2 / 3, abs=1e-12)


def test_storefront_response_figures_null_without_inquiries_table():
    metrics = compute_storefront_metrics(connection_with(storefront_zone(with_inquiries=False)),
                                         [date(2024, 6, 30)])
    assert metrics["response_rate_6m"].null_count == metrics.num_rows
    assert metrics["median_response_hours_6m"].null_count == metrics.num_rows
    assert metrics["transactions_12m"].to_pylist() == [2, 0]


# --- calendar and output shape ----------------------------------------------------------------

def test_month_ends():
    assert month_ends(date(2024, 1, 15), date(2024, 4, 30)) == [
        date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    assert month_ends(date(2024, 1, 31), date(2024, 1, 31)) == [date(2024, 1, 31)]
    assert month_ends(date(2024, 2, 1), date(2024, 2, 28)) == []
    assert month_ends(date(2023, 12, 1), date(2024, 1, 31)) == [date(2023, 12, 31), date(2024, 1, 31)]
    assert month_ends(date(2024, 5, 1), date(2024, 1, 1)) == []


def test_non_month_end_is_rejected():
    con = connection_with(storefront_zone())
    with pytest.raises(ValueError, match="not a month end"):
        compute_supplier_features(con, [date(2024, 6, 15)])


def test_output_is_sorted_deterministic_and_leaves_the_connection_clean():
    con = connection_with(random_landing_zone(seed=3, n_suppliers=8, n_orders=300))
    as_of_dates = list(reversed(zone_as_of_dates()))  # order of the request does not matter
    first = compute_supplier_features(con, as_of_dates)
    second = compute_supplier_features(con, as_of_dates + as_of_dates[:3])  # duplicates ignored
    assert first.equals(second)
    keys = list(zip(first["as_of_date"].to_pylist(), first["supplier_id"].to_pylist(), strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    leftovers = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema <> 'validated'").fetchall()
    assert leftovers == []
    assert compute_supplier_features(con, []).num_rows == 0
