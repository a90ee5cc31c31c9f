"""The policy configuration: validated, immutable, versioned by content.

A policy is a YAML file (``models/policies/*.yaml``). The top-level key ``formula``
says which formula applies: ``v1`` (breach probability; the default when the key is
absent, so old files keep loading with their old ``policy_version``) or ``v2`` (loss
rate and default probability). Unknown keys are rejected at every level, so a typo
never silently means "default". The formulas are documented in ``models/policy/v1.py``
and ``models/policy/v2.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from models.policy.common import UNRATED_GRADE

if TYPE_CHECKING:
    import pandas as pd

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
DEFAULT_POLICY_PATH = POLICIES_DIR / "default.yaml"
V1_POLICY_PATH = POLICIES_DIR / "v1.yaml"

FORMULA_V1 = "v1"
FORMULA_V2 = "v2"
FORMULAS: tuple[str, ...] = (FORMULA_V1, FORMULA_V2)


class PolicyConfigError(ValueError):
    """A policy configuration that cannot be used; the message names the key."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CommonEligibility:
    """The rules both formulas share (they differ in the risk ceilings)."""

    require_opt_in: bool
    eligible_tiers: tuple[str, ...]
    enabled_countries: tuple[str, ...] | None  # None: every country
    min_tenure_months: float
    min_orders_6m: float


@dataclass(frozen=True)
class EligibilityRules(CommonEligibility):
    """v1: one ceiling, on the six-month breach probability."""

    max_breach_probability: float


@dataclass(frozen=True)
class EligibilityRulesV2(CommonEligibility):
    """v2: ceilings on the loss rate and on the default probability."""

    max_loss_rate: float
    max_default_probability: float


@dataclass(frozen=True)
class RiskGradeBand:
    """v1: a grade for breach probabilities in [previous bound, max_probability)."""

    grade: str
    max_probability: float  # exclusive upper bound, except the last band which is 1.0


@dataclass(frozen=True)
class RiskGradeBandV2:
    """v2: a grade per quantity, each over [previous bound, bound); the published grade
    is the worse of the loss-rate grade and the default-probability grade."""

    grade: str
    max_loss_rate: float | None  # None only in the last band: no upper bound
    max_default_probability: float  # the last band's is 1.0


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
    # Days after the as-of date from which a lower amount binds new orders (0: at once).
    # Optional in the YAML; left out of the normalised form when 0, so files written before
    # it keep their policy_version.
    decrease_notice_days: int = 0


@dataclass(frozen=True)
class Policy:
    """A validated, immutable limit policy. Build with ``from_yaml``/``from_dict``."""

    name: str
    policy_semver: str
    eligibility: EligibilityRules | EligibilityRulesV2
    risk_grades: tuple[RiskGradeBand, ...] | tuple[RiskGradeBandV2, ...]
    capacity: CapacityRules
    expected_loss: ExpectedLossRules
    performance_boost: PerformanceBoost
    caps: Caps
    rounding: tuple[RoundingStep, ...]
    growth: GrowthLimit
    formula: str = FORMULA_V1
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
        out: dict[str, Any] = {
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
        if not self.growth.decrease_notice_days:
            del out["growth"]["decrease_notice_days"]
        elig = out["eligibility"]
        elig["eligible_tiers"] = list(elig["eligible_tiers"])
        if elig["enabled_countries"] is not None:
            elig["enabled_countries"] = list(elig["enabled_countries"])
        if self.formula != FORMULA_V1:
            # v1 leaves the key out: its files predate it and keep their content hash.
            out["formula"] = self.formula
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
        from models.policy.decide import apply_policy  # the formulas import this module

        return apply_policy(scored, self, previous_amounts)



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
    formula = raw.get("formula", FORMULA_V1)
    if formula not in FORMULAS:
        raise PolicyConfigError(f"formula: expected one of {list(FORMULAS)}, got {formula!r}")
    _check_keys(raw, _POLICY_KEYS | ({"formula"} if "formula" in raw else set()), "policy")
    name = raw["name"]
    if not isinstance(name, str) or not name or any(c in name for c in " +"):
        raise PolicyConfigError("name: expected a non-empty string without spaces or '+'")
    semver = str(raw["version"])

    if formula == FORMULA_V1:
        eligibility: EligibilityRules | EligibilityRulesV2 = EligibilityRules(
            **_common_eligibility(raw, {"max_breach_probability"}),
            max_breach_probability=_number(
                raw["eligibility"], "max_breach_probability", "eligibility", high=1.0
            ),
        )
        bands: tuple[RiskGradeBand, ...] | tuple[RiskGradeBandV2, ...] = _v1_grades(raw)
    else:
        e = raw["eligibility"]
        eligibility = EligibilityRulesV2(
            **_common_eligibility(raw, {"max_loss_rate", "max_default_probability"}),
            max_loss_rate=_number(e, "max_loss_rate", "eligibility"),
            max_default_probability=_number(e, "max_default_probability", "eligibility",
                                            high=1.0),
        )
        bands = _v2_grades(raw)

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
                    "first_assessment_max_usd"} | ({NOTICE_KEY} & set(g)), "growth")
    growth = GrowthLimit(
        max_relative_increase=_number(g, "max_relative_increase", "growth", high=100.0),
        max_absolute_increase_usd=_number(g, "max_absolute_increase_usd", "growth"),
        first_assessment_max_usd=_number(g, "first_assessment_max_usd", "growth",
                                         allow_none=True),
        decrease_notice_days=_notice_days(g.get(NOTICE_KEY, 0)),
    )

    policy = Policy(
        name=name,
        policy_semver=semver,
        eligibility=eligibility,
        risk_grades=bands,
        capacity=capacity,
        expected_loss=expected_loss,
        performance_boost=boost,
        caps=caps,
        rounding=tuple(steps),
        growth=growth,
        formula=formula,
        source=source,
    )
    if isinstance(eligibility, EligibilityRulesV2):
        _check_v2_break_even(eligibility, expected_loss)
    return policy


