"""Diagnostic figures logged with every training run (matplotlib, headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # training runs in pipelines and CI without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from models.metrics import reliability_table  # noqa: E402


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC curves, one per named (labels, probabilities) pair."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, p) in curves.items():
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, evaluation window")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def reliability_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 10) -> Figure:
    """Observed breach rate against mean predicted probability per equal-mass bin."""
    fig, ax = plt.subplots(figsize=(5, 5))
    upper = 0.0
    for name, (y, p) in curves.items():
        table = reliability_table(y, p, n_bins)
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
        upper = max(upper, table["mean_predicted"].max(), table["observed_rate"].max())
    upper = min(1.0, upper * 1.1 + 1e-3)
    ax.plot([0, upper], [0, upper], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="mean predicted probability", ylabel="observed breach rate", title="Reliability (equal-mass bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def feature_importance_figure(importance: pd.DataFrame, top: int = 20) -> Figure:
    rows = importance.sort_values("gain", ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(rows) + 1)))
    ax.barh(rows["feature"], rows["gain"])
    ax.set(xlabel="total gain", title="Feature importance (gain)")
    fig.tight_layout()
    return fig


def loss_rate_calibration_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Realised against predicted loss rate per equal-mass decile, one line per coverage
    (tables of ``models.metrics.loss_rate_calibration_table``); rates in basis points."""
    fig, ax = plt.subplots(figsize=(5, 5))
    upper = 0.0
    for name, table in tables.items():
        predicted, realised = table["predicted_rate"] * 1e4, table["realised_rate"] * 1e4
        ax.plot(predicted, realised, marker="o", label=name)
        upper = max(upper, predicted.max(), realised.max())
    upper = upper * 1.1 + 1e-3
    ax.plot([0, upper], [0, upper], color="grey", linestyle=":", linewidth=1)
    # Deciles span two orders of magnitude: a log scale (linear below 1 bp, where a decile
    # may realise nothing) keeps the safe deciles readable next to the riskiest.
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel="predicted loss rate (bp of order value)", ylabel="realised loss rate (bp)",
           title="Loss rate by decile, out of time")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig
