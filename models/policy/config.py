"""The policy configuration: validated, immutable, versioned by content.

A policy is a YAML file (``models/policies/*.yaml``). The top-level key ``formula``
says which formula applies: ``v1`` (breach probability; the default when the key is
absent, so old files keep loading with their old ``policy_version``) or ``v2`` (loss
rate and default probability). Unknown keys are rejected at every level, so a typo
never silently means "default". The formulas are documented in ``models/policy/v1.py``
and ``models/policy/v2.py``.

The rules are pydantic models (the sections are pydantic dataclasses, so the formulas
read plain frozen dataclasses); a file that breaks one fails with one line naming the
file, the key path and what is allowed. The same models give the JSON Schema editors use
(``python -m models.policy --schema``; committed as ``docs/policy.schema.json``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from models.config_errors import one_line
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


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "policy.schema.json"


# --------------------------------------------------------------------------- sections
# Each section is a frozen pydantic dataclass: validated when built (from a file or by
# dataclasses.replace), read by the formulas as a plain dataclass. Numbers are strict (true
# or "lots" is not a number) and stored as floats, which the content hash relies on.

SECTION = ConfigDict(extra="forbid")


def Number(description: str, low: float = 0.0, high: float | None = None) -> Any:  # noqa: N802 - a type
    """A number in [low, high] (no upper bound when ``high`` is None)."""
    return Annotated[float, Field(ge=low, le=high, strict=True, description=description)]


Probability = Number("a probability or share, from 0 to 1", high=1.0)
Multiplier = Number("a multiplier, from 1 to 10", low=1.0, high=10.0)


def _sorted_unique(values: list[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))


@pydantic_dataclass(frozen=True, config=SECTION)
class CommonEligibility:
    """The rules both formulas share (they differ in the risk ceilings)."""

    require_opt_in: Annotated[bool, Field(strict=True, description="a supplier must have opted in (null opt-in: not)")]
    eligible_tiers: Annotated[list[str], Field(description="membership tiers that may be covered")]
    enabled_countries: Annotated[list[str] | None, Field(
        description="ISO 3166-1 alpha-2 codes where the programme is live; null: every country")]
    min_tenure_months: Number("months since joining")
    min_orders_6m: Number("orders in the last six months")

    # Sorted and deduplicated: the order of a list in the file is not a parameter.
    _tiers = field_validator("eligible_tiers")(lambda v: _sorted_unique(v))
    _countries = field_validator("enabled_countries")(lambda v: None if v is None else _sorted_unique(v))


@pydantic_dataclass(frozen=True, config=SECTION)
class EligibilityRules(CommonEligibility):
    """v1: one ceiling, on the six-month breach probability."""

    max_breach_probability: Number("above it a supplier is not covered (RISK_ABOVE_CEILING)", high=1.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class EligibilityRulesV2(CommonEligibility):
    """v2: ceilings on the loss rate and on the default probability."""

    max_loss_rate: Number("refunds per dollar of order value above which a supplier is not covered; at most the "
                          "break-even loss rate target_loss_ratio x fee_rate / loss_given_breach")
    max_default_probability: Number("six-month default probability above which a supplier is not covered", high=1.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class RiskGradeBand:
    """v1: a grade for breach probabilities in [previous bound, max_probability)."""

    grade: Annotated[str, Field(min_length=1, strict=True, description="the grade's label, e.g. A")]
    # exclusive upper bound, except the last band which is 1.0
    max_probability: Number("upper bound (exclusive) of the band's breach probability; the last band's is 1.0",
                            high=1.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class RiskGradeBandV2:
    """v2: a grade per quantity, each over [previous bound, bound); the published grade
    is the worse of the loss-rate grade and the default-probability grade."""

    grade: Annotated[str, Field(min_length=1, strict=True, description="the grade's label, e.g. A")]
    max_loss_rate: Annotated[float | None, Field(ge=0.0, strict=True, description=(
        "upper bound (exclusive) of the band's loss rate; null only in the last band: no bound"))]
    max_default_probability: Number("upper bound (exclusive) of the band's default probability; the last band's "
                                    "is 1.0", high=1.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class CapacityRules:
    fallback_deal_value_share: Number("share of 12-month deal value credited when assured deal value is lower",
                                      high=1.0)
    base_share_of_volume: Number("base amount as a share of the covered volume", high=10.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class ExpectedLossRules:
    horizon_months: Number("months of trade the amount covers", low=1.0, high=60.0)
    # LGD > 0: a zero would make every supplier riskless and the limit meaningless.
    loss_given_breach: Number("share of a covered loss not recovered from the supplier", low=1e-6, high=1.0)
    target_loss_ratio: Number("expected loss accepted per dollar of fee income", high=100.0)
    fee_rate: Number("programme fee per dollar of covered order value", high=1.0)
    fee_per_order_usd: Number("programme fee per covered order, USD")
    assured_order_share: Number("share of orders_6m assumed covered (fee per order)", high=1.0)


@pydantic_dataclass(frozen=True, config=SECTION)
class ReviewBoost:
    min_review_count_6m: Number("reviews in the last six months")
    min_review_mean_6m: Number("mean review score, 1 to 5", low=1.0, high=5.0)
    multiplier: Multiplier


@pydantic_dataclass(frozen=True, config=SECTION)
class OnTimeBoost:
    min_orders_6m: Number("orders in the last six months")
    min_on_time_shipment_rate_6m: Number("share of orders shipped on time", high=1.0)
    multiplier: Multiplier


@pydantic_dataclass(frozen=True, config=SECTION)
class PerformanceBoost:
    review: ReviewBoost
    on_time: OnTimeBoost
    max_multiplier: Multiplier


@pydantic_dataclass(frozen=True, config=SECTION)
class Caps:
    # A mapping tier -> USD in the file; sorted (tier, cap) pairs here, so the policy hashes.
    tier_caps_usd: Annotated[dict[str, Number("USD")], Field(description="cap per membership tier, USD")]
    default_tier_cap_usd: Number("cap for an eligible tier not listed in tier_caps_usd, USD")
    global_cap_usd: Number("cap for every supplier, USD")

    _pairs = field_validator("tier_caps_usd")(lambda v: tuple(sorted(v.items())))


@pydantic_dataclass(frozen=True, config=SECTION)
class RoundingStep:
    from_usd: Number("where the band starts, USD; a multiple of its step_usd")
    step_usd: Number("amounts in the band are rounded down to a multiple of this, USD", low=0.01)


NOTICE_KEY = "decrease_notice_days"
# A notice ends by the next month end (February has 28 days), so a published row never has
# to carry two pending decreases: the previous month's notice has always run out.
MAX_NOTICE_DAYS = 28


@pydantic_dataclass(frozen=True, config=SECTION)
class GrowthLimit:
    max_relative_increase: Number("a rise is at most previous x this (or max_absolute_increase_usd)", high=100.0)
    max_absolute_increase_usd: Number("a rise is at most this (or the relative increase), USD")
    first_assessment_max_usd: Annotated[float | None, Field(ge=0.0, strict=True, description=(
        "limit for a supplier with no previous amount, USD; null: no limit beyond the caps"))]
    # Days after the as-of date from which a lower amount binds new orders (0: at once).
    # Optional in the YAML; left out of the normalised form when 0, so files written before
    # it keep their policy_version.
    decrease_notice_days: Annotated[int, Field(ge=0, le=MAX_NOTICE_DAYS, description=(
        "days after the month end before a lower amount binds new orders (0: at once)"))] = 0

    @field_validator(NOTICE_KEY, mode="before")
    @classmethod
    def _whole_days(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                or not 0 <= value <= MAX_NOTICE_DAYS:
            raise ValueError(
                f"expected a whole number of days from 0 to {MAX_NOTICE_DAYS}, got {value!r}; a notice must end "
                "by the next month end, so each published row carries at most one pending decrease"
            )
        return int(value)


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


# --------------------------------------------------------------------------- files


class Rounding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: Annotated[tuple[RoundingStep, ...], Field(min_length=1, description=(
        "bands by from_usd: amounts are rounded DOWN to the step of the band they fall in"))]

    @field_validator("steps")
    @classmethod
    def _monotone(cls, steps: tuple[RoundingStep, ...]) -> tuple[RoundingStep, ...]:
        if steps[0].from_usd != 0.0:
            raise ValueError("the first band must start at 0")
        if any(cur.from_usd <= prev.from_usd for prev, cur in zip(steps, steps[1:], strict=False)):
            raise ValueError("from_usd must increase strictly")
        for s in steps:
            # Monotone rounding needs each band start to sit on its own grid: then an
            # amount just below a band start rounds below it and one at/above rounds to
            # at least the start.
            if not _is_multiple(s.from_usd, s.step_usd):
                raise ValueError(f"from_usd {s.from_usd} is not a multiple of step_usd {s.step_usd}")
        return steps


class _PolicyFile(BaseModel):
    """What both formulas' files have."""

    model_config = ConfigDict(extra="forbid", title="Trade Assurance policy")

    name: Annotated[str, Field(strict=True, min_length=1, pattern=r"^[^ +]+$", description=(
        "the policy's name: the start of its policy_version '<name>-<version>+<content hash>'"))]
    version: Annotated[str, Field(description="the version people read, e.g. 2.1.0; bump it by hand")]
    capacity: CapacityRules
    expected_loss: ExpectedLossRules
    performance_boost: PerformanceBoost
    caps: Caps
    rounding: Rounding
    growth: GrowthLimit

    # YAML reads `version: 2` as a number: it is a label.
    _version = field_validator("version", mode="before")(lambda v: v if isinstance(v, str) else str(v))

    @field_validator("risk_grades", check_fields=False)
    @classmethod
    def _unique_grades(cls, bands: list) -> list:
        grades = [b.grade for b in bands]
        if len(set(grades)) != len(grades) or UNRATED_GRADE in grades:
            raise ValueError(f"grades must be unique and not {UNRATED_GRADE!r}")
        return bands


