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
    """AUC, Brier, log loss, ECE, base rate, mean prediction and row count.

    AUC is NaN when the rows hold a single class (tiny windows): undefined, not 0.5.
    """
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    both_classes = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_predicted": float(p.mean()) if len(y) else float("nan"),
        "rows": float(len(y)),
    }
