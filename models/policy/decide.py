"""The entry points: ``apply_policy`` dispatches to the policy's formula."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.policy.config import FORMULA_V1, FORMULA_V2, Policy
from models.policy.v1 import apply_v1
from models.policy.v2 import apply_v2

_FORMULAS = {FORMULA_V1: apply_v1, FORMULA_V2: apply_v2}


def apply_policy(
    scored: pd.DataFrame,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
    *,
    include_components: bool = False,
) -> pd.DataFrame:
    """Eligibility, risk grade and Trade Assurance Amount for one month of suppliers.

    ``scored``: one row per supplier with the columns the policy's formula reads (v1:
    ``models.policy.v1.REQUIRED_COLUMNS``, v2: ``models.policy.v2.REQUIRED_COLUMNS``;
    ``OPTIONAL_COLUMNS`` when present); nulls are allowed everywhere except supplier_id.
    ``previous_amounts``: last month's published amount indexed by supplier_id (missing
    or null: first assessment). Returns a copy of ``scored`` with ``DECISION_COLUMNS``
    added; with ``include_components`` also the intermediate amounts (``policy_*``
    columns) that explain the result. Raises ``ValueError`` for structurally bad input
    (missing column, duplicate supplier, risk value out of range).
    """
    return _FORMULAS[policy.formula](
        scored, policy, previous_amounts, include_components=include_components
    )


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
