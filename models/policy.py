"""The Trade Assurance limit policy: eligibility, risk grade and Trade Assurance Amount.

Risk and amount are separate decisions (DESIGN §7). The model gives a six-month breach
probability ``p``; this module turns ``p`` and the supplier's trading capacity into a
decision through an explicit, versioned configuration (``models/policies/*.yaml``).

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

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"

# Stable reason codes, in the order they are reported.
NOT_OPTED_IN = "NOT_OPTED_IN"
TIER_NOT_ELIGIBLE = "TIER_NOT_ELIGIBLE"
COUNTRY_NOT_ENABLED = "COUNTRY_NOT_ENABLED"
HISTORY_TOO_SHORT = "HISTORY_TOO_SHORT"
INSUFFICIENT_ORDERS = "INSUFFICIENT_ORDERS"
RISK_NOT_SCORED = "RISK_NOT_SCORED"
RISK_ABOVE_CEILING = "RISK_ABOVE_CEILING"
INELIGIBLE_REASONS: tuple[str, ...] = (
    NOT_OPTED_IN,
    TIER_NOT_ELIGIBLE,
    COUNTRY_NOT_ENABLED,
    HISTORY_TOO_SHORT,
    INSUFFICIENT_ORDERS,
    RISK_NOT_SCORED,
    RISK_ABOVE_CEILING,
)

# Amount drivers: why an eligible supplier's amount is what it is.
CAPACITY_FROM_DEAL_VALUE = "CAPACITY_FROM_DEAL_VALUE"  # fallback share of all trade was larger
NO_TRADING_CAPACITY = "NO_TRADING_CAPACITY"  # no (assured) deal value: nothing to cover
RISK_REDUCED = "RISK_REDUCED"  # expected-loss limit below capacity
REVIEW_BOOST = "REVIEW_BOOST"
ON_TIME_BOOST = "ON_TIME_BOOST"
BOOST_LIMITED = "BOOST_LIMITED"  # combined boosts above max_multiplier
TIER_CAPPED = "TIER_CAPPED"
CAPPED = "CAPPED"  # global cap
GROWTH_LIMITED = "GROWTH_LIMITED"
FIRST_ASSESSMENT_LIMITED = "FIRST_ASSESSMENT_LIMITED"
BELOW_MINIMUM_STEP = "BELOW_MINIMUM_STEP"  # positive before rounding, 0 after
AMOUNT_DRIVERS: tuple[str, ...] = (
    CAPACITY_FROM_DEAL_VALUE,
    NO_TRADING_CAPACITY,
    RISK_REDUCED,
    REVIEW_BOOST,
    ON_TIME_BOOST,
    BOOST_LIMITED,
    TIER_CAPPED,
    CAPPED,
    GROWTH_LIMITED,
    FIRST_ASSESSMENT_LIMITED,
    BELOW_MINIMUM_STEP,
)

UNRATED_GRADE = "NR"  # risk_grade when breach_probability_6m is null

REQUIRED_COLUMNS: tuple[str, ...] = (
    "supplier_id",
    "as_of_date",
    "breach_probability_6m",
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
)
UNKNOWN_TIER = "unknown"


class PolicyConfigError(ValueError):
    """A policy configuration that cannot be used; the message names the key."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class EligibilityRules:
    require_opt_in: bool
    eligible_tiers: tuple[str, ...]
    enabled_countries: tuple[str, ...] | None  # None: every country
    min_tenure_months: float
    min_orders_6m: float
    max_breach_probability: float


@dataclass(frozen=True)
class RiskGradeBand:
    grade: str
    max_probability: float  # exclusive upper bound, except the last band which is 1.0


@dataclass(frozen=True)
class CapacityRules:
    fallback_deal_value_share: float
    base_share_of_volume: float


@dataclass(frozen=True)
class ExpectedLossRules:
    horizon_months: float
    loss_given_breach: float
    target_loss_ratio: float
    fee_rate: float
    fee_per_order_usd: float
    assured_order_share: float


@dataclass(frozen=True)
class ReviewBoost:
    min_review_count_6m: float
    min_review_mean_6m: float
    multiplier: float


@dataclass(frozen=True)
class OnTimeBoost:
    min_orders_6m: float
    min_on_time_shipment_rate_6m: float
    multiplier: float


@dataclass(frozen=True)
class PerformanceBoost:
    review: ReviewBoost
    on_time: OnTimeBoost
    max_multiplier: float