class PolicyFileV1(_PolicyFile):
    """Formula v1: breach probability (a file without ``formula`` is v1)."""

    model_config = ConfigDict(title="Trade Assurance policy, formula v1 (breach probability)")

    formula: Annotated[Literal["v1"], Field(description="v1: breach probability (the default when absent)")] = FORMULA_V1
    eligibility: EligibilityRules
    risk_grades: Annotated[list[RiskGradeBand], Field(min_length=1, description=(
        "bands of breach probability, [previous bound, max_probability), the last ending at 1.0"))]

    @field_validator("risk_grades")
    @classmethod
    def _bands(cls, bands: list[RiskGradeBand]) -> list[RiskGradeBand]:
        _check_increasing([b.max_probability for b in bands], "max_probability", 1.0, "1.0")
        return bands


class PolicyFileV2(_PolicyFile):
    """Formula v2: loss rate and default probability."""

    model_config = ConfigDict(title="Trade Assurance policy, formula v2 (loss rate and default probability)")

    formula: Annotated[Literal["v2"], Field(description="v2: loss rate and default probability")]
    eligibility: EligibilityRulesV2
    risk_grades: Annotated[list[RiskGradeBandV2], Field(min_length=1, description=(
        "bands per quantity, each [previous bound, bound); the last has max_loss_rate null and "
        "max_default_probability 1.0"))]

    @field_validator("risk_grades")
    @classmethod
    def _bands(cls, bands: list[RiskGradeBandV2]) -> list[RiskGradeBandV2]:
        if any(b.max_loss_rate is None for b in bands[:-1]):
            raise ValueError("only the last band's max_loss_rate may be null")
        loss_bounds = [math.inf if b.max_loss_rate is None else b.max_loss_rate for b in bands]
        _check_increasing(loss_bounds, "max_loss_rate", math.inf, "null (no bound)")
        _check_increasing([b.max_default_probability for b in bands], "max_default_probability", 1.0, "1.0")
        return bands

    @model_validator(mode="after")
    def _break_even(self) -> PolicyFileV2:
        _check_v2_break_even(self.eligibility, self.expected_loss)
        return self


