"""Property-based checks of the limit policy's invariants (docs/design.md §7), for any input:
formula v1 (``models/policies/v1.yaml``); v2's are in ``test_policy_v2_properties.py``,
which reuses this file's strategies.

Both the supplier rows and the policy parameters are drawn by hypothesis, so the
invariants are shown to hold for every valid configuration, not just the default.
Nulls are drawn for every nullable column.
"""

from __future__ import annotations

import math
import os
from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.policy import V1_POLICY_PATH, Policy, apply_policy

V1 = Policy.from_yaml(V1_POLICY_PATH)

# 200 examples per property by default (about a minute for the file on 2 cores); set
# POLICY_PROPERTY_EXAMPLES=3000 for a deeper search before changing the formula.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("POLICY_PROPERTY_EXAMPLES", "200")),
    deadline=None,  # pandas warm-up makes the first example slow; not a perf test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TIERS = ["free", "gold", "verified", "unknown", "platinum"]
COUNTRIES = ["CN", "IN", "VN", "US", "TR"]


def _maybe_null(strategy):
    return st.one_of(st.none(), strategy)


money = st.floats(min_value=0, max_value=5e6, allow_nan=False, allow_infinity=False)
probability = st.floats(min_value=0, max_value=1, allow_nan=False)

feature_rows = st.fixed_dictionaries(
    {
        "breach_probability_6m": _maybe_null(probability),
        "opted_in": _maybe_null(st.booleans()),
        "membership_tier": _maybe_null(st.sampled_from(TIERS)),
        "country": _maybe_null(st.sampled_from(COUNTRIES)),
        "tenure_months": _maybe_null(st.integers(0, 240)),
        "orders_6m": _maybe_null(st.integers(0, 5000)),
        "deal_value_12m_usd": _maybe_null(money),
        "assured_deal_value_12m_usd": _maybe_null(money),
        "review_mean_6m": _maybe_null(st.floats(1, 5)),
        "review_count_6m": _maybe_null(st.integers(0, 500)),
        "on_time_shipment_rate_6m": _maybe_null(st.floats(0, 1)),
        "completion_rate_6m": _maybe_null(st.floats(0, 1)),
        "dispute_ratio_6m": _maybe_null(st.floats(0, 1)),
    }
)

ROUNDING_CHOICES = [
    [{"from_usd": 0, "step_usd": 500}, {"from_usd": 10000, "step_usd": 1000}],
    [{"from_usd": 0, "step_usd": 500}, {"from_usd": 10000, "step_usd": 1000},
     {"from_usd": 100000, "step_usd": 5000}],
    [{"from_usd": 0, "step_usd": 100}],
    [{"from_usd": 0, "step_usd": 250}, {"from_usd": 1000, "step_usd": 1000},
     {"from_usd": 50000, "step_usd": 10000}],
    [{"from_usd": 0, "step_usd": 0.01}],
]


def draw_common_parameters(draw, raw: dict) -> None:
    """Draw, in place, every parameter both formulas share (all but the risk ceilings
    and risk grades), within the ranges the loader accepts."""
    e = raw["eligibility"]
    e["require_opt_in"] = draw(st.booleans())
    e["eligible_tiers"] = draw(st.lists(st.sampled_from(TIERS), unique=True))
    e["enabled_countries"] = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(COUNTRIES), unique=True))
    )
    e["min_tenure_months"] = draw(st.integers(0, 36))
    e["min_orders_6m"] = draw(st.integers(0, 50))
    c = raw["capacity"]
    c["fallback_deal_value_share"] = draw(st.floats(0, 1))
    c["base_share_of_volume"] = draw(st.floats(0, 2))
    x = raw["expected_loss"]
    x["horizon_months"] = draw(st.integers(1, 12))
    x["loss_given_breach"] = draw(st.floats(0.01, 1))
    x["target_loss_ratio"] = draw(st.floats(0, 3))
    x["fee_rate"] = draw(st.floats(0, 0.1))
    x["fee_per_order_usd"] = draw(st.floats(0, 5))
    x["assured_order_share"] = draw(st.floats(0, 1))
    b = raw["performance_boost"]
    b["review"]["multiplier"] = draw(st.floats(1, 2))
    b["review"]["min_review_count_6m"] = draw(st.integers(0, 20))
    b["on_time"]["multiplier"] = draw(st.floats(1, 2))
    b["on_time"]["min_on_time_shipment_rate_6m"] = draw(st.floats(0, 1))
    b["max_multiplier"] = draw(st.floats(1, 3))
    k = raw["caps"]
    k["tier_caps_usd"] = draw(
        st.dictionaries(st.sampled_from(TIERS), st.floats(0, 1e6), max_size=4)
    )
    k["default_tier_cap_usd"] = draw(st.floats(0, 1e6))
    k["global_cap_usd"] = draw(st.floats(0, 1e6))
    raw["rounding"]["steps"] = draw(st.sampled_from(ROUNDING_CHOICES))
    g = raw["growth"]
    g["max_relative_increase"] = draw(st.floats(0, 2))
    g["max_absolute_increase_usd"] = draw(st.floats(0, 50000))
    g["first_assessment_max_usd"] = draw(st.one_of(st.none(), st.floats(0, 1e6)))
    g["decrease_notice_days"] = draw(st.integers(0, 28))


