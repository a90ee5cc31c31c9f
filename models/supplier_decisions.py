"""One month's decision per supplier: risk quantities, reasons, eligibility and amount.

Joins the two separate decisions of docs/design.md §7 (risk from the models, amount from the
policy) into the rows of `published.supplier_scores` (without the run metadata). Three
models score each supplier (``RiskModels``):

* the **loss rate** (refunds per dollar of order value, per coverage) and the **default
  probability** (the supplier stops fulfilling): the quantities the amount rests on;
* the **breach probability** (any buyer-won dispute), published as information only.

Reason codes come from the models that drive the decision: the features that raise the
loss rate or the default probability the most, ranked together by their contribution
(both in log units: log rate and log-odds, which for small probabilities is the log too,
so a contribution c multiplies the quantity by about e^c). Size features can only lower
those two models' outputs (``models.model_features.SIZE_FEATURES``), so trading a lot is
never a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts.outcomes import OUTCOME_DEFINITION_COLUMN
from models.loss_rate import COVERAGE_RATE_COLUMNS, LOSS_RATE_COLUMN, LossRateModel
from models.model_features import ModelFeature
from models.policy import Policy, apply_policy
from models.reason_codes import top_reason_codes
from models.scoring import BreachRiskModel
from models.training import model_outcome_definition

RISK_REASON_COUNT = 3
DEFAULT_PROBABILITY_COLUMN = "default_probability_6m"

SCORE_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("supplier_id", pa.string()),
        ("eligible", pa.bool_()),
        ("ineligible_reasons", pa.list_(pa.string())),
        ("breach_probability_6m", pa.float64()),
        ("risk_grade", pa.string()),
        ("trade_assurance_amount_usd", pa.float64()),
        ("reason_codes", pa.list_(pa.string())),
        ("amount_drivers", pa.list_(pa.string())),
        ("model_version", pa.string()),
        ("policy_version", pa.string()),
        (LOSS_RATE_COLUMN, pa.float64()),
        (COVERAGE_RATE_COLUMNS["pre_shipment"], pa.float64()),
        (COVERAGE_RATE_COLUMNS["post_delivery"], pa.float64()),
        (DEFAULT_PROBABILITY_COLUMN, pa.float64()),
        ("loss_rate_model_version", pa.string()),
        ("default_model_version", pa.string()),
        # Decrease notice (policy ``growth.decrease_notice_days``): null when the amount binds at once.
        ("amount_binding_from", pa.date32()),
        ("amount_before_binding_usd", pa.float64()),
        # The analyst override in force for the supplier this month (models/overrides.py); null: none.
        ("override_id", pa.string()),
        ("override_action", pa.string()),
        ("override_reason", pa.string()),
        (OUTCOME_DEFINITION_COLUMN, pa.string()),
    ]
)


@dataclass(frozen=True)
class RiskModels:
    """The three registered models a month is scored with, and their version strings."""

    breach: BreachRiskModel
    breach_version: str
    loss_rate: LossRateModel
    loss_rate_version: str
    default: BreachRiskModel
    default_version: str

    @property
    def outcome_definition(self) -> str:
        """The outcome definition the models learned (``data_contracts.outcomes``); when they
        learned different ones (a champion kept from an earlier landing zone), each is named."""
        learned = {
            "loss_rate": model_outcome_definition(self.loss_rate),
            "default": model_outcome_definition(self.default),
            "breach": model_outcome_definition(self.breach),
        }
        if len(set(learned.values())) == 1:
            return learned["loss_rate"]
        return "; ".join(f"{name}: {definition}" for name, definition in learned.items())

    def assess(self, features: pd.DataFrame, k: int = RISK_REASON_COUNT) -> tuple[pd.DataFrame, list[list[str]]]:
        """The published risk columns (same index as ``features``) and, per row, up to ``k``
        codes of what raises the loss rate or the default probability most. Each model's
        input matrix is built once and serves its prediction and its contributions."""
        loss_design = self.loss_rate.design_matrix(features)
        default_design = self.default.design_matrix(features)
        components, loss_contributions = self.loss_rate.component_rates_and_contributions(loss_design)
        scored = self.loss_rate.rates_frame(components, features.index)
        default_probability, default_contributions = self.default.proba_and_contributions_from_design(default_design)
        scored[DEFAULT_PROBABILITY_COLUMN] = default_probability
        scored["breach_probability_6m"] = self.breach.predict_proba(features)
        if len(features) == 0:
            return scored, []
        n_loss, n_default = len(self.loss_rate.features), len(self.default.features)
        contributions = np.hstack([loss_contributions[:, :n_loss], np.asarray(default_contributions)[:, :n_default]])
        design = pd.concat([loss_design.add_prefix("loss:"), default_design.add_prefix("default:")], axis=1)
        features_list = [
            *[_prefixed(f, "loss:") for f in self.loss_rate.features],
            *[_prefixed(f, "default:") for f in self.default.features],
        ]
        medians = {f"loss:{name}": v for name, v in self.loss_rate.medians.items()} | {
            f"default:{name}": v for name, v in self.default.medians.items()
        }
        return scored, top_reason_codes(contributions, design, features_list, medians, k=k)


def _prefixed(feature: ModelFeature, prefix: str) -> ModelFeature:
    """The feature under a prefixed column name (two models' inputs side by side)."""
    return ModelFeature(name=f"{prefix}{feature.name}", risk_direction=feature.risk_direction,
                        categorical=feature.categorical)


def decide_month(
    features: pd.DataFrame,
    models: RiskModels,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
) -> pa.Table:
    """Score one month of suppliers and apply the limit policy.

    `reason_codes` lists the factors that raise the supplier's loss rate or default
    probability most, then every eligibility rule it fails, so one column answers "why
    this amount?".
    """
    months = features["as_of_date"].unique()
    if len(months) > 1:
        raise ValueError(f"decide_month takes one month of features, got {len(months)}")
    if features.empty:
        return SCORE_SCHEMA.empty_table()
    features = features.sort_values("supplier_id", kind="mergesort").reset_index(drop=True)
    risk, risk_codes = models.assess(features)
    decided = apply_policy(pd.concat([features, risk], axis=1), policy, previous_amounts)
    reason_codes = [
        list(dict.fromkeys([*codes, *ineligible]))
        for codes, ineligible in zip(risk_codes, decided["ineligible_reasons"], strict=True)
    ]
    as_of_date: date = pd.Timestamp(months[0]).date()
    n = len(decided)
    columns = {
        "as_of_date": [as_of_date] * n,
        "supplier_id": decided["supplier_id"].astype(str).tolist(),
        "eligible": decided["eligible"].astype(bool).tolist(),
        "ineligible_reasons": [list(reasons) for reasons in decided["ineligible_reasons"]],
        "breach_probability_6m": risk["breach_probability_6m"].astype(float).tolist(),
        "risk_grade": decided["risk_grade"].astype(str).tolist(),
        "trade_assurance_amount_usd": decided["trade_assurance_amount_usd"].astype(float).tolist(),
        "reason_codes": reason_codes,
        "amount_drivers": [list(drivers) for drivers in decided["amount_drivers"]],
        "model_version": [models.breach_version] * n,
        "policy_version": [policy.version] * n,
        LOSS_RATE_COLUMN: risk[LOSS_RATE_COLUMN].astype(float).tolist(),
        **{column: risk[column].astype(float).tolist() for column in COVERAGE_RATE_COLUMNS.values()},
        DEFAULT_PROBABILITY_COLUMN: risk[DEFAULT_PROBABILITY_COLUMN].astype(float).tolist(),
        "loss_rate_model_version": [models.loss_rate_version] * n,
        "default_model_version": [models.default_version] * n,
        "amount_binding_from": decided["amount_binding_from"].tolist(),
        "amount_before_binding_usd": [
            None if pd.isna(value) else float(value) for value in decided["amount_before_binding_usd"]
        ],
        # Overrides apply after the policy, in the scoring step (models.overrides.apply_overrides).
        "override_id": [None] * n,
        "override_action": [None] * n,
        "override_reason": [None] * n,
        OUTCOME_DEFINITION_COLUMN: [models.outcome_definition] * n,
    }
    return pa.table(columns, schema=SCORE_SCHEMA)