def _formula_of(raw: Any) -> str:
    formula = raw.get("formula", FORMULA_V1) if isinstance(raw, Mapping) else getattr(raw, "formula", None)
    return formula if isinstance(formula, str) else repr(formula)


POLICY_FILE = TypeAdapter(Annotated[
    Annotated[PolicyFileV1, Tag(FORMULA_V1)] | Annotated[PolicyFileV2, Tag(FORMULA_V2)],
    Discriminator(_formula_of, custom_error_type="formula",
                  custom_error_message=f"expected one of {list(FORMULAS)}"),
])


def _check_increasing(bounds: list[float], key: str, last: float, last_text: str) -> None:
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)) or bounds[-1] != last:
        raise ValueError(f"{key} must increase strictly and end at {last_text}")


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
        raise ValueError(
            f"eligibility.max_loss_rate: {elig.max_loss_rate} is above the break-even loss "
            f"rate target_loss_ratio x fee_rate / loss_given_breach = {break_even:.6g}; "
            "above it a larger supplier would get a smaller amount"
        )


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9


def _parse_policy(raw: Mapping[str, Any], source: str | None) -> Policy:
    try:
        parsed = POLICY_FILE.validate_python(raw)
    except ValidationError as exc:
        raise PolicyConfigError(_one_line(exc)) from None
    return Policy(
        name=parsed.name,
        policy_semver=parsed.version,
        eligibility=parsed.eligibility,
        risk_grades=tuple(parsed.risk_grades),
        capacity=parsed.capacity,
        expected_loss=parsed.expected_loss,
        performance_boost=parsed.performance_boost,
        caps=parsed.caps,
        rounding=parsed.rounding.steps,
        growth=parsed.growth,
        formula=parsed.formula,
        source=source,
    )