@st.composite
def policies(draw) -> Policy:
    """Any valid v1 policy: every parameter drawn within the ranges the loader accepts."""
    raw = V1.to_dict()
    draw_common_parameters(draw, raw)
    raw["eligibility"]["max_breach_probability"] = draw(probability)
    return Policy.from_dict(raw)


any_policy = st.one_of(st.just(V1), policies())
previous_amount = _maybe_null(st.floats(0, 1e6))


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(0, "supplier_id", [f"s{i:04d}" for i in range(len(rows))])
    frame.insert(1, "as_of_date", pd.Timestamp("2025-06-30"))
    return frame


def _previous(frame: pd.DataFrame, amounts: list[float | None]) -> pd.Series:
    return pd.Series(amounts, index=frame["supplier_id"], dtype="float64")


def _cap(policy: Policy, tier: str | None) -> float:
    tier_caps = dict(policy.caps.tier_caps_usd)
    tier_cap = tier_caps.get(tier or "unknown", policy.caps.default_tier_cap_usd)
    return min(tier_cap, policy.caps.global_cap_usd)


@PROPERTY_SETTINGS
@given(
    policy=any_policy,
    rows=st.lists(st.tuples(feature_rows, previous_amount), min_size=1, max_size=25),
)
def test_amount_invariants_hold_for_any_rows(policy, rows):
    frame = _frame([r for r, _ in rows])
    prev_values = [p for _, p in rows]
    out = apply_policy(frame, policy, _previous(frame, prev_values))
    amount = out["trade_assurance_amount_usd"].to_numpy()

    assert len(out) == len(frame)
    assert np.all(np.isfinite(amount))
    assert np.all(amount >= 0), "never negative"
    assert np.all(amount[~out["eligible"].to_numpy()] == 0), "zero when not eligible"
    for i, row in out.iterrows():
        assert amount[i] <= _cap(policy, row["membership_tier"]) + 1e-9, "never above the cap"
        prev = prev_values[i]
        if prev is not None:
            growth = policy.growth
            limit = prev + max(growth.max_relative_increase * prev,
                               growth.max_absolute_increase_usd)
            assert amount[i] <= limit + 1e-6, "growth limit respected"
        elif policy.growth.first_assessment_max_usd is not None:
            assert amount[i] <= policy.growth.first_assessment_max_usd + 1e-6
        # eligible exactly when no rule failed; drivers only for the eligible
        assert bool(row["eligible"]) == (len(row["ineligible_reasons"]) == 0)
        if not row["eligible"]:
            assert row["amount_drivers"] == []


@PROPERTY_SETTINGS
@given(policy=any_policy, row=feature_rows, p=st.tuples(probability, probability),
       prev=previous_amount)
def test_riskier_supplier_gets_no_more(policy, row, p, prev):
    low, high = sorted(p)
    frame = _frame([{**row, "breach_probability_6m": low},
                    {**row, "breach_probability_6m": high}])
    out = apply_policy(frame, policy, _previous(frame, [prev, prev]))
    safe, risky = out["trade_assurance_amount_usd"]
    assert risky <= safe
    # eligibility can only be lost by a higher probability
    assert not (out["eligible"].iloc[1] and not out["eligible"].iloc[0])


@PROPERTY_SETTINGS
@given(
    policy=any_policy,
    row=feature_rows,
    extra_assured=money,
    extra_deal=money,
    extra_orders=st.integers(0, 500),
    prev=previous_amount,
)
def test_larger_supplier_of_equal_risk_gets_no_less(
    policy, row, extra_assured, extra_deal, extra_orders, prev
):
    larger = dict(row)
    # Larger on every capacity measure; a null stays null or grows to a value.
    for column, extra in (("assured_deal_value_12m_usd", extra_assured),
                          ("deal_value_12m_usd", extra_deal), ("orders_6m", extra_orders)):
        larger[column] = (row[column] or 0) + extra
    frame = _frame([row, larger])
    out = apply_policy(frame, policy, _previous(frame, [prev, prev]))
    small, large = out["trade_assurance_amount_usd"]
    assert large >= small