@dataclass(frozen=True)
class Caps:
    tier_caps_usd: tuple[tuple[str, float], ...]  # sorted (tier, cap) pairs: hashable
    default_tier_cap_usd: float
    global_cap_usd: float


@dataclass(frozen=True)
class RoundingStep:
    from_usd: float
    step_usd: float


@dataclass(frozen=True)
class GrowthLimit:
    max_relative_increase: float
    max_absolute_increase_usd: float
    first_assessment_max_usd: float | None


@dataclass(frozen=True)
class Policy:
    """A validated, immutable limit policy. Build with ``from_yaml``/``from_dict``."""

    name: str
    policy_semver: str
    eligibility: EligibilityRules
    risk_grades: tuple[RiskGradeBand, ...]
    capacity: CapacityRules
    expected_loss: ExpectedLossRules
    performance_boost: PerformanceBoost
    caps: Caps
    rounding: tuple[RoundingStep, ...]
    growth: GrowthLimit
    source: str | None = field(default=None, compare=False, hash=False)

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> Policy:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise PolicyConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise PolicyConfigError(f"{path}: expected a mapping at the top level")
        try:
            return cls.from_dict(raw, source=str(path))
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"{path}: {exc}") from exc

    @classmethod
    def default(cls) -> Policy:
        return cls.from_yaml(DEFAULT_POLICY_PATH)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str | None = None) -> Policy:
        return _parse_policy(raw, source)

    def to_dict(self) -> dict[str, Any]:
        """The normalised configuration (the same shape as the YAML)."""
        out = {
            "name": self.name,
            "version": self.policy_semver,
            "eligibility": asdict(self.eligibility),
            "risk_grades": [asdict(b) for b in self.risk_grades],
            "capacity": asdict(self.capacity),
            "expected_loss": asdict(self.expected_loss),
            "performance_boost": asdict(self.performance_boost),
            "caps": {
                "tier_caps_usd": dict(self.caps.tier_caps_usd),
                "default_tier_cap_usd": self.caps.default_tier_cap_usd,
                "global_cap_usd": self.caps.global_cap_usd,
            },
            "rounding": {"steps": [asdict(s) for s in self.rounding]},
            "growth": asdict(self.growth),
        }
        elig = out["eligibility"]
        elig["eligible_tiers"] = list(elig["eligible_tiers"])
        if elig["enabled_countries"] is not None:
            elig["enabled_countries"] = list(elig["enabled_countries"])
        return out

    def replace(self, **overrides: Any) -> Policy:
        """A copy with some parameters changed, for what-if analysis.

        Keys are dotted paths into the configuration, e.g.
        ``policy.replace(**{"eligibility.max_breach_probability": 0.1})``.
        """
        raw = self.to_dict()
        for dotted, value in overrides.items():
            node = raw
            *parents, leaf = dotted.split(".")
            for key in parents:
                if not isinstance(node, dict) or key not in node:
                    raise PolicyConfigError(f"unknown policy parameter {dotted!r}")
                node = node[key]
            if not isinstance(node, dict) or leaf not in node:
                raise PolicyConfigError(f"unknown policy parameter {dotted!r}")
            node[leaf] = value
        return Policy.from_dict(raw)

    # -- identity -----------------------------------------------------------------

    @property
    def content_hash(self) -> str:
        """Eight hex digits of SHA-256 over the normalised configuration.

        Normalised: parsed, validated, numbers as floats, tiers and countries sorted,
        keys sorted; so formatting, comments and key order do not change it, while any
        parameter value does.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]

    @property
    def version(self) -> str:
        return f"{self.name}-{self.policy_semver}+{self.content_hash}"

    # -- use ------------------------------------------------------------------------

    def apply(
        self, scored: pd.DataFrame, previous_amounts: pd.Series | None = None
    ) -> pd.DataFrame:
        return apply_policy(scored, self, previous_amounts)


@dataclass(frozen=True)
class PolicyDecision:
    """One supplier's decision; ``apply_policy`` returns the same fields as columns."""

    supplier_id: str
    eligible: bool
    ineligible_reasons: tuple[str, ...]
    risk_grade: str
    trade_assurance_amount_usd: float
    amount_drivers: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PolicyDecision:
        return cls(
            supplier_id=str(row["supplier_id"]),
            eligible=bool(row["eligible"]),
            ineligible_reasons=tuple(row["ineligible_reasons"]),
            risk_grade=str(row["risk_grade"]),
            trade_assurance_amount_usd=float(row["trade_assurance_amount_usd"]),
            amount_drivers=tuple(row["amount_drivers"]),
        )


