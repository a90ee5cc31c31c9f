"""Policy v2 (frozen as ``tests/policies/v2_cases.yaml``): edge-case tables for eligibility and
amount, worked by hand from the formula in ``models/policy/v2.py``, plus configuration
and input checks."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from models.policy import (
    V1_POLICY_PATH,
    Policy,
    PolicyConfigError,
    apply_policy,
    decide_supplier,
)

V2 = Policy.from_yaml(Path(__file__).parent / "policies" / "v2_cases.yaml")  # frozen: worked numbers


def _supplier(**overrides):
    """Worked base case (default.yaml): V12 = max(120k, 0.5 x 200k) = 120k, so over the
    six-month horizon V = 60k and B = 60k; covered orders N = 0.5 x 40 = 20; fees
    F = 0.03 x 60k + 1 x 20 = 1,820; target x F = 1,092."""
    row = dict(
        supplier_id="s1", as_of_date=pd.Timestamp("2025-06-30"),
        loss_rate_6m=0.01, default_probability_6m=0.02, breach_probability_6m=0.5,
        opted_in=True, membership_tier="gold", country="CN", tenure_months=24, orders_6m=40,
        deal_value_12m_usd=200_000.0, assured_deal_value_12m_usd=120_000.0,
        review_mean_6m=4.0, review_count_6m=3, on_time_shipment_rate_6m=0.9,
    )
    row.update(overrides)
    return row


ELIGIBILITY_CASES = [
    # the base case: every rule passes; breach_probability_6m = 0.5 is not read by v2
    ({}, ()),
    # v2 ignores breach probability entirely, even a certain breach
    ({"breach_probability_6m": 1.0}, ()),
    # not volunteered (null reads as not volunteered)
    ({"opted_in": None}, ("NOT_OPTED_IN",)),
    # free tier is not covered by default.yaml
    ({"membership_tier": "free"}, ("TIER_NOT_ELIGIBLE",)),
    # six months of tenure needed
    ({"tenure_months": 5}, ("HISTORY_TOO_SHORT",)),
    # five orders needed; four fail, five pass
    ({"orders_6m": 4}, ("INSUFFICIENT_ORDERS",)),
    ({"orders_6m": 5}, ()),
    # no loss rate: not scored, never guessed favourably
    ({"loss_rate_6m": None}, ("RISK_NOT_SCORED",)),
    # no default probability: not scored either
    ({"default_probability_6m": None}, ("RISK_NOT_SCORED",)),
    # exactly at the loss-rate ceiling (0.03) passes; just above fails
    ({"loss_rate_6m": 0.03}, ()),
    ({"loss_rate_6m": 0.0301}, ("LOSS_RATE_ABOVE_CEILING",)),
    # exactly at the default ceiling (0.10) passes; just above fails
    ({"default_probability_6m": 0.10}, ()),
    ({"default_probability_6m": 0.1001}, ("DEFAULT_RISK_ABOVE_CEILING",)),
    # both ceilings fail: both reasons, in order
    ({"loss_rate_6m": 0.5, "default_probability_6m": 0.9},
     ("LOSS_RATE_ABOVE_CEILING", "DEFAULT_RISK_ABOVE_CEILING")),
    # every rule at once, in the stable report order
    ({"opted_in": False, "membership_tier": "free", "tenure_months": 0, "orders_6m": 0,
      "loss_rate_6m": None},
     ("NOT_OPTED_IN", "TIER_NOT_ELIGIBLE", "HISTORY_TOO_SHORT", "INSUFFICIENT_ORDERS",
      "RISK_NOT_SCORED")),
]


@pytest.mark.parametrize("overrides, reasons", ELIGIBILITY_CASES)
def test_v2_eligibility(overrides, reasons):
    decision = decide_supplier(_supplier(**overrides), V2)
    assert decision.ineligible_reasons == reasons
    assert decision.eligible == (reasons == ())
    if reasons:
        assert decision.trade_assurance_amount_usd == 0
        assert decision.amount_drivers == ()


AMOUNT_CASES = [
    # r 0.01, d 0.02: numerator (0.6 x 0.03 - 0.01 x 0.5) x 60k + 0.6 x 1 x 20 = 792;
    # L = 792 / (0.02 x 0.5) = 79,200 > B = 60k: full capacity. Grades C (r) and C (d).
    ({}, 60_000, "C", set()),
    # d 0.05: L = 792 / 0.025 = 31,680 -> 31,000 ($1k steps above $10k). The default
    # term (d x B = 3,000) outweighs the loss-rate term (r x V = 600). Grade D (d).
    ({"default_probability_6m": 0.05}, 31_000, "D", {"DEFAULT_RISK_REDUCED"}),
    # r 0.029, d 0.01: numerator 0.0035 x 60k + 12 = 222; L = 222 / 0.005 = 44,400
    # -> 44,000; the loss-rate term (1,740) outweighs the default term (600). Grade D (r).
    ({"loss_rate_6m": 0.029, "default_probability_6m": 0.01}, 44_000, "D",
     {"LOSS_RATE_REDUCED"}),
    # at the loss-rate ceiling 0.03: numerator 0.003 x 60k + 12 = 192; L = 19,200
    # -> 19,000; loss rate dominates (r x V = 1,800 >= d x B = 1,200). 0.03 is D's
    # bound, so its loss-rate grade is E.
    ({"loss_rate_6m": 0.03}, 19_000, "E", {"LOSS_RATE_REDUCED"}),
    # at the default ceiling 0.10: L = 792 / 0.05 = 15,840 -> 15,000. 0.10 is D's bound,
    # so [0.10, 1.0] grades E.
    ({"default_probability_6m": 0.10}, 15_000, "E", {"DEFAULT_RISK_REDUCED"}),
    # no default risk: no limit from the default term, full capacity; grade from r only
    ({"default_probability_6m": 0.0}, 60_000, "C", set()),
    # no risk at all: grade A, full capacity
    ({"loss_rate_6m": 0.0, "default_probability_6m": 0.0}, 60_000, "A", set()),
    # a large gold supplier (what v1 refused or shrank): V = 5M, N = 1,000;
    # numerator 0.013 x 5M + 600 = 65,600; L = 6.56M > B = 5M: capped at gold's 100k.
    ({"assured_deal_value_12m_usd": 10_000_000.0, "deal_value_12m_usd": 12_000_000.0,
      "orders_6m": 2_000}, 100_000, "C", {"TIER_CAPPED"}),
    # the same large supplier as verified: global cap 250k
    ({"assured_deal_value_12m_usd": 10_000_000.0, "deal_value_12m_usd": 12_000_000.0,
      "orders_6m": 2_000, "membership_tier": "verified"}, 250_000, "C", {"TIER_CAPPED"}),
    # no assured value: fallback 0.5 x 200k = 100k -> V = 50k = B; fees 1,500 + 20;
    # numerator 0.013 x 50k + 12 = 662; L = 66,200 > 50k
    ({"assured_deal_value_12m_usd": None}, 50_000, "C", {"CAPACITY_FROM_DEAL_VALUE"}),
    # eligible but nothing traded: no capacity, amount 0
    ({"assured_deal_value_12m_usd": 0.0, "deal_value_12m_usd": 0.0}, 0, "C",
     {"NO_TRADING_CAPACITY"}),
    # a tiny supplier: V12 = 800 -> V = 400 < the $500 step
    ({"assured_deal_value_12m_usd": 800.0, "deal_value_12m_usd": 800.0}, 0, "C",
     {"BELOW_MINIMUM_STEP"}),
    # good reviews and shipping: x1.1 x1.1 = 1.21, bounded at 1.2: 72,000
    ({"review_mean_6m": 4.8, "review_count_6m": 12, "on_time_shipment_rate_6m": 0.98},
     72_000, "C", {"REVIEW_BOOST", "ON_TIME_BOOST", "BOOST_LIMITED"}),
]


@pytest.mark.parametrize("overrides, amount, grade, drivers", AMOUNT_CASES)
def test_v2_amount(overrides, amount, grade, drivers):
    decision = decide_supplier(_supplier(**overrides), V2)
    assert decision.eligible
    assert decision.trade_assurance_amount_usd == amount
    assert decision.risk_grade == grade
    assert set(decision.amount_drivers) == drivers


def test_v2_components_reproduce_the_formula():
    out = apply_policy(pd.DataFrame([_supplier(default_probability_6m=0.05)]), V2,
                       include_components=True).iloc[0]
    assert out["policy_volume_basis_usd"] == 120_000
    assert out["policy_covered_volume_usd"] == 60_000
    assert out["policy_covered_orders"] == 20
    assert out["policy_capacity_base_usd"] == 60_000
    assert out["policy_expected_fees_usd"] == pytest.approx(1_820)
    assert out["policy_expected_volume_loss_usd"] == pytest.approx(300)
    fees, volume_loss = out["policy_expected_fees_usd"], out["policy_expected_volume_loss_usd"]
    assert out["policy_loss_limit_usd"] == pytest.approx((0.6 * fees - volume_loss) / 0.025)


def test_growth_limit_and_decreases_as_in_v1():
    big = _supplier(assured_deal_value_12m_usd=10_000_000.0, orders_6m=2_000)
    assert decide_supplier(big, V2, previous_amount=20_000).trade_assurance_amount_usd == 30_000
    assert decide_supplier(_supplier(), V2, previous_amount=90_000).trade_assurance_amount_usd \
        == 60_000


def test_policy_apply_and_decide_supplier_dispatch_by_formula():
    v1 = Policy.from_yaml(V1_POLICY_PATH)
    frame = pd.DataFrame([_supplier(breach_probability_6m=0.06)])
    # v1 reads breach probability (0.06: its limit 36,400 -> 36,000), v2 does not
    assert v1.apply(frame)["trade_assurance_amount_usd"].iloc[0] == 36_000
    assert V2.apply(frame)["trade_assurance_amount_usd"].iloc[0] == 60_000
    assert decide_supplier(_supplier(), v1).risk_grade == "E"  # p = 0.5
    assert decide_supplier(_supplier(), V2).risk_grade == "C"


def test_missing_v2_columns_raise_a_clear_error():
    frame = pd.DataFrame([_supplier()]).drop(columns=["loss_rate_6m", "default_probability_6m"])
    with pytest.raises(ValueError, match=r"lacks column.*loss_rate_6m.*default_probability_6m.*v2"):
        apply_policy(frame, V2)
    # breach_probability_6m is not needed by v2
    apply_policy(pd.DataFrame([_supplier()]).drop(columns=["breach_probability_6m"]), V2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss_rate_6m": -0.01}, r"loss_rate_6m must lie in >= 0"),  # negative loss rate
        ({"loss_rate_6m": math.inf}, r"loss_rate_6m must lie in >= 0, finite"),  # not finite
        ({"default_probability_6m": 1.2}, r"default_probability_6m must lie in \[0, 1\]"),
    ],
)
def test_out_of_range_risk_is_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        apply_policy(pd.DataFrame([_supplier(**overrides)]), V2)


@pytest.mark.parametrize(
    "mutate, message",
    [
        # a v1 key in a v2 file is unknown
        (lambda r: r["eligibility"].update(max_breach_probability=0.2), "unknown key"),
        # a v2 ceiling missing
        (lambda r: r["eligibility"].pop("max_default_probability"), "missing key"),
        # an unknown formula
        (lambda r: r.update(formula="v3"), "formula"),
        # above the break-even loss rate 0.6 x 0.03 / 0.5 = 0.036
        (lambda r: r["eligibility"].update(max_loss_rate=0.04), "break-even"),
        # a cheaper fee moves the break-even below the ceiling: rejected too
        (lambda r: r["expected_loss"].update(fee_rate=0.02), "break-even"),
        # the last band must be unbounded in loss rate
        (lambda r: r["risk_grades"][-1].update(max_loss_rate=1.0), "end at null"),
        # only the last band may be unbounded
        (lambda r: r["risk_grades"][1].update(max_loss_rate=None), "only the last band"),
        # default-probability bounds must increase and end at 1.0
        (lambda r: r["risk_grades"][2].update(max_default_probability=0.015),
         "max_default_probability must increase"),
        # v2 band keys, not v1's
        (lambda r: r["risk_grades"][0].update(max_probability=0.02), "unknown key"),
    ],
)
def test_invalid_v2_config_is_rejected(mutate, message):
    raw = V2.to_dict()
    mutate(raw)
    with pytest.raises(PolicyConfigError, match=message):
        Policy.from_dict(raw)


def test_v2_what_if_replace():
    stricter = V2.replace(**{"eligibility.max_default_probability": 0.04})
    assert stricter.version != V2.version
    assert not decide_supplier(_supplier(default_probability_6m=0.05), stricter).eligible
    with pytest.raises(PolicyConfigError, match="unknown policy parameter"):
        V2.replace(**{"eligibility.max_breach_probability": 0.1})


def test_without_the_break_even_rule_size_would_lower_the_amount():
    """Why the loader insists on it: a ceiling above break-even (forced past the loader)
    lets a larger supplier with a high loss rate get less than a smaller one."""
    loose = dataclasses.replace(
        V2, eligibility=dataclasses.replace(V2.eligibility, max_loss_rate=0.2)
    )
    # r = 0.1: each covered dollar loses 0.05 against 0.018 of allowed fee; only the
    # per-order fees (1,000 orders: 0.6 x 500 = 300) keep the numerator positive.
    # small: V = 5k, numerator 300 - 160 = 140, L = 140 / 0.05 = 2,800 -> 2,500;
    # large: V = 8k, numerator 300 - 256 = 44, L = 880 -> 500.
    small = _supplier(loss_rate_6m=0.1, default_probability_6m=0.1, orders_6m=1_000,
                      assured_deal_value_12m_usd=10_000.0, deal_value_12m_usd=10_000.0)
    large = {**small, "supplier_id": "s2", "assured_deal_value_12m_usd": 16_000.0,
             "deal_value_12m_usd": 16_000.0}
    amounts = apply_policy(pd.DataFrame([small, large]), loose)["trade_assurance_amount_usd"]
    assert list(amounts) == [2_500, 500]
