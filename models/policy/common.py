"""What both policy formulas share: reason codes, input reading, the eligibility rules
that do not depend on risk, and the amount's tail (boosts, caps, growth, rounding).

One home per concept: ``v1.py`` and ``v2.py`` differ only in how risk enters
(ceilings, risk grade, the expected-loss limit) and call these functions for the rest,
so a change to, say, the growth limit changes both formulas alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # config imports nothing from here at run time either way
    from models.policy.config import CommonEligibility, Policy, RoundingStep

# Stable reason codes, in the order they are reported.
NOT_OPTED_IN = "NOT_OPTED_IN"
TIER_NOT_ELIGIBLE = "TIER_NOT_ELIGIBLE"
COUNTRY_NOT_ENABLED = "COUNTRY_NOT_ENABLED"
HISTORY_TOO_SHORT = "HISTORY_TOO_SHORT"
INSUFFICIENT_ORDERS = "INSUFFICIENT_ORDERS"
RISK_NOT_SCORED = "RISK_NOT_SCORED"
RISK_ABOVE_CEILING = "RISK_ABOVE_CEILING"  # v1: breach probability above its ceiling
LOSS_RATE_ABOVE_CEILING = "LOSS_RATE_ABOVE_CEILING"  # v2
DEFAULT_RISK_ABOVE_CEILING = "DEFAULT_RISK_ABOVE_CEILING"  # v2
OVERRIDE_EXCLUDED = "OVERRIDE_EXCLUDED"  # an analyst override (models/overrides.py), after the policy
INELIGIBLE_REASONS: tuple[str, ...] = (
    NOT_OPTED_IN,
    TIER_NOT_ELIGIBLE,
    COUNTRY_NOT_ENABLED,
    HISTORY_TOO_SHORT,
    INSUFFICIENT_ORDERS,
    RISK_NOT_SCORED,
    RISK_ABOVE_CEILING,
    LOSS_RATE_ABOVE_CEILING,
    DEFAULT_RISK_ABOVE_CEILING,
    OVERRIDE_EXCLUDED,
)

# Amount drivers: why an eligible supplier's amount is what it is.
CAPACITY_FROM_DEAL_VALUE = "CAPACITY_FROM_DEAL_VALUE"  # fallback share of all trade was larger
NO_TRADING_CAPACITY = "NO_TRADING_CAPACITY"  # no (assured) deal value: nothing to cover
RISK_REDUCED = "RISK_REDUCED"  # v1: expected-loss limit below capacity
LOSS_RATE_REDUCED = "LOSS_RATE_REDUCED"  # v2: limit binds, mostly from the loss rate
DEFAULT_RISK_REDUCED = "DEFAULT_RISK_REDUCED"  # v2: limit binds, mostly from default risk
REVIEW_BOOST = "REVIEW_BOOST"
ON_TIME_BOOST = "ON_TIME_BOOST"
BOOST_LIMITED = "BOOST_LIMITED"  # combined boosts above max_multiplier
TIER_CAPPED = "TIER_CAPPED"
CAPPED = "CAPPED"  # global cap
GROWTH_LIMITED = "GROWTH_LIMITED"
FIRST_ASSESSMENT_LIMITED = "FIRST_ASSESSMENT_LIMITED"
BELOW_MINIMUM_STEP = "BELOW_MINIMUM_STEP"  # positive before rounding, 0 after
# Analyst overrides (models/overrides.py), applied after the policy and reported last.
OVERRIDE_FROZEN = "OVERRIDE_FROZEN"  # the amount is held at a frozen value
OVERRIDE_CAPPED = "OVERRIDE_CAPPED"  # the analyst's cap is below the policy's amount
AMOUNT_DRIVERS: tuple[str, ...] = (
    CAPACITY_FROM_DEAL_VALUE,
    NO_TRADING_CAPACITY,
    RISK_REDUCED,
    LOSS_RATE_REDUCED,
    DEFAULT_RISK_REDUCED,
    REVIEW_BOOST,
    ON_TIME_BOOST,
    BOOST_LIMITED,
    TIER_CAPPED,
    CAPPED,
    GROWTH_LIMITED,
    FIRST_ASSESSMENT_LIMITED,
    BELOW_MINIMUM_STEP,
    OVERRIDE_FROZEN,
    OVERRIDE_CAPPED,
)

UNRATED_GRADE = "NR"  # risk_grade when the risk the formula reads is null

# Columns every formula reads; each formula adds its risk columns.
CAPACITY_COLUMNS: tuple[str, ...] = (
    "supplier_id",
    "as_of_date",
    "opted_in",
    "membership_tier",
    "country",
    "tenure_months",
    "orders_6m",
    "deal_value_12m_usd",
    "assured_deal_value_12m_usd",
)
# Read when present; a missing column means "no data", i.e. no boost.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "review_mean_6m",
    "review_count_6m",
    "on_time_shipment_rate_6m",
    "completion_rate_6m",
    "dispute_ratio_6m",
)
DECISION_COLUMNS: tuple[str, ...] = (
    "eligible",
    "ineligible_reasons",
    "risk_grade",
    "trade_assurance_amount_usd",
    "amount_drivers",
    "amount_binding_from",
    "amount_before_binding_usd",
)
UNKNOWN_TIER = "unknown"

# No supplier trades more than this; bounding inputs keeps every product finite
# (0 x inf would be NaN) without changing any realistic amount.
MAX_INPUT_VALUE = 1e15


# --------------------------------------------------------------------------- reading


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A float array with NaN for null (None, pd.NA, NaN, unparseable)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").astype("float64").to_numpy()


def _strings(frame: pd.DataFrame, column: str) -> np.ndarray:
    """An object array of str, None for null."""
    values = frame[column].astype(object).to_numpy()
    return np.array([None if _is_null(v) else str(v) for v in values], dtype=object)


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def true_flags(frame: pd.DataFrame, column: str) -> np.ndarray:
    """True only where the value is the boolean True (or 1); null and anything else False.

    Shared with the backtest so that opt-in and outcome flags read nulls the same way.
    """
    values = frame[column].astype(object).to_numpy()
    return np.array(
        [(not _is_null(v)) and (v is True or v == 1 or (isinstance(v, np.bool_) and bool(v)))
         for v in values],
        dtype=bool,
    )


def _bounded_amount(values: np.ndarray) -> np.ndarray:
    """Null -> 0, negative -> 0, above MAX_INPUT_VALUE (or +inf) -> MAX_INPUT_VALUE."""
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=MAX_INPUT_VALUE, neginf=0.0),
                   0.0, MAX_INPUT_VALUE)


def validate_input(
    scored: pd.DataFrame,
    previous_amounts: pd.Series | None,
    required: Sequence[str],
    ranges: Sequence[tuple[str, float, float]],
    formula: str,
) -> None:
    """Structural checks: required columns, one row per supplier, risk columns in range.

    ``ranges``: (column, low, high) that every non-null value must lie in.
    """
    missing = [c for c in required if c not in scored.columns]
    if missing:
        raise ValueError(
            f"apply_policy: scored frame lacks column(s) {missing} (policy formula {formula})"
        )
    ids = scored["supplier_id"]
    if ids.isna().any():
        raise ValueError("apply_policy: supplier_id must not be null")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise ValueError(
            f"apply_policy: supplier_id {dup!r} appears more than once; pass one row per "
            "supplier for one as_of_date"
        )
    for column, low, high in ranges:
        values = _numeric(scored, column)
        bad = ~np.isnan(values) & ((values < low) | (values > high) | np.isinf(values))
        if bad.any():
            interval = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}, finite"
            raise ValueError(
                f"apply_policy: {column} must lie in {interval}; got "
                f"{values[bad][0]!r} for supplier {ids.to_numpy()[bad][0]!r}"
            )
    if previous_amounts is not None and previous_amounts.index.duplicated().any():
        raise ValueError("apply_policy: previous_amounts has duplicate supplier_id")


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class SupplierBasics:
    """The non-risk inputs both formulas read, cleaned once."""

    tiers: np.ndarray  # str, null read as "unknown"
    orders: np.ndarray  # orders_6m, bounded (null: 0)
    assured: np.ndarray  # assured_deal_value_12m_usd, bounded
    fallback: np.ndarray  # fallback share x deal_value_12m_usd
    volume: np.ndarray  # V12 = max(assured, fallback): the 12-month volume basis


def read_basics(scored: pd.DataFrame, policy: Policy) -> SupplierBasics:
    tiers = _strings(scored, "membership_tier")
    tiers = np.array([UNKNOWN_TIER if t is None else t for t in tiers], dtype=object)
    orders = _bounded_amount(_numeric(scored, "orders_6m"))
    assured = _bounded_amount(_numeric(scored, "assured_deal_value_12m_usd"))
    deal = _bounded_amount(_numeric(scored, "deal_value_12m_usd"))
    fallback = policy.capacity.fallback_deal_value_share * deal
    volume = np.maximum(assured, fallback)
    return SupplierBasics(tiers=tiers, orders=orders, assured=assured, fallback=fallback,
                          volume=volume)


def common_rule_failures(
    scored: pd.DataFrame, elig: CommonEligibility, basics: SupplierBasics
) -> list[tuple[str, np.ndarray]]:
    """The rules that do not read risk, in report order; null never passes a rule."""
    n = len(scored)
    countries = _strings(scored, "country")
    tenure = _numeric(scored, "tenure_months")
    return [
        (NOT_OPTED_IN,
         ~true_flags(scored, "opted_in") if elig.require_opt_in else np.zeros(n, bool)),
        (TIER_NOT_ELIGIBLE, ~np.isin(basics.tiers, list(elig.eligible_tiers))),
        (
            COUNTRY_NOT_ENABLED,
            np.zeros(n, bool)
            if elig.enabled_countries is None
            else ~np.isin(countries, list(elig.enabled_countries)),
        ),
        # NaN >= x is False, so a null tenure fails.
        (HISTORY_TOO_SHORT, ~(tenure >= elig.min_tenure_months)),
        (INSUFFICIENT_ORDERS, ~(basics.orders >= elig.min_orders_6m)),
    ]


def combine_failures(
    fails: list[tuple[str, np.ndarray]], n: int
) -> tuple[np.ndarray, list[list[str]]]:
    """Eligible where no rule failed, and each supplier's failing codes in order."""
    eligible = np.ones(n, bool)
    for _, failing in fails:
        eligible &= ~failing
    reasons = [[code for code, failing in fails if failing[i]] for i in range(n)]
    return eligible, reasons