def decide_supplier(
    features: Mapping[str, Any], policy: Policy, previous_amount: float | None = None
) -> PolicyDecision:
    """The decision for one supplier (notebooks, explanations); same code path."""
    frame = pd.DataFrame([dict(features)])
    previous = None
    if previous_amount is not None:
        previous = pd.Series([previous_amount], index=[features["supplier_id"]])
    return PolicyDecision.from_row(apply_policy(frame, policy, previous).iloc[0])


# --------------------------------------------------------------------------- parsing

_POLICY_KEYS = {
    "name", "version", "eligibility", "risk_grades", "capacity", "expected_loss",
    "performance_boost", "caps", "rounding", "growth",
}


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise PolicyConfigError(f"{key}: expected a mapping")
    return value


def _check_keys(node: Mapping[str, Any], expected: set[str], where: str) -> None:
    unknown = set(node) - expected
    missing = expected - set(node)
    if unknown:
        raise PolicyConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    if missing:
        raise PolicyConfigError(f"{where}: missing key(s) {sorted(missing)}")


def _number(
    node: Mapping[str, Any],
    key: str,
    where: str,
    *,
    low: float = 0.0,
    high: float = math.inf,
    allow_none: bool = False,
) -> float | None:
    value = node[key]
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PolicyConfigError(f"{where}.{key}: expected a number, got {value!r}")
    value = float(value)
    if not (low <= value <= high) or math.isnan(value):
        raise PolicyConfigError(f"{where}.{key}: {value} is outside [{low}, {high}]")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise PolicyConfigError(f"{where}: expected a list of strings")
    return tuple(sorted(set(value)))