@PROPERTY_SETTINGS
@given(policy=any_policy, row=feature_rows,
       prev=st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)))
def test_higher_previous_amount_gives_no_less(policy, row, prev):
    check_higher_previous_amount_gives_no_less(policy, row, prev)


def check_higher_previous_amount_gives_no_less(policy, row, prev):
    """Shared with the v2 properties: the growth limit is the same code."""
    lower, higher = sorted(prev)
    frame = _frame([row, row])
    out = apply_policy(frame, policy, _previous(frame, [lower, higher]))
    from_lower, from_higher = out["trade_assurance_amount_usd"]
    assert from_higher >= from_lower


@PROPERTY_SETTINGS
@given(policy=any_policy,
       rows=st.lists(st.tuples(feature_rows, previous_amount), min_size=1, max_size=15),
       seed=st.integers(0, 2**32 - 1))
def test_deterministic_and_independent_of_row_order(policy, rows, seed):
    check_deterministic_and_independent_of_row_order(policy, rows, seed)


def check_deterministic_and_independent_of_row_order(policy, rows, seed):
    """Shared with the v2 properties."""
    frame = _frame([r for r, _ in rows])
    prev = _previous(frame, [p for _, p in rows])
    first = apply_policy(frame, policy, prev)
    again = apply_policy(frame, policy, prev)
    pd.testing.assert_frame_equal(first, again)

    shuffled = frame.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**32))
    reordered = apply_policy(shuffled, policy, prev.sample(frac=1.0, random_state=1))
    pd.testing.assert_frame_equal(
        first.set_index("supplier_id").sort_index(),
        reordered.set_index("supplier_id").sort_index(),
    )


month_ends = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 1)).map(
    lambda d: (pd.Timestamp(d) + pd.offsets.MonthEnd(0)).date()
)


@PROPERTY_SETTINGS
@given(policy=any_policy,
       rows=st.lists(st.tuples(feature_rows, previous_amount), min_size=1, max_size=15),
       days=st.integers(1, 28), as_of_date=month_ends)
def test_decrease_notice_only_dates_a_lower_amount(policy, rows, days, as_of_date):
    check_decrease_notice_only_dates_a_lower_amount(policy, rows, days, as_of_date)


def _with_notice(policy: Policy, days: int) -> Policy:
    raw = policy.to_dict()
    raw["growth"]["decrease_notice_days"] = days
    return Policy.from_dict(raw)


def check_decrease_notice_only_dates_a_lower_amount(policy, rows, days, as_of_date):
    """Shared with the v2 properties. With notice, the decision is the same (amount,
    eligibility, reasons, drivers, grade); a row carries a binding date exactly when the
    supplier stays eligible and its amount fell below the previous one, and then the date is
    ``days`` after the month end, no later than the next month end, with the previous amount
    binding until then."""
    frame = _frame([r for r, _ in rows])
    frame["as_of_date"] = pd.Timestamp(as_of_date)
    prev_values = [p for _, p in rows]
    prev = _previous(frame, prev_values)
    off = apply_policy(frame, _with_notice(policy, 0), prev)
    out = apply_policy(frame, _with_notice(policy, days), prev)
    same = ["eligible", "ineligible_reasons", "risk_grade", "trade_assurance_amount_usd", "amount_drivers"]
    pd.testing.assert_frame_equal(out[same], off[same])
    assert off["amount_binding_from"].isna().all() and off["amount_before_binding_usd"].isna().all()
    next_month_end = (pd.Timestamp(as_of_date) + pd.offsets.MonthEnd(1)).date()
    for i, row in out.iterrows():
        decreased = prev_values[i] is not None and row["trade_assurance_amount_usd"] < prev_values[i]
        if row["eligible"] and decreased:
            assert row["amount_binding_from"] == as_of_date + timedelta(days=days)
            assert row["amount_binding_from"] <= next_month_end, "a notice ends by the next month end"
            assert row["amount_before_binding_usd"] == prev_values[i]
        else:  # an increase, no change, a first assessment or a refusal binds at once
            assert row["amount_binding_from"] is None
            assert math.isnan(row["amount_before_binding_usd"])


@PROPERTY_SETTINGS
@given(policy=any_policy, amounts=st.lists(st.floats(0, 1e7), min_size=2, max_size=50))
def test_rounding_is_monotone_and_never_rounds_up(policy, amounts):
    from models.policy import round_down_to_steps

    ordered = np.sort(np.array(amounts))
    rounded = round_down_to_steps(ordered, policy.rounding)
    assert np.all(np.diff(rounded) >= 0)
    assert np.all(rounded <= ordered)
    assert np.all(rounded >= 0)
    assert not any(math.isnan(v) for v in rounded)