def expected_fees(volume_12m: np.ndarray, orders: np.ndarray, policy: Policy) -> np.ndarray:
    """Fee income over the horizon: ``fee_rate x V12 x h/12 + fee_per_order x
    assured_order_share x orders_6m x h/6``."""
    el = policy.expected_loss
    return (
        el.fee_rate * volume_12m * el.horizon_months / 12.0
        + el.fee_per_order_usd * el.assured_order_share * orders * el.horizon_months / 6.0
    )


def divide_or_inf(numerator: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``numerator / rate`` where ``rate > 0``, infinite elsewhere (no loss: no limit).

    A rate that underflows to 0 or a quotient that overflows both mean "no limit".
    """
    has_loss = rate > 0
    with np.errstate(over="ignore"):
        return np.where(has_loss, numerator / np.where(has_loss, rate, 1.0), np.inf)


# --------------------------------------------------------------------------- amount tail


@dataclass(frozen=True)
class AmountTail:
    """The amount after boosts, caps, growth limit and rounding, with what each did."""

    review_ok: np.ndarray
    on_time_ok: np.ndarray
    raw_boost: np.ndarray
    boost: np.ndarray
    boosted: np.ndarray
    tier_cap: np.ndarray
    capped: np.ndarray
    has_previous: np.ndarray
    growth_limit: np.ndarray
    limited: np.ndarray
    amount: np.ndarray  # rounded, zero where not eligible
    binding_from: np.ndarray  # date from which a lower amount binds new orders; None: at once
    before_binding: np.ndarray  # the previous amount, binding until then; NaN without notice


def finish_amount(
    scored: pd.DataFrame,
    policy: Policy,
    basics: SupplierBasics,
    risk_adjusted: np.ndarray,
    eligible: np.ndarray,
    previous_amounts: pd.Series | None,
) -> AmountTail:
    """Boost, cap, limit growth and round ``risk_adjusted``; zero the ineligible."""
    n = len(scored)
    orders = basics.orders
    pb = policy.performance_boost
    review_ok = (_numeric(scored, "review_count_6m") >= pb.review.min_review_count_6m) & (
        _numeric(scored, "review_mean_6m") >= pb.review.min_review_mean_6m
    )
    on_time_ok = (orders >= pb.on_time.min_orders_6m) & (
        _numeric(scored, "on_time_shipment_rate_6m") >= pb.on_time.min_on_time_shipment_rate_6m
    )
    raw_boost = np.where(review_ok, pb.review.multiplier, 1.0) * np.where(
        on_time_ok, pb.on_time.multiplier, 1.0
    )
    boost = np.minimum(raw_boost, pb.max_multiplier)
    boosted = risk_adjusted * boost

    tier_cap_map = dict(policy.caps.tier_caps_usd)
    tier_cap = np.array(
        [tier_cap_map.get(t, policy.caps.default_tier_cap_usd) for t in basics.tiers],
        dtype="float64",
    )
    capped = np.minimum(np.minimum(boosted, tier_cap), policy.caps.global_cap_usd)

    growth = policy.growth
    if previous_amounts is None:
        previous = np.full(n, np.nan)
    else:
        prev_series = pd.to_numeric(previous_amounts, errors="coerce").astype("float64")
        previous = scored["supplier_id"].map(prev_series).astype("float64").to_numpy()
        previous = np.where(previous < 0, 0.0, previous)
    has_previous = ~np.isnan(previous)
    prev0 = np.nan_to_num(previous, nan=0.0, posinf=np.inf)
    with np.errstate(over="ignore"):  # a huge previous amount overflows to inf: no limit
        rise = np.maximum(growth.max_relative_increase * prev0, growth.max_absolute_increase_usd)
        growth_limit = np.where(
            has_previous,
            prev0 + rise,
            np.inf if growth.first_assessment_max_usd is None else growth.first_assessment_max_usd,
        )
    limited = np.minimum(capped, growth_limit)
    amount = round_down_to_steps(limited, policy.rounding)
    amount = np.where(eligible, amount, 0.0)
    binding_from, before_binding = decrease_notice(
        scored["as_of_date"], growth.decrease_notice_days, eligible, has_previous, prev0, amount
    )
    return AmountTail(
        review_ok=review_ok, on_time_ok=on_time_ok, raw_boost=raw_boost, boost=boost,
        boosted=boosted, tier_cap=tier_cap, capped=capped, has_previous=has_previous,
        growth_limit=growth_limit, limited=limited, amount=amount,
        binding_from=binding_from, before_binding=before_binding,
    )


def decrease_notice(
    as_of_dates: pd.Series,
    notice_days: int,
    eligible: np.ndarray,
    has_previous: np.ndarray,
    previous: np.ndarray,
    amount: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """When a lower amount binds, and what binds until then (policy ``decrease_notice_days``).

    As trade-credit insurers do, a decrease for a supplier that stays eligible binds new
    orders only ``notice_days`` after the as-of date; orders placed before that still rely on
    the previous published amount. A refusal (the supplier is no longer eligible, for risk or
    any other rule) binds at once: the programme does not keep covering a supplier it would
    not take on today. Increases bind at once too (the growth limit already paces them).
    Returns ``(binding_from, before_binding)``: a date or None, the previous amount or NaN.
    """
    n = len(amount)
    gets_notice = eligible & has_previous & (amount < previous) & (notice_days > 0)
    dates = pd.to_datetime(pd.Series(as_of_dates).reset_index(drop=True))
    binding_from = np.full(n, None, dtype=object)
    for i in np.flatnonzero(gets_notice & dates.notna().to_numpy()):
        binding_from[i] = (dates.iloc[i] + pd.Timedelta(days=notice_days)).date()
    before_binding = np.where(binding_from != None, previous, np.nan)  # noqa: E711 - elementwise
    return binding_from, before_binding.astype("float64")


def decision_frame(
    scored: pd.DataFrame,
    policy: Policy,
    basics: SupplierBasics,
    eligible: np.ndarray,
    reasons: list[list[str]],
    grades: np.ndarray,
    risk_drivers: list[tuple[str, np.ndarray]],
    tail: AmountTail,
) -> pd.DataFrame:
    """``scored`` with the decision columns; drivers only for the eligible.

    ``risk_drivers``: the formula's own drivers (how risk lowered the amount), reported
    between the capacity drivers and the tail's.
    """
    caps = policy.caps
    driver_flags: list[tuple[str, np.ndarray]] = [
        (CAPACITY_FROM_DEAL_VALUE, basics.fallback > basics.assured),
        (NO_TRADING_CAPACITY, basics.volume <= 0),
        *risk_drivers,
        (REVIEW_BOOST, tail.review_ok),
        (ON_TIME_BOOST, tail.on_time_ok),
        (BOOST_LIMITED, tail.raw_boost > tail.boost),
        (TIER_CAPPED, (tail.tier_cap < tail.boosted) & (tail.tier_cap <= caps.global_cap_usd)),
        (CAPPED, (caps.global_cap_usd < tail.boosted) & (caps.global_cap_usd < tail.tier_cap)),
        (GROWTH_LIMITED, tail.has_previous & (tail.growth_limit < tail.capped)),
        (FIRST_ASSESSMENT_LIMITED, ~tail.has_previous & (tail.growth_limit < tail.capped)),
        (BELOW_MINIMUM_STEP, (tail.limited > 0) & (tail.amount == 0)),
    ]
    drivers = [
        [code for code, flag in driver_flags if flag[i]] if eligible[i] else []
        for i in range(len(scored))
    ]
    out = scored.copy()
    out["eligible"] = eligible
    out["ineligible_reasons"] = reasons
    out["risk_grade"] = grades
    out["trade_assurance_amount_usd"] = tail.amount.astype("float64")
    out["amount_drivers"] = drivers
    out["amount_binding_from"] = tail.binding_from
    out["amount_before_binding_usd"] = tail.before_binding
    return out


def tail_components(out: pd.DataFrame, policy: Policy, tail: AmountTail) -> None:
    """Add the tail's intermediate amounts (``include_components``) to ``out``."""
    out["policy_boost_multiplier"] = tail.boost
    out["policy_cap_usd"] = np.minimum(tail.tier_cap, policy.caps.global_cap_usd)
    out["policy_growth_limit_usd"] = tail.growth_limit


# --------------------------------------------------------------------------- rounding, grades


def round_down_to_steps(amounts: np.ndarray, steps: tuple[RoundingStep, ...]) -> np.ndarray:
    """Round each non-negative amount down to the step of its band (non-decreasing)."""
    amounts = np.asarray(amounts, dtype="float64")
    starts = np.array([s.from_usd for s in steps])
    sizes = np.array([s.step_usd for s in steps])
    band = np.searchsorted(starts, amounts, side="right") - 1
    band = np.clip(band, 0, len(steps) - 1)
    step = sizes[band]
    rounded = np.floor(amounts / step) * step
    # Float division can land exactly on the next multiple for an amount a hair below
    # it: never round up past the input.
    rounded = np.where(rounded > amounts, rounded - step, rounded)
    # An amount in a band never rounds below the band's start (which is on the grid):
    # this keeps the function monotone across band boundaries even with float noise.
    rounded = np.maximum(rounded, starts[band])
    return np.maximum(rounded, 0.0)


def band_index(values: np.ndarray, upper_bounds: np.ndarray) -> np.ndarray:
    """Index of the band ``[previous bound, bound)`` each value falls in (null: 0);
    values at or beyond the last bound fall in the last band."""
    idx = np.searchsorted(upper_bounds, np.nan_to_num(values, nan=0.0), side="right")
    return np.clip(idx, 0, len(upper_bounds) - 1)