# --------------------------------------------------------------------------- messages

def _one_line(exc: ValidationError) -> str:
    return one_line(exc, lambda tag: _file_schema(tag or FORMULA_V1), root="policy", tags=FORMULAS,
                    special=_policy_special)


def _policy_special(error: Mapping[str, Any], loc: list) -> str | None:
    if error["type"] == "formula":
        return f"formula: expected one of {list(FORMULAS)}, got {error['input'].get('formula')!r}"
    if error["type"] == "string_pattern_mismatch" and loc == ["name"]:
        return f"name: expected a non-empty string without spaces or '+', got {error['input']!r}"
    return None


@functools.cache
def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file (either formula), for editors."""
    schema = POLICY_FILE.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Trade Assurance policy (models/policies/*.yaml)",
        "description": "Generated by `python -m models.policy --schema` from models/policy/config.py.",
        **schema,
    }


@functools.cache
def _file_schema(formula: str) -> dict[str, Any]:
    return (PolicyFileV1 if formula == FORMULA_V1 else PolicyFileV2).model_json_schema()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.policy",
                                     description="Check policy files, or print the JSON Schema of a policy file.")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema (docs/policy.schema.json)")
    parser.add_argument("files", nargs="*", type=Path, help="policy YAML files to check")
    args = parser.parse_args(argv)
    if args.schema:
        print(json.dumps(policy_json_schema(), indent=2))
    failed = False
    for path in args.files:
        try:
            print(f"{path}: {Policy.from_yaml(path).version}")
        except PolicyConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            failed = True
    return 2 if failed else 0
