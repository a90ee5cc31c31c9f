"""Property-based checks of policy v2's invariants (docs/design.md §7, issue 12), for any input.

Supplier rows and policy parameters are drawn by hypothesis (strategies shared with the
v1 file), nulls included. The growth limit depends on the previous amount: every
comparison below gives the rows it compares the same previous amount.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from test_policy_properties import (
    PROPERTY_SETTINGS,
    _cap,
    _frame,
    _maybe_null,
    _previous,
    check_decrease_notice_only_dates_a_lower_amount,
    check_deterministic_and_independent_of_row_order,
    check_higher_previous_amount_gives_no_less,
    draw_common_parameters,
    feature_rows,
    money,
    month_ends,
    previous_amount,
    probability,
)

from models.policy import Policy, apply_policy

DEFAULT = Policy.default()
loss_rate = st.floats(min_value=0, max_value=0.2, allow_nan=False)

v2_rows = st.builds(
    lambda row, r, d: {**row, "loss_rate_6m": r, "default_probability_6m": d},
    feature_rows,
    _maybe_null(loss_rate),
    _maybe_null(probability),
)


@st.composite
def v2_policies(draw) -> Policy:
    """Any valid v2 policy; the loss-rate ceiling anywhere up to the break-even rate."""
    raw = DEFAULT.to_dict()
    draw_common_parameters(draw, raw)
    x = raw["expected_loss"]
    break_even = x["target_loss_ratio"] * x["fee_rate"] / x["loss_given_breach"]
    raw["eligibility"]["max_loss_rate"] = draw(st.floats(0, 1)) * break_even
    raw["eligibility"]["max_default_probability"] = draw(probability)
    return Policy.from_dict(raw)


any_v2_policy = st.one_of(st.just(DEFAULT), v2_policies())


def _amounts(policy: Policy, rows: list[dict], prev: float | None) -> np.ndarray:
    frame = _frame(rows)
    out = apply_policy(frame, policy, _previous(frame, [prev] * len(rows)))
    return out["trade_assurance_amount_usd"].to_numpy()


@PROPERTY_SETTINGS
@given(policy=any_v2_policy,
       rows=st.lists(st.tuples(v2_rows, previous_amount), min_size=1, max_size=25))
def test_amount_invariants_hold_for_any_rows(policy, rows):
    frame = _frame([r for r, _ in rows])
    out = apply_policy(frame, policy, _previous(frame, [p for _, p in rows]))
    amount = out["trade_assurance_amount_usd"].to_numpy()
    assert np.all(np.isfinite(amount))
    assert np.all(amount >= 0), "never negative"
    assert np.all(amount[~out["eligible"].to_numpy()] == 0), "zero when not eligible"
    for i, row in out.iterrows():
        assert amount[i] <= _cap(policy, row["membership_tier"]) + 1e-9, "never above the cap"
        assert bool(row["eligible"]) == (len(row["ineligible_reasons"]) == 0)
        if not row["eligible"]:
            assert row["amount_drivers"] == []
        unscored = pd.isna(row["loss_rate_6m"]) or pd.isna(row["default_probability_6m"])
        assert (row["risk_grade"] == "NR") == unscored
        # size is never given as a reason, and v1's breach-probability codes never appear
        assert not {"RISK_REDUCED", "RISK_ABOVE_CEILING"} & {
            *row["amount_drivers"], *row["ineligible_reasons"]
        }


@PROPERTY_SETTINGS
@given(policy=any_v2_policy, row=v2_rows, r=st.tuples(loss_rate, loss_rate),
       d=st.tuples(probability, probability), prev=previous_amount)
def test_riskier_supplier_of_equal_capacity_gets_no_more(policy, row, r, d, prev):
    (r_low, r_high), (d_low, d_high) = sorted(r), sorted(d)
    rows = [
        {**row, "loss_rate_6m": r_low, "default_probability_6m": d_low},
        {**row, "loss_rate_6m": r_high, "default_probability_6m": d_low},  # higher loss rate
        {**row, "loss_rate_6m": r_low, "default_probability_6m": d_high},  # higher default
    ]
    frame = _frame(rows)
    out = apply_policy(frame, policy, _previous(frame, [prev] * 3))
    safe, lossier, shakier = out["trade_assurance_amount_usd"]
    assert lossier <= safe
    assert shakier <= safe
    eligible = out["eligible"].to_numpy()
    assert not (eligible[1] and not eligible[0]), "eligibility lost only by more risk"
    assert not (eligible[2] and not eligible[0])


@PROPERTY_SETTINGS
@given(policy=any_v2_policy, row=v2_rows, extra_assured=money, extra_deal=money,
       extra_orders=st.integers(0, 500), prev=previous_amount)
def test_larger_supplier_of_equal_risk_gets_no_less(
    policy, row, extra_assured, extra_deal, extra_orders, prev
):
    larger = dict(row)
    for column, extra in (("assured_deal_value_12m_usd", extra_assured),
                          ("deal_value_12m_usd", extra_deal), ("orders_6m", extra_orders)):
        larger[column] = (row[column] or 0) + extra
    small, large = _amounts(policy, [row, larger], prev)
    assert large >= small


@PROPERTY_SETTINGS
@given(
    policy=any_v2_policy,
    row=v2_rows,
    steps=st.lists(st.tuples(money, money, st.integers(0, 60)), min_size=2, max_size=12),
    prev=previous_amount,
)
def test_amount_never_falls_as_volume_rises(policy, row, steps, prev):
    """A supplier growing step by step (deal value, assured value and orders, from few
    orders through the min-orders rule and the fee-per-order term) at the same loss rate
    and default probability: its amount never falls."""
    rows, current = [], {**row, "orders_6m": row["orders_6m"] or 0}
    for extra_assured, extra_deal, extra_orders in steps:
        current = {
            **current,
            "assured_deal_value_12m_usd": (current["assured_deal_value_12m_usd"] or 0)
            + extra_assured,
            "deal_value_12m_usd": (current["deal_value_12m_usd"] or 0) + extra_deal,
            "orders_6m": current["orders_6m"] + extra_orders,
        }
        rows.append(current)
    amounts = _amounts(policy, rows, prev)
    assert np.all(np.diff(amounts) >= 0), amounts


@PROPERTY_SETTINGS
@given(policy=any_v2_policy, row=v2_rows, prev=st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)))
def test_higher_previous_amount_gives_no_less(policy, row, prev):
    check_higher_previous_amount_gives_no_less(policy, row, prev)


@PROPERTY_SETTINGS
@given(policy=any_v2_policy,
       rows=st.lists(st.tuples(v2_rows, previous_amount), min_size=1, max_size=15),
       seed=st.integers(0, 2**32 - 1))
def test_deterministic_and_independent_of_row_order(policy, rows, seed):
    check_deterministic_and_independent_of_row_order(policy, rows, seed)


@PROPERTY_SETTINGS
@given(policy=any_v2_policy,
       rows=st.lists(st.tuples(v2_rows, previous_amount), min_size=1, max_size=15),
       days=st.integers(1, 28), as_of_date=month_ends)
def test_decrease_notice_only_dates_a_lower_amount(policy, rows, days, as_of_date):
    check_decrease_notice_only_dates_a_lower_amount(policy, rows, days, as_of_date)
