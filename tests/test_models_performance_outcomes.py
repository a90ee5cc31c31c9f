"""Labels under the performance outcome definition (data_contracts/outcomes.py), on hand-built
orders and reviews of one supplier, and the manifest's `outcomes` section.

T = 2024-01-31: the label window is [2024-02-01 00:00, 2024-08-01 00:00). With the default
definition, performance(late>7d,undelivered>30d,cancelled,rating<=1), an order promised on day
P fails late at P + 8 days 00:00 when not shipped before, and undelivered at P + 31 days 00:00.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
import pytest

from data_contracts import ingest_landing_zone
from data_contracts.errors import LandingZoneError
from data_contracts.manifest import MANIFEST_NAME, read_declared_outcomes
from data_contracts.outcomes import OutcomeDefinition, read_outcome_definition, write_outcome_definition
from models.labels import compute_breach_labels
from models.training import learned_outcome_definition

T = date(2024, 1, 31)
HORIZON = datetime(2024, 9, 30)
PERFORMANCE = OutcomeDefinition(definition="performance")


def _order(promised, shipped=None, delivered=None, *, amount=100.0, created=None, status=None,
           cancelled_by=None, cancelled_at=None, reviews=()):
    """One order: promised ship day, when shipped and delivered; reviews as (created_at, rating)."""
    created = created or (datetime.fromisoformat(promised) - timedelta(days=5)).isoformat(sep=" ")
    status = status or ("cancelled" if cancelled_by or cancelled_at else "completed" if delivered else "placed")
    return dict(created=created, amount=amount, promised=promised, shipped=shipped, delivered=delivered,
                status=status, cancelled_by=cancelled_by, cancelled_at=cancelled_at, reviews=reviews)


def _fine(promised, amount=100.0, **kwargs):
    """Shipped on its promised day and delivered three days later."""
    day = datetime.fromisoformat(promised)
    return _order(promised, (day + timedelta(hours=10)).isoformat(sep=" "),
                  (day + timedelta(days=3)).isoformat(sep=" "), amount=amount, **kwargs)


def _validated(orders, with_reviews=True) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA validated")
    con.execute(
        "CREATE TABLE validated.suppliers (supplier_id VARCHAR, country VARCHAR, membership_tier VARCHAR,"
        " joined_at TIMESTAMP, assurance_opt_in_at TIMESTAMP, category VARCHAR)"
    )
    con.execute("INSERT INTO validated.suppliers VALUES ('s', 'BR', 'gold', '2023-01-01', NULL, 'toys')")
    con.execute(
        "CREATE TABLE validated.orders (order_id VARCHAR, supplier_id VARCHAR, buyer_id VARCHAR,"
        " buyer_country VARCHAR, created_at TIMESTAMP, amount_usd DOUBLE, payment_method VARCHAR,"
        " assured BOOLEAN, promised_ship_by TIMESTAMP, shipped_at TIMESTAMP, delivered_at TIMESTAMP,"
        " status VARCHAR, cancelled_by VARCHAR, cancelled_at TIMESTAMP)"
    )
    if with_reviews:
        con.execute("CREATE TABLE validated.reviews (review_id VARCHAR, order_id VARCHAR, created_at TIMESTAMP, rating INTEGER)")
    for i, o in enumerate(orders):
        con.execute(
            "INSERT INTO validated.orders VALUES (?, 's', 'b', 'BR', ?, ?, 'boleto', false, ?, ?, ?, ?, ?, ?)",
            [f"o{i}", o["created"], o["amount"], o["promised"], o["shipped"], o["delivered"], o["status"],
             o["cancelled_by"], o["cancelled_at"]],
        )
        for j, (written, rating) in enumerate(o["reviews"]):
            con.execute("INSERT INTO validated.reviews VALUES (?, ?, ?, ?)", [f"r{i}-{j}", f"o{i}", written, rating])
    return con


def _labels(orders, outcomes=PERFORMANCE, horizon=HORIZON):
    (row,) = compute_breach_labels(_validated(orders), [T], data_horizon=horizon, outcomes=outcomes).to_pylist()
    return row


# (orders, expected (breach_count_6m, pre-shipment refund, post-delivery refund)); amounts of
# 100 unless said otherwise, so a refund of 100 is one order.
FAILURE_CASES = [
    pytest.param(  # grace boundary: shipped at P + 7 days 23:59:59 is in time; at P + 8 days 00:00
        # it is late, and the refund is the late order's amount
        [_order("2024-03-01", "2024-03-08 23:59:59", "2024-03-10", amount=100.0),
         _order("2024-03-01", "2024-03-09 00:00:00", "2024-03-10", amount=40.0)],
        (1, 40.0, 0.0), id="late-shipment-grace-boundary",
    ),
    pytest.param(  # a promise with a time of day: the grace counts from the promised day's start
        [_order("2024-03-01 18:00:00", "2024-03-09 00:00:00", "2024-03-10")], (1, 100.0, 0.0),
        id="late-shipment-promise-with-time",
    ),
    pytest.param(  # never shipped: late at its deadline, whatever its status
        [_order("2024-03-01")], (1, 100.0, 0.0), id="never-shipped",
    ),
    pytest.param(  # no carrier scan but delivered in time: the delivery proves the shipment
        [_order("2024-03-01", None, "2024-03-05")], (0, 0.0, 0.0), id="delivery-proves-shipment",
    ),
    pytest.param(  # not delivered by P + 30 days 23:59:59 fails at P + 31 days 00:00; in time just before
        [_order("2024-03-01", "2024-03-01", "2024-03-31 23:59:59"),
         _order("2024-03-01", "2024-03-01", "2024-04-01 00:00:00"),
         _order("2024-03-01", "2024-03-01", None, status="shipped")],
        (2, 200.0, 0.0), id="not-delivered-by-deadline",
    ),
    pytest.param(  # cancelled by the supplier or the platform in the window: failures; by the
        # buyer: the buyer withdrew, never a failure
        [_order("2024-03-01", cancelled_by="supplier", cancelled_at="2024-02-10"),
         _order("2024-03-01", cancelled_by="platform", cancelled_at="2024-02-11"),
         _order("2024-03-01", cancelled_by="buyer", cancelled_at="2024-02-12")],
        (2, 200.0, 0.0), id="cancelled-by-supplier-platform-not-buyer",
    ),
    pytest.param(  # a supplier cancellation known at T (cancelled_at before the window) is a
        # feature, not a label; one without cancelled_at is dated at the shipping deadline
        [_order("2024-02-20", created="2024-01-10", cancelled_by="supplier", cancelled_at="2024-01-20"),
         _order("2024-03-01", cancelled_by="supplier")],
        (1, 100.0, 0.0), id="cancellation-known-at-T-and-undated",
    ),
    pytest.param(  # cancelled with no recorded canceller (Olist) and never shipped: fails late
        [_order("2024-03-01", status="cancelled")], (1, 100.0, 0.0), id="unknown-canceller-unshipped",
    ),
    pytest.param(  # one star on delivered goods is post-delivery; two stars is no failure; a
        # one-star review before delivery complains of non-receipt: pre-shipment
        [_fine("2024-03-01", amount=10.0, reviews=[("2024-03-10", 1)]),
         _fine("2024-03-01", amount=20.0, reviews=[("2024-03-10", 2)]),
         _fine("2024-03-01", amount=30.0, reviews=[("2024-03-02", 1)])],
        (2, 30.0, 10.0), id="low-rating-covers",
    ),
    pytest.param(  # an order fails once, at its first failure, under that failure's cover:
        # late first (pre-shipment), then rated one star: one refund of its amount
        [_order("2024-03-01", "2024-03-20", "2024-03-25", reviews=[("2024-03-26", 1)])],
        (1, 100.0, 0.0), id="one-refund-per-order",
    ),
    pytest.param(  # failures known at T are not labels: late deadline on T, a one-star review at
        # T 23:59:59 (orders created and promised before T)
        [_order("2024-01-23", created="2024-01-15"),
         _fine("2024-01-20", created="2024-01-15", reviews=[("2024-01-31 23:59:59", 1)])],
        (0, 0.0, 0.0), id="known-at-T",
    ),
    pytest.param(  # unknown at T: an order taken before T fails after T, so it is T's label
        [_order("2024-01-28", created="2024-01-25")], (1, 100.0, 0.0), id="unknown-at-T-counts",
    ),
    pytest.param(  # events after the window: a late deadline at 2024-08-01 00:00 (promised
        # 2024-07-24) and a review on 2024-08-01 belong to a later label; promised 2024-07-23
        # fails at 2024-07-31 00:00, inside
        [_order("2024-07-24"), _fine("2024-07-01", reviews=[("2024-08-01 00:00:00", 1)]), _order("2024-07-23")],
        (1, 100.0, 0.0), id="events-after-the-window",
    ),
    pytest.param(  # exact dollar sums: ten failures of 0.10 refund exactly 1.0
        [_order(f"2024-03-{day:02d}", amount=0.1) for day in range(1, 11)], (10, 1.0, 0.0), id="exact-dollar-sums",
    ),
]


@pytest.mark.parametrize(("orders", "expected"), FAILURE_CASES)
def test_performance_failures(orders, expected):
    row = _labels(orders)
    assert (row["breach_count_6m"], row["pre_shipment_refund_usd_6m"], row["post_delivery_refund_usd_6m"]) == expected
    assert row["breach_6m"] is (expected[0] > 0)
    assert row["breach_refund_usd_6m"] == expected[1] + expected[2]
    assert row["label_complete"] is True  # no disputes table needed


# (outcome definition, expected breach_count_6m, breach_refund_usd_6m) for one order that is
# shipped 10 days late, delivered 40 days after its promise and rated one star on delivery.
LATE_UNDELIVERED_RATED = _order("2024-03-01", "2024-03-11", "2024-04-10", amount=80.0, reviews=[("2024-04-10", 1)])
RULE_CASES = [
    pytest.param(PERFORMANCE, 1, 80.0, id="defaults"),
    pytest.param(  # a longer grace forgives the late shipment; the late delivery still fails
        OutcomeDefinition(definition="performance", late_shipment_grace_days=10), 1, 80.0, id="grace-10d",
    ),
    pytest.param(  # only the rating rule on: still one failure, at the review
        OutcomeDefinition(definition="performance", late_shipment_grace_days=None, not_delivered_after_days=None,
                          supplier_cancelled=False), 1, 80.0, id="rating-only",
    ),
    pytest.param(  # rating off, generous deadlines: no failure
        OutcomeDefinition(definition="performance", late_shipment_grace_days=30, not_delivered_after_days=60,
                          low_rating_at_most=None), 0, 0.0, id="nothing-fails",
    ),
    pytest.param(  # half the amount refunded
        OutcomeDefinition(definition="performance", refund_share=0.5), 1, 40.0, id="refund-share",
    ),
]


@pytest.mark.parametrize(("outcomes", "count", "refund"), RULE_CASES)
def test_each_rule_is_configurable(outcomes, count, refund):
    row = _labels([LATE_UNDELIVERED_RATED, _fine("2024-02-10", amount=20.0)], outcomes)
    assert (row["breach_count_6m"], row["breach_refund_usd_6m"]) == (count, refund)
    assert row["forward_order_value_6m_usd"] == 100.0


def test_loss_rates_are_refunds_over_the_window_order_value():
    row = _labels([_order("2024-03-01", amount=25.0), _fine("2024-03-02", amount=75.0, reviews=[("2024-03-20", 1)]),
                   _fine("2024-03-03", amount=100.0)])
    assert row["forward_order_value_6m_usd"] == 200.0
    assert (row["realised_loss_rate_6m"], row["realised_loss_rate_pre_shipment_6m"],
            row["realised_loss_rate_post_delivery_6m"]) == (0.5, 0.125, 0.375)
    assert (row["pre_shipment_breach_6m"], row["post_delivery_breach_6m"]) == (True, True)


def test_default_counts_pre_shipment_failures_of_orders_falling_due():
    # Due: promised in [2024-02-01, window end - 7 days]; a low rating is no default failure.
    orders = [_order("2024-03-01"), _order("2024-03-02", "2024-03-02", None, status="shipped"),
              _fine("2024-03-03", reviews=[("2024-03-10", 1)]), _fine("2024-03-04"),
              _order("2024-07-25")]  # shipping deadline after the window: not due
    row = _labels(orders)
    assert (row["orders_due_6m"], row["failed_orders_due_6m"], row["default_6m"]) == (4, 2, True)


def test_appending_events_after_the_window_changes_no_label():
    before = [_fine("2024-03-01"), _order("2024-03-05", "2024-03-06", "2024-03-09")]
    later = [*before, _order("2024-08-10", created="2024-08-02"), _fine("2024-09-01", reviews=[("2024-09-05", 1)])]
    assert _labels(before) == _labels(later)


def test_label_incomplete_until_the_window_is_observed():
    assert _labels([_order("2024-03-01")], horizon=datetime(2024, 7, 30))["label_complete"] is False


def test_a_rating_rule_without_reviews_is_refused():
    with pytest.raises(ValueError, match="set low_rating_at_most to null"):
        compute_breach_labels(_validated([_order("2024-03-01")], with_reviews=False), [T], data_horizon=HORIZON,
                              outcomes=PERFORMANCE)


def test_the_declared_definition_is_the_default_for_labels():
    con = _validated([_fine("2024-03-01", reviews=[("2024-03-10", 1)])])
    write_outcome_definition(con, "validated", OutcomeDefinition(definition="performance", low_rating_at_most=None))
    assert read_outcome_definition(con).canonical() == "performance(late>7d,undelivered>30d,cancelled)"
    (row,) = compute_breach_labels(con, [T], data_horizon=HORIZON).to_pylist()
    assert row["breach_count_6m"] == 0


CANONICAL_CASES = [
    pytest.param({}, "claims", id="claims-default"),
    pytest.param({"definition": "performance"}, "performance(late>7d,undelivered>30d,cancelled,rating<=1)", id="performance-defaults"),
    pytest.param({"definition": "performance", "late_shipment_grace_days": 3, "supplier_cancelled": False,
                  "low_rating_at_most": 2, "not_delivered_after_days": None, "refund_share": 0.5},
                 "performance(late>3d,rating<=2,refund=0.5)", id="performance-custom"),
]


@pytest.mark.parametrize(("section", "canonical"), CANONICAL_CASES)
def test_canonical_strings(section, canonical):
    assert OutcomeDefinition.model_validate(section).canonical() == canonical


def test_a_training_frame_names_one_definition():
    import pandas as pd

    assert learned_outcome_definition(pd.DataFrame({"x": [1]})) == "claims"  # frames built before definitions
    with pytest.raises(ValueError, match="mix outcome definitions"):
        learned_outcome_definition(pd.DataFrame({"outcome_definition": ["claims", "performance(late>7d)"]}))


# (manifest, words of the one-line error)
BAD_MANIFESTS = [
    pytest.param({"outcomes": {"definition": "complaints"}}, "definition: Input should be 'claims' or 'performance'",
                 id="unknown-definition"),
    pytest.param({"outcomes": {"definition": "performance", "late_shipment_grace_days": -1}},
                 "late_shipment_grace_days: Input should be greater than or equal to 0", id="negative-grace"),
    pytest.param({"outcomes": {"definition": "performance", "low_rating_at_most": 5}},
                 "low_rating_at_most: Input should be less than or equal to 4", id="rating-5-would-fail-every-review"),
    pytest.param({"outcomes": {"definition": "performance", "refund_share": 0}}, "refund_share: Input should be greater than 0",
                 id="zero-refund"),
    pytest.param({"outcomes": {"definition": "performance", "late_days": 7}}, "late_days: Extra inputs are not permitted",
                 id="misspelt-rule"),
    pytest.param({"outcomes": {"late_shipment_grace_days": 7}}, "only apply to definition 'performance'",
                 id="rules-without-performance"),
    pytest.param({"outcomes": {"definition": "performance", "late_shipment_grace_days": None, "not_delivered_after_days": None,
                               "supplier_cancelled": False, "low_rating_at_most": None}}, "every performance rule is switched off",
                 id="all-rules-off"),
    pytest.param({"outcomes": "performance"}, "not an object", id="not-an-object"),
    pytest.param({"not_collected": ["disputes"], "outcomes": {"definition": "claims"}},
                 "outcomes declares claims but disputes are not collected", id="claims-without-disputes"),
    pytest.param({"not_collected": ["reviews"], "outcomes": {"definition": "performance"}},
                 "set low_rating_at_most to null", id="rating-rule-without-reviews"),
]


@pytest.mark.parametrize(("manifest", "words"), BAD_MANIFESTS)
def test_bad_outcome_sections_get_a_one_line_error(tmp_path, manifest, words):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(LandingZoneError) as error:
        read_declared_outcomes(tmp_path)
    message = str(error.value)
    assert words in message and "\n" not in message and MANIFEST_NAME in message


def test_a_silent_manifest_means_claims(tmp_path):
    assert read_declared_outcomes(tmp_path).canonical() == "claims"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"snapshot_at": "2024-09-30T00:00:00Z"}))
    assert read_declared_outcomes(tmp_path).canonical() == "claims"


def test_ingest_records_the_declared_definition_and_refuses_a_rating_rule_without_reviews(tmp_path):
    from synthetic import generate_landing_zone

    landing = tmp_path / "lz"
    generate_landing_zone(landing, n_suppliers=30, start="2024-01", months=3, seed=3)
    manifest = {"not_collected": ["disputes"], "outcomes": {"definition": "performance", "not_delivered_after_days": 20}}
    import shutil

    shutil.rmtree(landing / "disputes")
    (landing / MANIFEST_NAME).write_text(json.dumps(manifest))
    con = duckdb.connect()
    report = ingest_landing_zone(landing, con)
    assert report.outcome_definition.canonical() == "performance(late>7d,undelivered>20d,cancelled,rating<=1)"
    assert "outcomes: performance(late>7d,undelivered>20d,cancelled,rating<=1)" in report.to_text()
    assert read_outcome_definition(con).canonical() == report.outcome_definition.canonical()

    shutil.rmtree(landing / "reviews")
    with pytest.raises(LandingZoneError, match="deliver reviews or set low_rating_at_most to null"):
        ingest_landing_zone(landing, duckdb.connect())


def test_the_definition_is_part_of_the_training_data_fingerprint():
    import pandas as pd

    from models.training import training_data_fingerprint

    rows = pd.DataFrame({"as_of_date": [T], "supplier_id": ["s"], "breach_6m": [False]})
    claims = training_data_fingerprint(rows.assign(outcome_definition="claims"))
    performance = training_data_fingerprint(rows.assign(outcome_definition=PERFORMANCE.canonical()))
    assert claims != performance  # same labels, different meaning: a different model


def test_scores_name_each_definition_when_the_models_learned_different_ones():
    from types import SimpleNamespace

    from models.supplier_decisions import RiskModels

    before_definitions = SimpleNamespace(metadata={})  # a champion trained before they were recorded: claims
    performance = SimpleNamespace(metadata={"outcome_definition": "performance(late>7d)"})
    same = RiskModels(performance, "b/1", performance, "l/1", performance, "d/1")
    assert same.outcome_definition == "performance(late>7d)"
    mixed = RiskModels(before_definitions, "b/1", performance, "l/1", performance, "d/1")
    assert mixed.outcome_definition == "loss_rate: performance(late>7d); default: performance(late>7d); breach: claims"
