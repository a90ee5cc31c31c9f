"""Probability-forecast metrics shared by training, evaluation, baselines and promotion.

ECE uses equal-mass bins (deciles of the predicted probability): breach rates are low, so
equal-width bins would put nearly every supplier in the first bin and hide miscalibration
where the policy actually cuts (the upper deciles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

ECE_BINS = 10
_EPS = 1e-6


def _equal_mass_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index per row: rows sorted by probability (stable) cut into equal-count chunks."""
    order = np.argsort(p, kind="mergesort")
    bins = np.empty(len(p), dtype=int)
    bins[order] = (np.arange(len(p)) * n_bins) // max(len(p), 1)
    return bins


def log_spread(scores: np.ndarray) -> float:
    """Standard deviation of the log of the positive, finite scores: how far a model's scores
    spread, whatever their level (monitoring compares a month's with the model's own)."""
    scores = np.asarray(scores, dtype=float)
    positive = scores[np.isfinite(scores) & (scores > 0)]
    return float(np.std(np.log(positive))) if positive.size > 1 else 0.0


def top_value_share(scores: np.ndarray) -> float:
    """Share of the scores holding the most common finite value (1 when none is finite): how
    much a model's scores tie (an isotonic calibrator's lowest step can hold half of them)."""
    scores = np.asarray(scores, dtype=float)
    finite = scores[np.isfinite(scores)]
    return float(pd.Series(finite).value_counts().iloc[0] / scores.size) if finite.size else 1.0


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Sum over equal-mass bins of (bin share) x |mean predicted - observed rate|."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    bins = _equal_mass_bins(p, min(n_bins, len(p)))
    counts = np.bincount(bins)
    gap = np.abs(np.bincount(bins, weights=p) - np.bincount(bins, weights=y))
    return float(gap[counts > 0].sum() / len(y))


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Per equal-mass bin: rows, mean predicted probability, observed breach rate."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    frame = pd.DataFrame({"bin": _equal_mass_bins(p, min(n_bins, max(len(p), 1))), "p": p, "y": y})
    return (
        frame.groupby("bin")
        .agg(rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
        .reset_index()
    )


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, Brier, log loss, ECE, base rate, mean prediction, spread (``log_spread``), ties
    (``top_value_share``) and row count.

    AUC is NaN when the rows hold a single class (tiny windows): undefined, not 0.5.
    """
    y = np.asarray(y, dtype=int)
    spread, ties = log_spread(p), top_value_share(p)  # of the scores as published: the clipping is for the log loss
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    both_classes = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_predicted": float(p.mean()) if len(y) else float("nan"),
        "log_spread": spread,
        "top_value_share": ties,
        "rows": float(len(y)),
    }


def loss_rate_calibration_table(
    refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray, n_bins: int = ECE_BINS
) -> pd.DataFrame:
    """Per equal-mass bin of the predicted loss rate: rows, exposure, predicted and realised rate.

    Rates are exposure-weighted (refund dollars over order dollars in the bin), the quantity
    the fee has to cover; ``relative_error`` is predicted / realised - 1."""
    refund = np.asarray(refund, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    predicted_rate = np.asarray(predicted_rate, dtype=float)
    frame = pd.DataFrame(
        {
            "bin": _equal_mass_bins(predicted_rate, min(n_bins, max(len(predicted_rate), 1))),
            "exposure": exposure,
            "refund": refund,
            "predicted_refund": predicted_rate * exposure,
        }
    )
    table = frame.groupby("bin").agg(
        rows=("refund", "size"), exposure_usd=("exposure", "sum"),
        refund_usd=("refund", "sum"), predicted_refund_usd=("predicted_refund", "sum"),
    ).reset_index()
    table["predicted_rate"] = table["predicted_refund_usd"] / table["exposure_usd"]
    table["realised_rate"] = table["refund_usd"] / table["exposure_usd"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["relative_error"] = table["predicted_rate"] / table["realised_rate"] - 1.0
    return table


def weighted_gini(refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray) -> float:
    """Normalised Gini of the loss ranking: how much refund concentrates in the exposure the
    model calls riskiest (1 = perfect ordering, 0 = random). NaN without any refund."""
    refund = np.asarray(refund, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    predicted_rate = np.asarray(predicted_rate, dtype=float)
    if refund.sum() <= 0 or exposure.sum() <= 0:
        return float("nan")

    def gini(order_by: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(order_by)), -order_by))
        cum_exposure = np.cumsum(exposure[order]) / exposure.sum()
        cum_refund = np.cumsum(refund[order]) / refund.sum()
        return float(np.trapezoid(cum_refund, cum_exposure) - 0.5)

    perfect = gini(np.divide(refund, exposure, out=np.zeros_like(refund), where=exposure > 0))
    return gini(predicted_rate) / perfect if perfect > 0 else float("nan")


def tweedie_deviance(refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray, power: float) -> float:
    """Mean exposure-weighted Tweedie deviance of the realised rate against the predicted."""
    exposure = np.asarray(exposure, dtype=float)
    keep = exposure > 0
    if not keep.any():
        return float("nan")
    y = np.asarray(refund, dtype=float)[keep] / exposure[keep]
    mu = np.maximum(np.asarray(predicted_rate, dtype=float)[keep], 1e-12)
    w = exposure[keep] / exposure[keep].mean()
    deviance = 2 * (
        np.power(y, 2 - power) / ((1 - power) * (2 - power))
        - y * np.power(mu, 1 - power) / (1 - power)
        + np.power(mu, 2 - power) / (2 - power)
    )
    return float(np.sum(w * deviance) / np.sum(w))


def loss_rate_metrics(
    refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray, power: float = 1.5
) -> dict[str, float]:
    """Calibration in the large and by decile, ranking (Gini), deviance, spread (``log_spread``)
    and ties (``top_value_share``) of a loss-rate forecast."""
    table = loss_rate_calibration_table(refund, exposure, predicted_rate)
    usable = table[table["refund_usd"] > 0]
    total_exposure = float(np.sum(exposure))
    return {
        "predicted_to_realised": float(np.sum(np.asarray(predicted_rate) * exposure) / max(np.sum(refund), 1e-12)),
        "realised_rate": float(np.sum(refund) / total_exposure) if total_exposure > 0 else float("nan"),
        "predicted_rate": float(np.sum(np.asarray(predicted_rate) * exposure) / total_exposure)
        if total_exposure > 0 else float("nan"),
        "decile_max_abs_relative_error": float(usable["relative_error"].abs().max()) if len(usable) else float("nan"),
        "gini": weighted_gini(refund, exposure, predicted_rate),
        "tweedie_deviance": tweedie_deviance(refund, exposure, predicted_rate, power),
        "log_spread": log_spread(predicted_rate),
        "top_value_share": top_value_share(predicted_rate),
        "rows": float(len(exposure)),
    }