def _parse_policy(raw: Mapping[str, Any], source: str | None) -> Policy:
    _check_keys(raw, _POLICY_KEYS, "policy")
    name = raw["name"]
    if not isinstance(name, str) or not name or any(c in name for c in " +"):
        raise PolicyConfigError("name: expected a non-empty string without spaces or '+'")
    semver = str(raw["version"])

    e = _section(raw, "eligibility")
    _check_keys(
        e,
        {"require_opt_in", "eligible_tiers", "enabled_countries", "min_tenure_months",
         "min_orders_6m", "max_breach_probability"},
        "eligibility",
    )
    if not isinstance(e["require_opt_in"], bool):
        raise PolicyConfigError("eligibility.require_opt_in: expected true or false")
    countries = e["enabled_countries"]
    eligibility = EligibilityRules(
        require_opt_in=e["require_opt_in"],
        eligible_tiers=_string_list(e["eligible_tiers"], "eligibility.eligible_tiers"),
        enabled_countries=None
        if countries is None
        else _string_list(countries, "eligibility.enabled_countries"),
        min_tenure_months=_number(e, "min_tenure_months", "eligibility"),
        min_orders_6m=_number(e, "min_orders_6m", "eligibility"),
        max_breach_probability=_number(e, "max_breach_probability", "eligibility", high=1.0),
    )

    bands_raw = raw["risk_grades"]
    if not isinstance(bands_raw, list) or not bands_raw:
        raise PolicyConfigError("risk_grades: expected a non-empty list")
    bands = []
    for i, band in enumerate(bands_raw):
        where = f"risk_grades[{i}]"
        if not isinstance(band, Mapping):
            raise PolicyConfigError(f"{where}: expected a mapping")
        _check_keys(band, {"grade", "max_probability"}, where)
        if not isinstance(band["grade"], str) or not band["grade"]:
            raise PolicyConfigError(f"{where}.grade: expected a non-empty string")
        bands.append(
            RiskGradeBand(band["grade"], _number(band, "max_probability", where, high=1.0))
        )
    bounds = [b.max_probability for b in bands]
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)) or bounds[-1] != 1.0:
        raise PolicyConfigError(
            "risk_grades: max_probability must increase strictly and end at 1.0"
        )
    if len({b.grade for b in bands}) != len(bands) or UNRATED_GRADE in {b.grade for b in bands}:
        raise PolicyConfigError(f"risk_grades: grades must be unique and not {UNRATED_GRADE!r}")

    c = _section(raw, "capacity")
    _check_keys(c, {"fallback_deal_value_share", "base_share_of_volume"}, "capacity")
    capacity = CapacityRules(
        fallback_deal_value_share=_number(c, "fallback_deal_value_share", "capacity", high=1.0),
        base_share_of_volume=_number(c, "base_share_of_volume", "capacity", high=10.0),
    )

    x = _section(raw, "expected_loss")
    _check_keys(
        x,
        {"horizon_months", "loss_given_breach", "target_loss_ratio", "fee_rate",
         "fee_per_order_usd", "assured_order_share"},
        "expected_loss",
    )
    expected_loss = ExpectedLossRules(
        horizon_months=_number(x, "horizon_months", "expected_loss", low=1.0, high=60.0),
        # LGD > 0: a zero would make every supplier riskless and the limit meaningless.
        loss_given_breach=_number(x, "loss_given_breach", "expected_loss", low=1e-6, high=1.0),
        target_loss_ratio=_number(x, "target_loss_ratio", "expected_loss", high=100.0),
        fee_rate=_number(x, "fee_rate", "expected_loss", high=1.0),
        fee_per_order_usd=_number(x, "fee_per_order_usd", "expected_loss"),
        assured_order_share=_number(x, "assured_order_share", "expected_loss", high=1.0),
    )

    b = _section(raw, "performance_boost")
    _check_keys(b, {"review", "on_time", "max_multiplier"}, "performance_boost")
    r = _section(b, "review")
    _check_keys(r, {"min_review_count_6m", "min_review_mean_6m", "multiplier"},
                "performance_boost.review")
    o = _section(b, "on_time")
    _check_keys(o, {"min_orders_6m", "min_on_time_shipment_rate_6m", "multiplier"},
                "performance_boost.on_time")
    boost = PerformanceBoost(
        review=ReviewBoost(
            min_review_count_6m=_number(r, "min_review_count_6m", "performance_boost.review"),
            min_review_mean_6m=_number(r, "min_review_mean_6m", "performance_boost.review",
                                       low=1.0, high=5.0),
            multiplier=_number(r, "multiplier", "performance_boost.review", low=1.0, high=10.0),
        ),
        on_time=OnTimeBoost(
            min_orders_6m=_number(o, "min_orders_6m", "performance_boost.on_time"),
            min_on_time_shipment_rate_6m=_number(
                o, "min_on_time_shipment_rate_6m", "performance_boost.on_time", high=1.0
            ),
            multiplier=_number(o, "multiplier", "performance_boost.on_time", low=1.0, high=10.0),
        ),
        max_multiplier=_number(b, "max_multiplier", "performance_boost", low=1.0, high=10.0),
    )

    k = _section(raw, "caps")
    _check_keys(k, {"tier_caps_usd", "default_tier_cap_usd", "global_cap_usd"}, "caps")
    tier_caps = k["tier_caps_usd"]
    if not isinstance(tier_caps, Mapping):
        raise PolicyConfigError("caps.tier_caps_usd: expected a mapping tier -> USD")
    caps = Caps(
        tier_caps_usd=tuple(
            sorted((str(t), _number(tier_caps, t, "caps.tier_caps_usd")) for t in tier_caps)
        ),
        default_tier_cap_usd=_number(k, "default_tier_cap_usd", "caps"),
        global_cap_usd=_number(k, "global_cap_usd", "caps"),
    )

    rnd = _section(raw, "rounding")
    _check_keys(rnd, {"steps"}, "rounding")
    steps_raw = rnd["steps"]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise PolicyConfigError("rounding.steps: expected a non-empty list")
    steps = []
    for i, s in enumerate(steps_raw):
        where = f"rounding.steps[{i}]"
        if not isinstance(s, Mapping):
            raise PolicyConfigError(f"{where}: expected a mapping")
        _check_keys(s, {"from_usd", "step_usd"}, where)
        steps.append(RoundingStep(_number(s, "from_usd", where),
                                  _number(s, "step_usd", where, low=0.01)))
    if steps[0].from_usd != 0.0:
        raise PolicyConfigError("rounding.steps: the first band must start at 0")
    for prev, cur in zip(steps, steps[1:], strict=False):
        if cur.from_usd <= prev.from_usd:
            raise PolicyConfigError("rounding.steps: from_usd must increase strictly")
    for s in steps:
        # Monotone rounding needs each band start to sit on its own grid: then an
        # amount just below a band start rounds below it and one at/above rounds to
        # at least the start.
        if not _is_multiple(s.from_usd, s.step_usd):
            raise PolicyConfigError(
                f"rounding.steps: from_usd {s.from_usd} is not a multiple of step_usd "
                f"{s.step_usd}"
            )

    g = _section(raw, "growth")
    _check_keys(g, {"max_relative_increase", "max_absolute_increase_usd",
                    "first_assessment_max_usd"}, "growth")
    growth = GrowthLimit(
        max_relative_increase=_number(g, "max_relative_increase", "growth", high=100.0),
        max_absolute_increase_usd=_number(g, "max_absolute_increase_usd", "growth"),
        first_assessment_max_usd=_number(g, "first_assessment_max_usd", "growth",
                                         allow_none=True),
    )

    return Policy(
        name=name,
        policy_semver=semver,
        eligibility=eligibility,
        risk_grades=tuple(bands),
        capacity=capacity,
        expected_loss=expected_loss,
        performance_boost=boost,
        caps=caps,
        rounding=tuple(steps),
        growth=growth,
        source=source,
    )


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9


