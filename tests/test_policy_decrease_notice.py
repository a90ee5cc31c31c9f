"""Decrease notice (policy ``growth.decrease_notice_days``): a lower amount for a supplier that
stays eligible binds new orders only after the notice; everything else binds at once. Worked on
the frozen v2 fixture policy (base case: $60,000, see ``test_policy_v2_cases.py``)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from test_policy_properties import _with_notice
from test_policy_v2_cases import V2, _supplier

from models.policy import V1_POLICY_PATH, Policy, apply_policy

V2_NOTICE = _with_notice(V2, 28)

NOTICE_CASES = [
    # $80k last month, $60k now, still eligible: $60k binds from June 30 + 28 days; $80k until then
    ({}, 80_000.0, V2_NOTICE, 60_000, date(2025, 7, 28), 80_000.0),
    # an increase ($50k -> $60k) binds at once
    ({}, 50_000.0, V2_NOTICE, 60_000, None, None),
    # no change binds at once (nothing to give notice of)
    ({}, 60_000.0, V2_NOTICE, 60_000, None, None),
    # first assessment: no previous amount, nothing to lower
    ({}, None, V2_NOTICE, 60_000, None, None),
    # refused for default risk above the ceiling: 0 at once, the programme does not keep covering it
    ({"default_probability_6m": 0.5}, 80_000.0, V2_NOTICE, 0, None, None),
    # refused for a rule that is not risk (opted out): at once too
    ({"opted_in": False}, 80_000.0, V2_NOTICE, 0, None, None),
    # eligible but no trading capacity any more: a decrease to 0 with notice
    ({"assured_deal_value_12m_usd": 0.0, "deal_value_12m_usd": 0.0}, 80_000.0, V2_NOTICE, 0,
     date(2025, 7, 28), 80_000.0),
    # risk-reduced ($31k at d = 0.05) while eligible: notice
    ({"default_probability_6m": 0.05}, 60_000.0, V2_NOTICE, 31_000, date(2025, 7, 28), 60_000.0),
    # the policy without notice (the frozen fixture): the decrease binds at once
    ({}, 80_000.0, V2, 60_000, None, None),
    # January 31 + 28 days = February 28: the notice has run out by the next month end
    ({"as_of_date": pd.Timestamp("2025-01-31")}, 80_000.0, V2_NOTICE, 60_000, date(2025, 2, 28), 80_000.0),
]


@pytest.mark.parametrize("row, previous, policy, amount, binding_from, before", NOTICE_CASES)
def test_decrease_notice(row, previous, policy, amount, binding_from, before):
    frame = pd.DataFrame([_supplier(**row)])
    prev = None if previous is None else pd.Series([previous], index=["s1"])
    out = apply_policy(frame, policy, prev).iloc[0]
    assert out["trade_assurance_amount_usd"] == amount
    assert out["amount_binding_from"] == binding_from
    if before is None:
        assert math.isnan(out["amount_before_binding_usd"])
    else:
        assert out["amount_before_binding_usd"] == before


def test_v1_shares_the_notice():
    v1 = _with_notice(Policy.from_yaml(V1_POLICY_PATH), 14)
    frame = pd.DataFrame([{**_supplier(), "breach_probability_6m": 0.01}])
    out = apply_policy(frame, v1, pd.Series([90_000.0], index=["s1"])).iloc[0]
    assert out["trade_assurance_amount_usd"] < 90_000
    assert out["amount_binding_from"] == date(2025, 7, 14)
    assert out["amount_before_binding_usd"] == 90_000.0
