"""The Trade Assurance limit policy, formula v2: loss rate and default probability.

Selected by ``formula: v2`` in the policy YAML (``models/policies/default.yaml``).
v1 (``models/policy/v1.py``) limited the amount by ``breach_probability_6m``, the chance
of *any* buyer-won dispute in six months, which grows with a supplier's number of
orders: it refused and shrank the largest suppliers for trading a lot (issue 12). v2
reads the two quantities the programme actually risks (docs/design.md §4, §7), per supplier
and month end:

``r`` = ``loss_rate_6m`` (>= 0)
    expected buyer-won refunds in the next six months per dollar of the supplier's
    order value in that window: independent of size.
``d`` = ``default_probability_6m`` (in [0, 1])
    the chance that the supplier stops fulfilling (fraud, collapse) within six months,
    when everything outstanding under its amount is lost.

``breach_probability_6m`` is not read (it stays a published column, as information).

Eligibility (every failing rule is a reason code; null never passes)
    The rules not about risk are v1's (``models/policy/common.py``): ``NOT_OPTED_IN``,
    ``TIER_NOT_ELIGIBLE``, ``COUNTRY_NOT_ENABLED``, ``HISTORY_TOO_SHORT``,
    ``INSUFFICIENT_ORDERS``. Then ``RISK_NOT_SCORED`` when ``r`` or ``d`` is null,
    ``LOSS_RATE_ABOVE_CEILING`` when ``r > max_loss_rate`` and
    ``DEFAULT_RISK_ABOVE_CEILING`` when ``d > max_default_probability``.

Amount (zero when not eligible), with ``h`` = ``horizon_months``, ``LGD`` =
``loss_given_breach``, ``t`` = ``target_loss_ratio``:

1. **covered volume** over the horizon ``V = V12 x h/12`` with v1's 12-month basis
   ``V12 = max(assured_deal_value_12m_usd, fallback_deal_value_share x
   deal_value_12m_usd)``; **covered orders** ``N = assured_order_share x orders_6m x
   h/6``.
2. **capacity base** ``B = base_share_of_volume x V`` (1.0 = the horizon's covered trade).
3. **expected-loss limit**. Fee income ``F = fee_rate x V + fee_per_order_usd x N``;
   expected loss ``EL(A) = r x V x LGD + d x LGD x A`` for an amount ``A``. Keeping
   ``EL(A) <= t x F`` gives

       A <= L = (t x F - r x V x LGD) / (d x LGD)

   (infinite when ``d x LGD == 0``; 0 when the numerator is negative). The numerator is
   computed as ``(t x fee_rate - r x LGD) x V + t x fee_per_order_usd x N``, the same
   quantity, so that it is non-decreasing in ``V`` and ``N`` exactly in floating point.
   The risk-adjusted amount is ``min(B, L)``.
4. **boosts, caps, growth limit, rounding down**: v1's, unchanged (shared code).

Why size is never a risk: the config loader requires ``max_loss_rate <= t x fee_rate /
LGD`` (the break-even loss rate), so for every eligible supplier ``t x fee_rate - r x
LGD >= 0`` and ``L`` is non-decreasing in volume and orders; ``B`` grows with volume;
more orders only pass ``INSUFFICIENT_ORDERS`` and the on-time boost's minimum. ``L`` is
non-increasing in ``r`` and in ``d``; the ceilings only fail for higher ``r`` or ``d``.
Every later step is a ``min``/product with non-negative monotone functions and a
monotone rounding, as in v1. So, for any input: never negative, zero when ineligible,
never above the cap, no higher for a riskier supplier (higher ``r`` or ``d``), no lower
for a larger one, and never falling as volume rises at equal ``r`` and ``d``
(``tests/test_policy_v2_properties.py``, with the growth limit held fixed).

Risk grade
    A grade per quantity from the bands of ``risk_grades`` (each band has
    ``max_loss_rate`` and ``max_default_probability``, exclusive upper bounds; the last
    band's are null and 1.0); the published grade is the worse of the two. ``NR`` when
    either is null.

Amount drivers (what lowers the amount; volume never is one)
    When the limit binds (``L < B``): ``LOSS_RATE_REDUCED`` if the loss-rate term of the
    expected loss at the capacity base is at least the default term (``r x V >= d x
    B``), else ``DEFAULT_RISK_REDUCED``. The others are v1's (capacity from deal value,
    no trading capacity, boosts, caps, growth, minimum step).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.policy.common import (
    CAPACITY_COLUMNS,
    DEFAULT_RISK_ABOVE_CEILING,
    DEFAULT_RISK_REDUCED,
    LOSS_RATE_ABOVE_CEILING,
    LOSS_RATE_REDUCED,
    RISK_NOT_SCORED,
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
from models.policy.config import EligibilityRulesV2, Policy, RiskGradeBandV2

LOSS_RATE = "loss_rate_6m"
DEFAULT_PROBABILITY = "default_probability_6m"
REQUIRED_COLUMNS: tuple[str, ...] = (*CAPACITY_COLUMNS, LOSS_RATE, DEFAULT_PROBABILITY)


def assign_risk_grades_v2(
    loss_rate: np.ndarray, default_probability: np.ndarray, bands: tuple[RiskGradeBandV2, ...]
) -> np.ndarray:
    """The worse of the loss-rate grade and the default-probability grade; "NR" if
    either is null."""
    loss_bounds = np.array([np.inf if b.max_loss_rate is None else b.max_loss_rate
                            for b in bands])
    default_bounds = np.array([b.max_default_probability for b in bands])
    labels = np.array([b.grade for b in bands], dtype=object)
    worse = np.maximum(band_index(loss_rate, loss_bounds),
                       band_index(default_probability, default_bounds))
    grades = labels[worse]
    grades[np.isnan(loss_rate) | np.isnan(default_probability)] = UNRATED_GRADE
    return grades


def apply_v2(
    scored: pd.DataFrame,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
    *,
    include_components: bool = False,
) -> pd.DataFrame:
    """Formula v2 for one month of suppliers (see ``models.policy.apply_policy``).

    Raises ``ValueError`` when ``scored`` lacks ``loss_rate_6m`` or
    ``default_probability_6m`` (a frame scored by a model that does not publish them).
    """
    validate_input(
        scored, previous_amounts, REQUIRED_COLUMNS,
        [(LOSS_RATE, 0.0, np.inf), (DEFAULT_PROBABILITY, 0.0, 1.0)], "v2",
    )
    elig = policy.eligibility
    assert isinstance(elig, EligibilityRulesV2)
    el = policy.expected_loss
    n = len(scored)
    r = _numeric(scored, LOSS_RATE)
    d = _numeric(scored, DEFAULT_PROBABILITY)
    basics = read_basics(scored, policy)

    fails = [
        *common_rule_failures(scored, elig, basics),
        (RISK_NOT_SCORED, np.isnan(r) | np.isnan(d)),
        (LOSS_RATE_ABOVE_CEILING, r > elig.max_loss_rate),
        (DEFAULT_RISK_ABOVE_CEILING, d > elig.max_default_probability),
    ]
    eligible, reasons = combine_failures(fails, n)

    # -- amount, computed for everyone then zeroed for the ineligible. A null risk never
    # reaches an amount (ineligible); reading it as the worst keeps the arrays finite.
    r0 = np.nan_to_num(r, nan=elig.max_loss_rate)
    d0 = np.nan_to_num(d, nan=1.0)
    covered_volume = basics.volume * el.horizon_months / 12.0
    covered_orders = el.assured_order_share * basics.orders * el.horizon_months / 6.0
    base = policy.capacity.base_share_of_volume * covered_volume
    fees = expected_fees(basics.volume, basics.orders, policy)
    volume_loss = r0 * covered_volume * el.loss_given_breach
    margin = el.target_loss_ratio * el.fee_rate - r0 * el.loss_given_breach
    numerator = np.maximum(
        margin * covered_volume + el.target_loss_ratio * el.fee_per_order_usd * covered_orders,
        0.0,
    )
    # d x LGD can underflow to 0 for a tiny d: no default loss, no limit.
    loss_limit = divide_or_inf(numerator, d0 * el.loss_given_breach)
    risk_adjusted = np.minimum(base, loss_limit)
    tail = finish_amount(scored, policy, basics, risk_adjusted, eligible, previous_amounts)

    binds = loss_limit < base
    loss_rate_dominates = r0 * covered_volume >= d0 * base
    out = decision_frame(
        scored, policy, basics, eligible, reasons,
        assign_risk_grades_v2(r, d, policy.risk_grades),  # type: ignore[arg-type]
        [(LOSS_RATE_REDUCED, binds & loss_rate_dominates),
         (DEFAULT_RISK_REDUCED, binds & ~loss_rate_dominates)],
        tail,
    )
    if include_components:
        out["policy_volume_basis_usd"] = basics.volume
        out["policy_covered_volume_usd"] = covered_volume
        out["policy_covered_orders"] = covered_orders
        out["policy_capacity_base_usd"] = base
        out["policy_expected_fees_usd"] = fees
        out["policy_expected_volume_loss_usd"] = volume_loss
        out["policy_loss_limit_usd"] = loss_limit
        tail_components(out, policy, tail)
    return out
