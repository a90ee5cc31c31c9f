"""How each model vintage did as the outcomes of the months it scored matured.

Every published month is scored by its own vintage (``models/vintages.py``), trained only
on outcomes known at its as-of date, so each claim counted here was unknown to the model
that decided: the figures are out of sample. Per risk model and vintage, over the months it
scored: how many months and supplier-months have a complete six-month outcome yet, the
mean predicted value against the realised one (calibration in the large) and the ranking
(AUC for the breach and default probabilities; for the loss rate, refund dollars per
dollar of order value predicted against realised, and the exposure-weighted Gini).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.loss_rate import EXPOSURE_COLUMN, LOSS_RATE_COLUMN, TOTAL_REFUND_COLUMN
from models.metrics import classification_metrics, weighted_gini

# The column naming each row's vintage, per risk model (published.supplier_scores).
VINTAGE_COLUMNS = {"breach": "model_version", "default": "default_model_version", "loss_rate": "loss_rate_model_version"}
# Binary models: (prediction, realised outcome).
BINARY_COLUMNS = {"breach": ("breach_probability_6m", "breach_6m"), "default": ("default_probability_6m", "default_6m")}
MATURITY_COLUMNS = ("model", "vintage", "months_scored", "months_matured", "supplier_months_matured",
                    "mean_predicted", "realised", "auc", "gini")


def _matured(group: pd.DataFrame) -> pd.DataFrame:
    complete = group["label_complete"].fillna(False).astype(bool) if "label_complete" in group else pd.Series(True, group.index)
    return group[complete.to_numpy()]


def _quality(kind: str, matured: pd.DataFrame) -> dict[str, float]:
    nan = float("nan")
    if kind in BINARY_COLUMNS:
        predicted, realised = BINARY_COLUMNS[kind]
        if predicted not in matured or realised not in matured:
            return {"mean_predicted": nan, "realised": nan, "auc": nan, "gini": nan}
        rows = matured[matured[realised].notna()]
        if rows.empty:
            return {"mean_predicted": nan, "realised": nan, "auc": nan, "gini": nan}
        metrics = classification_metrics(rows[realised].astype(int).to_numpy(), rows[predicted].to_numpy(float))
        return {"mean_predicted": metrics["mean_predicted"], "realised": metrics["base_rate"], "auc": metrics["auc"],
                "gini": 2 * metrics["auc"] - 1}
    needed = (LOSS_RATE_COLUMN, EXPOSURE_COLUMN, TOTAL_REFUND_COLUMN)
    rows = matured.dropna(subset=[c for c in needed if c in matured]) if all(c in matured for c in needed) else matured.iloc[0:0]
    exposure = rows[EXPOSURE_COLUMN].to_numpy(float) if len(rows) else np.empty(0)
    if exposure.sum() <= 0:
        return {"mean_predicted": nan, "realised": nan, "auc": nan, "gini": nan}
    refund = rows[TOTAL_REFUND_COLUMN].to_numpy(float)
    predicted = rows[LOSS_RATE_COLUMN].to_numpy(float)
    return {"mean_predicted": float((predicted * exposure).sum() / exposure.sum()),
            "realised": float(refund.sum() / exposure.sum()), "auc": nan,
            "gini": weighted_gini(refund, exposure, predicted)}


def vintage_maturity(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, vintage) in ``history`` (``models.backtest.load_scored_history``):
    months scored, months and supplier-months matured, mean predicted vs realised, AUC, Gini.
    For the loss rate ``mean_predicted`` and ``realised`` are refund dollars per dollar of order
    value (exposure-weighted); for the probabilities, the mean probability and the event rate."""
    records = []
    for kind, column in VINTAGE_COLUMNS.items():
        if column not in history:
            continue
        for vintage, group in history.groupby(column, sort=True):
            matured = _matured(group)
            records.append({
                "model": kind, "vintage": vintage, "months_scored": group["as_of_date"].nunique(),
                "months_matured": matured["as_of_date"].nunique(), "supplier_months_matured": len(matured),
                **_quality(kind, matured),
            })
    return pd.DataFrame(records, columns=list(MATURITY_COLUMNS))
