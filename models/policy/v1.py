"""The Trade Assurance limit policy, formula v1: breach probability.


Formula v1 (``models/policies/v1.yaml``, and any file without a ``formula`` key): kept
loadable, with byte-identical results, to compare against v2. Its weakness (issue 12):
``p``, the chance of *any* buyer-won dispute in six months, grows with the number of
orders, so v1 reads size as risk. v2 (``models/policy/v2.py``) replaces it.

Risk and amount are separate decisions (docs/design.md §7). The model gives a six-month breach
probability ``p``; this module turns ``p`` and the supplier's trading capacity into a
decision through an explicit, versioned configuration (``models/policies/*.yaml``).
Steps shared with v2 (eligibility rules other than risk, boosts, caps, growth limit,
rounding) live in ``models/policy/common.py``.

Eligibility
    Every rule that fails adds a stable reason code (``INELIGIBLE_REASONS``); a supplier
    is eligible when no rule fails. Nulls are never guessed favourably:

    ============================ =============================== ========================
    rule                         fails when                      null means
    ============================ =============================== ========================
    ``NOT_OPTED_IN``             opted_in is not True            not volunteered: fails
    ``TIER_NOT_ELIGIBLE``        tier not in ``eligible_tiers``  tier "unknown"
    ``COUNTRY_NOT_ENABLED``      country not enabled             fails unless all enabled
    ``HISTORY_TOO_SHORT``        tenure < ``min_tenure_months``  fails
    ``INSUFFICIENT_ORDERS``      orders_6m < ``min_orders_6m``   0 orders
    ``RISK_NOT_SCORED``          breach probability is null      fails (no score, no cover)
    ``RISK_ABOVE_CEILING``       p > ``max_breach_probability``  --
    ============================ =============================== ========================

Amount (zero when not eligible), in this order:

1. **volume basis** ``V = max(assured_deal_value_12m_usd, s_fb x deal_value_12m_usd)``
   (nulls and negatives read as 0, values beyond ``MAX_INPUT_VALUE`` as that bound;
   ``s_fb`` = ``fallback_deal_value_share``) so a
   supplier new to assurance gets credit for part of its unassured trade.
2. **capacity base** ``B = base_share_of_volume x V``.
3. **expected-loss limit**. Over the horizon ``h`` months the programme expects fee
   income ``F = fee_rate x V x h/12 + fee_per_order x assured_order_share x orders_6m x
   h/6`` and an expected loss of at most ``p x LGD x amount`` (the refund is capped at
   the amount). Keeping expected loss within ``target_loss_ratio x F`` gives
   ``L = target_loss_ratio x F / (p x LGD)`` (infinite at ``p = 0``). The risk-adjusted
   amount is ``min(B, L)``: safe suppliers get their full capacity, riskier ones are
   shrunk in proportion to ``1/p``. ``L`` is non-increasing in ``p`` and non-decreasing
   in ``V`` and ``orders_6m``.
4. **performance boost**: a bounded multiplier ``>= 1`` for sustained good reviews
   (enough reviews, high mean) and on-time shipment (enough orders, high rate); null
   performance data gives no boost (never a penalty: risk is already in ``p``). It
   multiplies ``min(B, L)``, so a proven supplier may exceed its expected-loss limit by
   at most ``max_multiplier`` (the model's ``p`` lags behind recent good conduct).
5. **caps**: ``min(., tier cap, global cap)``.
6. **growth limit**: with a previous published amount ``P``, at most
   ``P + max(max_relative_increase x P, max_absolute_increase_usd)``; a supplier without
   a previous amount is limited by ``first_assessment_max_usd`` (null: no limit).
   Decreases apply immediately (it is a ``min``).
7. **rounding down** to the step of the band the amount falls in (e.g. $500 below
   $10k, $1,000 above).

An eligible supplier can still get 0 (``NO_TRADING_CAPACITY``, ``BELOW_MINIMUM_STEP``):
eligibility says the platform would cover it, the amount how much its trade supports.

Why the invariants hold for any input: every step is a ``min``/product of functions
that are monotone in the right direction (non-increasing in ``p``, non-decreasing in
volume and orders and previous amount), rounding down is a non-decreasing step
function whose band starts are multiples of their steps (checked at load time), and the
growth limit is applied as a ``min`` with a non-decreasing function of ``P`` *before*
rounding down, so the result never exceeds the limit or the caps. Eligibility can only
be lost by a higher ``p`` and only gained by more orders. ``tests/test_policy_*.py``
checks these with hypothesis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.policy.common import (
    CAPACITY_COLUMNS,
    RISK_ABOVE_CEILING,
    RISK_NOT_SCORED,
    RISK_REDUCED,
    UNRATED_GRADE,
    _numeric,
    band_index,
    combine_failures,
    common_rule_failures,
    decision_frame,
    divide_or_inf,
    expected_fees,
    finish_amount,
    read_basics,
    tail_components,
    validate_input,
)
from models.policy.config import EligibilityRules, Policy, RiskGradeBand

REQUIRED_COLUMNS: tuple[str, ...] = (*CAPACITY_COLUMNS[:2], "breach_probability_6m",
                                     *CAPACITY_COLUMNS[2:])


def assign_risk_grades(probability: np.ndarray, bands: tuple[RiskGradeBand, ...]) -> np.ndarray:
    """Band label per probability: [previous bound, max_probability); null -> "NR"."""
    bounds = np.array([b.max_probability for b in bands])
    labels = np.array([b.grade for b in bands], dtype=object)
    grades = labels[band_index(probability, bounds)]
    grades[np.isnan(probability)] = UNRATED_GRADE
    return grades


def apply_v1(
    scored: pd.DataFrame,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
    *,
    include_components: bool = False,
) -> pd.DataFrame:
    """Formula v1 for one month of suppliers (see ``models.policy.apply_policy``)."""
    validate_input(scored, previous_amounts, REQUIRED_COLUMNS,
                   [("breach_probability_6m", 0.0, 1.0)], "v1")
    elig = policy.eligibility
    assert isinstance(elig, EligibilityRules)
    n = len(scored)
    p = _numeric(scored, "breach_probability_6m")
    basics = read_basics(scored, policy)

    # -- eligibility: each failing rule is a reason; null never passes a rule.
    fails = [
        *common_rule_failures(scored, elig, basics),
        (RISK_NOT_SCORED, np.isnan(p)),
        (RISK_ABOVE_CEILING, p > elig.max_breach_probability),
    ]
    eligible, reasons = combine_failures(fails, n)

    # -- amount, computed for everyone then zeroed for the ineligible.
    volume = basics.volume
    base = policy.capacity.base_share_of_volume * volume
    fees = expected_fees(volume, basics.orders, policy)
    # p * LGD can underflow to 0 for a tiny p: that means no expected loss, no limit.
    # (A null p never reaches an amount: the supplier is ineligible.)
    expected_loss_rate = np.nan_to_num(p, nan=1.0) * policy.expected_loss.loss_given_breach
    loss_limit = divide_or_inf(policy.expected_loss.target_loss_ratio * fees, expected_loss_rate)
    risk_adjusted = np.minimum(base, loss_limit)
    tail = finish_amount(scored, policy, basics, risk_adjusted, eligible, previous_amounts)

    out = decision_frame(
        scored, policy, basics, eligible, reasons,
        assign_risk_grades(p, policy.risk_grades),  # type: ignore[arg-type]
        [(RISK_REDUCED, loss_limit < base)],
        tail,
    )
    if include_components:
        out["policy_volume_basis_usd"] = volume
        out["policy_capacity_base_usd"] = base
        out["policy_expected_fees_usd"] = fees
        out["policy_loss_limit_usd"] = loss_limit
        tail_components(out, policy, tail)
    return out