# --------------------------------------------------------------------------- applying


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


# No supplier trades more than this; bounding inputs keeps every product finite
# (0 x inf would be NaN) without changing any realistic amount.
MAX_INPUT_VALUE = 1e15


def _bounded_amount(values: np.ndarray) -> np.ndarray:
    """Null -> 0, negative -> 0, above MAX_INPUT_VALUE (or +inf) -> MAX_INPUT_VALUE."""
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=MAX_INPUT_VALUE, neginf=0.0),
                   0.0, MAX_INPUT_VALUE)


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


def assign_risk_grades(probability: np.ndarray, bands: tuple[RiskGradeBand, ...]) -> np.ndarray:
    """Band label per probability: [previous bound, max_probability); null -> "NR"."""
    bounds = np.array([b.max_probability for b in bands])
    labels = np.array([b.grade for b in bands], dtype=object)
    idx = np.searchsorted(bounds, np.nan_to_num(probability, nan=0.0), side="right")
    idx = np.clip(idx, 0, len(bands) - 1)
    grades = labels[idx]
    grades[np.isnan(probability)] = UNRATED_GRADE
    return grades


def _validate_input(scored: pd.DataFrame, previous_amounts: pd.Series | None) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in scored.columns]
    if missing:
        raise ValueError(f"apply_policy: scored frame lacks column(s) {missing}")
    ids = scored["supplier_id"]
    if ids.isna().any():
        raise ValueError("apply_policy: supplier_id must not be null")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise ValueError(
            f"apply_policy: supplier_id {dup!r} appears more than once; pass one row per "
            "supplier for one as_of_date"
        )
    p = _numeric(scored, "breach_probability_6m")
    bad = ~np.isnan(p) & ((p < 0) | (p > 1))
    if bad.any():
        raise ValueError(
            "apply_policy: breach_probability_6m must lie in [0, 1]; got "
            f"{p[bad][0]!r} for supplier {ids.to_numpy()[bad][0]!r}"
        )
    if previous_amounts is not None and previous_amounts.index.duplicated().any():
        raise ValueError("apply_policy: previous_amounts has duplicate supplier_id")