NOTICE_KEY = "decrease_notice_days"
# A notice ends by the next month end (February has 28 days), so a published row never has
# to carry two pending decreases: the previous month's notice has always run out.
MAX_NOTICE_DAYS = 28


def _notice_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not 0 <= value <= MAX_NOTICE_DAYS:
        raise PolicyConfigError(
            f"growth.{NOTICE_KEY}: expected a whole number of days from 0 to {MAX_NOTICE_DAYS}, "
            f"got {value!r}; a notice must end by the next month end, so each published row "
            "carries at most one pending decrease"
        )
    return int(value)


def _common_eligibility(raw: Mapping[str, Any], ceilings: set[str]) -> dict[str, Any]:
    """The shared eligibility rules as keyword arguments; ``ceilings``: the formula's
    own keys in the section (checked for presence here, parsed by the caller)."""
    e = _section(raw, "eligibility")
    _check_keys(
        e,
        {"require_opt_in", "eligible_tiers", "enabled_countries", "min_tenure_months",
         "min_orders_6m"} | ceilings,
        "eligibility",
    )
    if not isinstance(e["require_opt_in"], bool):
        raise PolicyConfigError("eligibility.require_opt_in: expected true or false")
    countries = e["enabled_countries"]
    return dict(
        require_opt_in=e["require_opt_in"],
        eligible_tiers=_string_list(e["eligible_tiers"], "eligibility.eligible_tiers"),
        enabled_countries=None
        if countries is None
        else _string_list(countries, "eligibility.enabled_countries"),
        min_tenure_months=_number(e, "min_tenure_months", "eligibility"),
        min_orders_6m=_number(e, "min_orders_6m", "eligibility"),
    )


def _grade_entries(raw: Mapping[str, Any], keys: set[str]) -> list[tuple[str, Mapping, str]]:
    """(grade, band mapping, where) per risk grade band, keys and grade names checked."""
    bands_raw = raw["risk_grades"]
    if not isinstance(bands_raw, list) or not bands_raw:
        raise PolicyConfigError("risk_grades: expected a non-empty list")
    entries = []
    for i, band in enumerate(bands_raw):
        where = f"risk_grades[{i}]"
        if not isinstance(band, Mapping):
            raise PolicyConfigError(f"{where}: expected a mapping")
        _check_keys(band, {"grade"} | keys, where)
        if not isinstance(band["grade"], str) or not band["grade"]:
            raise PolicyConfigError(f"{where}.grade: expected a non-empty string")
        entries.append((band["grade"], band, where))
    grades = [g for g, _, _ in entries]
    if len(set(grades)) != len(grades) or UNRATED_GRADE in grades:
        raise PolicyConfigError(f"risk_grades: grades must be unique and not {UNRATED_GRADE!r}")
    return entries


def _check_increasing(bounds: list[float], key: str, last: float, last_text: str) -> None:
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)) or bounds[-1] != last:
        raise PolicyConfigError(
            f"risk_grades: {key} must increase strictly and end at {last_text}"
        )


def _v1_grades(raw: Mapping[str, Any]) -> tuple[RiskGradeBand, ...]:
    bands = tuple(
        RiskGradeBand(grade, _number(band, "max_probability", where, high=1.0))
        for grade, band, where in _grade_entries(raw, {"max_probability"})
    )
    _check_increasing([b.max_probability for b in bands], "max_probability", 1.0, "1.0")
    return bands


def _v2_grades(raw: Mapping[str, Any]) -> tuple[RiskGradeBandV2, ...]:
    entries = _grade_entries(raw, {"max_loss_rate", "max_default_probability"})
    bands = tuple(
        RiskGradeBandV2(
            grade,
            _number(band, "max_loss_rate", where, allow_none=True),
            _number(band, "max_default_probability", where, high=1.0),
        )
        for grade, band, where in entries
    )
    loss_bounds = [math.inf if b.max_loss_rate is None else b.max_loss_rate for b in bands]
    if any(b is None for b in [b.max_loss_rate for b in bands[:-1]]):
        raise PolicyConfigError("risk_grades: only the last band's max_loss_rate may be null")
    _check_increasing(loss_bounds, "max_loss_rate", math.inf, "null (no bound)")
    _check_increasing(
        [b.max_default_probability for b in bands], "max_default_probability", 1.0, "1.0"
    )
    return bands


def _check_v2_break_even(elig: EligibilityRulesV2, el: ExpectedLossRules) -> None:
    """The loss-rate ceiling may not exceed the break-even loss rate
    ``target_loss_ratio x fee_rate / loss_given_breach``.

    Above it the expected loss on each covered dollar (``loss_rate x LGD``) exceeds the
    share of its fee the target allows, so more volume would *lower* the expected-loss
    limit: a larger supplier would get less. At or below it the limit is non-decreasing
    in volume, which is what lets v2 promise that size is never a risk.
    """
    break_even = el.target_loss_ratio * el.fee_rate / el.loss_given_breach
    if elig.max_loss_rate > break_even * (1 + 1e-12):
        raise PolicyConfigError(
            f"eligibility.max_loss_rate: {elig.max_loss_rate} is above the break-even loss "
            f"rate target_loss_ratio x fee_rate / loss_given_breach = {break_even:.6g}; "
            "above it a larger supplier would get a smaller amount"
        )


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9
