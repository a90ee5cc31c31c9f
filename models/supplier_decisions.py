"""One month's decision per supplier: breach probability, reasons, eligibility and amount.

Joins the two separate decisions of DESIGN §7 (risk from the model, amount from the
policy) into the rows of `published.supplier_scores` (without the run metadata).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from models.policy import Policy, apply_policy
from models.scoring import BreachRiskModel

RISK_REASON_COUNT = 3

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
    ]
)


def decide_month(
    features: pd.DataFrame,
    model: BreachRiskModel,
    model_version: str,
    policy: Policy,
    previous_amounts: pd.Series | None = None,
) -> pa.Table:
    """Score one month of suppliers and apply the limit policy.

    `reason_codes` lists the factors that raise the supplier's risk most, then every
    eligibility rule it fails, so one column answers "why this amount?".
    """
    months = features["as_of_date"].unique()
    if len(months) > 1:
        raise ValueError(f"decide_month takes one month of features, got {len(months)}")
    if features.empty:
        return SCORE_SCHEMA.empty_table()
    features = features.sort_values("supplier_id", kind="mergesort").reset_index(drop=True)
    probability = model.predict_proba(features)
    risk_codes = model.reason_codes(features, k=RISK_REASON_COUNT)
    decided = apply_policy(features.assign(breach_probability_6m=probability), policy, previous_amounts)
    reason_codes = [
        list(dict.fromkeys([*risk, *ineligible])) for risk, ineligible in zip(risk_codes, decided["ineligible_reasons"], strict=True)
    ]
    as_of_date: date = pd.Timestamp(months[0]).date()
    columns = {
        "as_of_date": [as_of_date] * len(decided),
        "supplier_id": decided["supplier_id"].astype(str).tolist(),
        "eligible": decided["eligible"].astype(bool).tolist(),
        "ineligible_reasons": [list(reasons) for reasons in decided["ineligible_reasons"]],
        "breach_probability_6m": np.asarray(probability, dtype=float).tolist(),
        "risk_grade": decided["risk_grade"].astype(str).tolist(),
        "trade_assurance_amount_usd": decided["trade_assurance_amount_usd"].astype(float).tolist(),
        "reason_codes": reason_codes,
        "amount_drivers": [list(drivers) for drivers in decided["amount_drivers"]],
        "model_version": [model_version] * len(decided),
        "policy_version": [policy.version] * len(decided),
    }
    return pa.table(columns, schema=SCORE_SCHEMA)