def apply_policy(
    scored: pd.DataFrame,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
    *,
    include_components: bool = False,
) -> pd.DataFrame:
    """Eligibility, risk grade and Trade Assurance Amount for one month of suppliers.

    ``scored``: one row per supplier (see ``REQUIRED_COLUMNS``/``OPTIONAL_COLUMNS``;
    nulls are allowed everywhere except supplier_id). ``previous_amounts``: last month's
    published amount indexed by supplier_id (missing or null: first assessment).
    Returns a copy of ``scored`` with ``DECISION_COLUMNS`` added; with
    ``include_components`` also the intermediate amounts (``policy_*`` columns) that
    explain the result. Raises ``ValueError`` for structurally bad input (missing
    column, duplicate supplier, probability outside [0, 1]).
    """
    _validate_input(scored, previous_amounts)
    n = len(scored)
    elig = policy.eligibility
    p = _numeric(scored, "breach_probability_6m")

    # -- eligibility: each failing rule is a reason; null never passes a rule.
    opted_in = true_flags(scored, "opted_in")
    tiers = _strings(scored, "membership_tier")
    tiers = np.array([UNKNOWN_TIER if t is None else t for t in tiers], dtype=object)
    countries = _strings(scored, "country")
    tenure = _numeric(scored, "tenure_months")
    orders = _bounded_amount(_numeric(scored, "orders_6m"))

    fails: list[tuple[str, np.ndarray]] = [
        (NOT_OPTED_IN, ~opted_in if elig.require_opt_in else np.zeros(n, bool)),
        (TIER_NOT_ELIGIBLE, ~np.isin(tiers, list(elig.eligible_tiers))),
        (
            COUNTRY_NOT_ENABLED,
            np.zeros(n, bool)
            if elig.enabled_countries is None
            else ~np.isin(countries, list(elig.enabled_countries)),
        ),
        # NaN >= x is False, so a null tenure fails.
        (HISTORY_TOO_SHORT, ~(tenure >= elig.min_tenure_months)),
        (INSUFFICIENT_ORDERS, ~(orders >= elig.min_orders_6m)),
        (RISK_NOT_SCORED, np.isnan(p)),
        (RISK_ABOVE_CEILING, p > elig.max_breach_probability),
    ]
    eligible = np.ones(n, bool)
    for _, failing in fails:
        eligible &= ~failing
    reasons = [[code for code, failing in fails if failing[i]] for i in range(n)]

    # -- amount, computed for everyone then zeroed for the ineligible.
    cap_rules = policy.capacity
    assured = _bounded_amount(_numeric(scored, "assured_deal_value_12m_usd"))
    deal = _bounded_amount(_numeric(scored, "deal_value_12m_usd"))
    fallback = cap_rules.fallback_deal_value_share * deal
    volume = np.maximum(assured, fallback)
    base = cap_rules.base_share_of_volume * volume

    el = policy.expected_loss
    expected_fees = (
        el.fee_rate * volume * el.horizon_months / 12.0
        + el.fee_per_order_usd * el.assured_order_share * orders * el.horizon_months / 6.0
    )
    # p * LGD can underflow to 0 for a tiny p: that means no expected loss, no limit.
    # (A null p never reaches an amount: the supplier is ineligible.)
    expected_loss_rate = np.nan_to_num(p, nan=1.0) * el.loss_given_breach
    has_loss = expected_loss_rate > 0
    with np.errstate(over="ignore"):  # a tiny rate overflows to inf: again no limit
        loss_limit = np.where(
            has_loss,
            el.target_loss_ratio * expected_fees / np.where(has_loss, expected_loss_rate, 1.0),
            np.inf,
        )
    risk_adjusted = np.minimum(base, loss_limit)

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
        [tier_cap_map.get(t, policy.caps.default_tier_cap_usd) for t in tiers], dtype="float64"
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

    # -- drivers: why an eligible amount is what it is (empty for the ineligible).
    driver_flags: list[tuple[str, np.ndarray]] = [
        (CAPACITY_FROM_DEAL_VALUE, fallback > assured),
        (NO_TRADING_CAPACITY, volume <= 0),
        (RISK_REDUCED, loss_limit < base),
        (REVIEW_BOOST, review_ok),
        (ON_TIME_BOOST, on_time_ok),
        (BOOST_LIMITED, raw_boost > boost),
        (TIER_CAPPED, (tier_cap < boosted) & (tier_cap <= policy.caps.global_cap_usd)),
        (CAPPED, (policy.caps.global_cap_usd < boosted) & (policy.caps.global_cap_usd < tier_cap)),
        (GROWTH_LIMITED, has_previous & (growth_limit < capped)),
        (FIRST_ASSESSMENT_LIMITED, ~has_previous & (growth_limit < capped)),
        (BELOW_MINIMUM_STEP, (limited > 0) & (amount == 0)),
    ]
    drivers = [
        [code for code, flag in driver_flags if flag[i]] if eligible[i] else []
        for i in range(n)
    ]

    out = scored.copy()
    out["eligible"] = eligible
    out["ineligible_reasons"] = reasons
    out["risk_grade"] = assign_risk_grades(p, policy.risk_grades)
    out["trade_assurance_amount_usd"] = amount.astype("float64")
    out["amount_drivers"] = drivers
    if include_components:
        out["policy_volume_basis_usd"] = volume
        out["policy_capacity_base_usd"] = base
        out["policy_expected_fees_usd"] = expected_fees
        out["policy_loss_limit_usd"] = loss_limit
        out["policy_boost_multiplier"] = boost
        out["policy_cap_usd"] = np.minimum(tier_cap, policy.caps.global_cap_usd)
        out["policy_growth_limit_usd"] = growth_limit
    return out
