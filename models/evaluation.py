"""Out-of-time evaluation: rolling origins, baselines, the generator's oracle, segments.

Everything here compares forecasts on the *same rows*: the evaluation window of a
training run (months no part of the model was fitted on). When the data comes from the
synthetic generator, its ``_truth/`` holds each supplier's true six-month breach
probability, the best any model could do; evaluation code may read it, the pipeline
never does (docs/design.md §3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from models.baselines import LogisticBaseline, RuleBaseline
from models.labels import add_months
from models.metrics import classification_metrics, expected_calibration_error
from models.model_features import LABEL_COLUMN, ModelFeature, resolve_model_features
from models.training import TrainingConfig, TrainingResult, complete_label_rows, train_breach_model

TRUTH_COLUMN = "breach_probability_6m"
TENURE_BANDS = [(-np.inf, 6, "0-5m"), (6, 12, "6-11m"), (12, 24, "12-23m"), (24, np.inf, "24m+")]
VOLUME_BANDS = [(-np.inf, 1, "no orders"), (1, 6, "1-5"), (6, 21, "6-20"), (21, np.inf, "21+")]


def read_truth(landing_dir: str | Path, columns: Iterable[str] = (TRUTH_COLUMN,)) -> pd.DataFrame:
    """The generator's ``_truth/breach_probability*.parquet`` (file or folder): keys and ``columns``."""
    truth_dir = Path(landing_dir) / "_truth"
    candidates = sorted(truth_dir.glob("breach_probability*"))
    if not candidates:
        raise FileNotFoundError(f"no _truth/breach_probability* under {landing_dir}")
    truth = pd.read_parquet(candidates[0], columns=["supplier_id", "as_of_date", *columns])
    truth["as_of_date"] = pd.to_datetime(truth["as_of_date"]).dt.date
    truth["supplier_id"] = truth["supplier_id"].astype(str)
    return truth


def rolling_origin_validation(
    training: pd.DataFrame,
    feature_specs_or_columns: Iterable | None = None,
    config: TrainingConfig | None = None,
    n_origins: int = 3,
    step_months: int | None = None,
) -> pd.DataFrame:
    """Retrain with the evaluation window moved back ``step_months`` at a time.

    Origin 0 is the standard split (newest complete months); origin i ends ``i * step``
    months earlier, with train and calibration windows moved back with it. The default
    step is the evaluation window's length, so evaluation windows do not overlap. One row
    per origin: windows, AUC, Brier, ECE, log loss, base rate, calibration choice.
    """
    config = config or TrainingConfig()
    step = step_months or config.evaluation_months
    months = sorted(complete_label_rows(training)["as_of_date"].unique())
    specs = list(feature_specs_or_columns) if feature_specs_or_columns is not None else None
    rows = []
    for origin in range(n_origins):
        end = add_months(months[-1], -origin * step) if origin else None
        try:
            result = train_breach_model(training, specs, replace(config, evaluation_end=end))
        except ValueError as too_short:  # history exhausted: report what we have
            rows.append({"origin": origin, "error": str(too_short)})
            break
        split = result.split.describe()
        rows.append(
            {
                "origin": origin,
                "evaluation_months": split["evaluation"],
                "calibration_months": split["calibration"],
                "train_months": split["train"],
                **{m: result.metrics[f"evaluation_{m}"] for m in ("auc", "brier", "ece", "log_loss", "base_rate", "rows")},
                "uncalibrated_ece": result.metrics["evaluation_uncalibrated_ece"],
                "calibration_method": result.calibration.method,
                "best_iteration": result.best_iteration,
            }
        )
    return pd.DataFrame(rows)


@dataclass
class OracleEvaluation:
    metrics: pd.DataFrame  # one row per forecaster: auc, brier, ece, log_loss, ...
    segments: pd.DataFrame  # long: segment, value, forecaster, rows, base_rate, auc, brier, ece
    predictions: pd.DataFrame  # the evaluation rows with every forecaster's probability


def fit_baselines(training: pd.DataFrame, result: TrainingResult) -> dict[str, object]:
    """Rule and logistic baselines fitted on the model's own training window and label."""
    rows = complete_label_rows(training, result.label_column)
    train_rows = rows[rows["as_of_date"].isin(set(result.split.train))]
    y = train_rows[result.label_column].astype(int).to_numpy()
    return {
        "rule_baseline": RuleBaseline().fit(train_rows, y),
        "logistic_baseline": LogisticBaseline(result.features).fit(train_rows, y),
    }


def evaluate_against_oracle(
    training: pd.DataFrame, result: TrainingResult, truth: pd.DataFrame | None = None
) -> OracleEvaluation:
    """Model, oracle (when ``truth`` is given), rule and logistic baselines on the model's
    evaluation rows and label (``result.label_column``). With ``truth``, only rows the truth
    covers are compared; the oracle is the breach truth, so pass it for the breach model only."""
    evaluation = result.evaluation_frame.copy()
    forecasts: dict[str, np.ndarray] = {}
    if truth is not None:
        truth = truth[["supplier_id", "as_of_date", TRUTH_COLUMN]].rename(columns={TRUTH_COLUMN: "_oracle"})
        evaluation = evaluation.merge(truth, on=["supplier_id", "as_of_date"], how="inner", validate="one_to_one")
    forecasts["model"] = evaluation["predicted_probability"].to_numpy()
    forecasts["model_uncalibrated"] = evaluation["raw_probability"].to_numpy()
    if truth is not None:
        forecasts["oracle"] = evaluation["_oracle"].to_numpy()
    for name, baseline in fit_baselines(training, result).items():
        forecasts[name] = baseline.predict_proba(evaluation)

    y = evaluation[result.label_column].astype(int).to_numpy()
    metrics = pd.DataFrame(
        [{"forecaster": name, **classification_metrics(y, p)} for name, p in forecasts.items()]
    ).set_index("forecaster")
    if "oracle" in forecasts:
        oracle = metrics.loc["oracle"]
        metrics["auc_gap_to_oracle"] = oracle["auc"] - metrics["auc"]
        metrics["brier_vs_oracle"] = metrics["brier"] / oracle["brier"] - 1

    predictions = evaluation.drop(columns=["_oracle"], errors="ignore")
    for name, p in forecasts.items():
        predictions[f"p_{name}"] = p
    return OracleEvaluation(metrics, segment_metrics(predictions, list(forecasts), result.label_column), predictions)


def _band(values: pd.Series, bands: list[tuple[float, float, str]]) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce").fillna(0.0)
    result = pd.Series("unknown", index=values.index, dtype=object)
    for low, high, label in bands:
        result[(numeric >= low) & (numeric < high)] = label
    return result


def segment_metrics(predictions: pd.DataFrame, forecasters: list[str], label_column: str = LABEL_COLUMN) -> pd.DataFrame:
    """Per segment (country, tenure band, volume band) and forecaster: calibration-in-the-
    large (mean predicted vs observed), AUC, Brier and ECE (5 bins: segments are small)."""
    segments = {
        "country": predictions["country"].astype(object).fillna("unknown") if "country" in predictions else None,
        "tenure_band": _band(predictions["tenure_months"], TENURE_BANDS) if "tenure_months" in predictions else None,
        "volume_band": _band(predictions["orders_6m"], VOLUME_BANDS) if "orders_6m" in predictions else None,
    }
    y_all = predictions[label_column].astype(int).to_numpy()
    rows = []
    for segment, labels in segments.items():
        if labels is None:
            continue
        for value in sorted(labels.unique()):
            mask = (labels == value).to_numpy()
            y = y_all[mask]
            for name in forecasters:
                p = predictions[f"p_{name}"].to_numpy()[mask]
                m = classification_metrics(y, p)
                rows.append(
                    {
                        "segment": segment,
                        "value": value,
                        "forecaster": name,
                        "rows": int(mask.sum()),
                        "observed_rate": m["base_rate"],
                        "mean_predicted": m["mean_predicted"],
                        "auc": m["auc"],
                        "brier": m["brier"],
                        "ece": expected_calibration_error(y, p, n_bins=5),
                    }
                )
    return pd.DataFrame(rows)


# The generator's truths of the two quantities the amount rests on (docs/design.md §3, §4).
ORACLE_LOSS_RATE_COLUMNS = {
    "total": "loss_rate_6m",
    "pre_shipment": "loss_rate_pre_shipment_6m",
    "post_delivery": "loss_rate_post_delivery_6m",
}
ORACLE_DEFAULT_COLUMN = "default_probability_6m"


def _with_oracle(frame: pd.DataFrame, truth: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``frame`` joined with the truth columns renamed ``oracle_<key>`` (rows the truth covers)."""
    renamed = truth[["supplier_id", "as_of_date", *columns.values()]].rename(
        columns={column: f"oracle_{key}" for key, column in columns.items()}
    )
    return frame.merge(renamed, on=["supplier_id", "as_of_date"], how="inner", validate="one_to_one")


def loss_rate_against_oracle(result, truth: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The loss-rate model against the generator's true loss rate on its evaluation rows.

    ``deciles``: per equal-count decile of the model's rate, exposure-weighted mean of the
    model, the oracle and the realised rate; model / oracle - 1; and each forecaster's
    calibration error against what happened (model / realised - 1, oracle / realised - 1).
    ``summary``: per coverage, Spearman rank correlation of model and oracle, the worst
    decile gap to the oracle, the mean absolute decile error against the realised rate of
    the model and of the oracle, and the three overall rates. The oracle conditions on the
    generator's latent state but not on the disputes already open at T, which the model
    sees: on the label's near-term refunds the model can be better calibrated than it. ``segments``: the same
    per tenure and volume band, so no segment hides behind the average."""
    from scipy.stats import spearmanr  # noqa: PLC0415 (evaluation tooling only)

    from models.loss_rate import COVERAGE_RATE_COLUMNS, EXPOSURE_COLUMN, LOSS_RATE_COLUMN, coverage_refunds  # noqa: PLC0415

    rows = _with_oracle(result.evaluation_frame, truth, ORACLE_LOSS_RATE_COLUMNS)
    exposure = rows[EXPOSURE_COLUMN].to_numpy(float)
    refunds = coverage_refunds(rows)
    realised = {"total": sum(refunds.values()), **{c: refunds[c] for c in COVERAGE_RATE_COLUMNS}}
    predicted = {"total": rows[LOSS_RATE_COLUMN].to_numpy(float),
                 **{c: rows[column].to_numpy(float) for c, column in COVERAGE_RATE_COLUMNS.items()}}

    def weighted(values: np.ndarray, mask: np.ndarray) -> float:
        return float(np.sum(values[mask] * exposure[mask]) / np.sum(exposure[mask]))

    decile_rows, summary_rows, segment_rows = [], [], []
    for cover in ("total", "pre_shipment", "post_delivery"):
        model, oracle = predicted[cover], rows[f"oracle_{cover}"].to_numpy(float)
        order = np.argsort(model, kind="mergesort")
        decile = np.empty(len(model), dtype=int)
        decile[order] = (np.arange(len(model)) * 10) // max(len(model), 1)
        gaps = []
        for d in range(10):
            mask = decile == d
            if not mask.any():
                continue
            m, o = weighted(model, mask), weighted(oracle, mask)
            r = float(realised[cover][mask].sum() / exposure[mask].sum())
            gaps.append(m / o - 1 if o > 0 else np.nan)
            decile_rows.append({"cover": cover, "decile": d + 1, "rows": int(mask.sum()), "model": m, "oracle": o,
                                "realised": r, "model_vs_oracle": gaps[-1],
                                "model_vs_realised": m / r - 1 if r > 0 else np.nan,
                                "oracle_vs_realised": o / r - 1 if r > 0 else np.nan})
        summary_rows.append({
            "cover": cover, "rows": len(model),
            "spearman_model_oracle": float(spearmanr(model, oracle).statistic),
            "worst_decile_gap_to_oracle": float(np.nanmax(np.abs(gaps))),
            "model_mean_abs_decile_error": float(np.nanmean(np.abs(
                [row["model_vs_realised"] for row in decile_rows if row["cover"] == cover]))),
            "oracle_mean_abs_decile_error": float(np.nanmean(np.abs(
                [row["oracle_vs_realised"] for row in decile_rows if row["cover"] == cover]))),
            "model_rate": weighted(model, np.ones(len(model), bool)),
            "oracle_rate": weighted(oracle, np.ones(len(model), bool)),
            "realised_rate": float(realised[cover].sum() / exposure.sum()),
        })
    bands = {"tenure_band": _band(rows["tenure_months"], TENURE_BANDS) if "tenure_months" in rows else None,
             "volume_band": _band(rows["orders_6m"], VOLUME_BANDS) if "orders_6m" in rows else None}
    for segment, labels in bands.items():
        if labels is None:
            continue
        for value in sorted(labels.unique()):
            mask = (labels == value).to_numpy()
            segment_rows.append({
                "segment": segment, "value": value, "rows": int(mask.sum()),
                "model_rate": weighted(predicted["total"], mask), "oracle_rate": weighted(rows["oracle_total"].to_numpy(float), mask),
                "realised_rate": float(realised["total"][mask].sum() / exposure[mask].sum()),
                "spearman_model_oracle": float(spearmanr(predicted["total"][mask], rows["oracle_total"][mask]).statistic)
                if mask.sum() > 2 else float("nan"),
            })
    return {"deciles": pd.DataFrame(decile_rows), "summary": pd.DataFrame(summary_rows),
            "segments": pd.DataFrame(segment_rows)}


def default_against_oracle(
    result: TrainingResult, truth: pd.DataFrame, informed: TrainingResult | None = None
) -> dict[str, pd.DataFrame]:
    """The default model against the generator's true default probability on its evaluation
    rows: AUC, Brier and ECE of both against the realised ``default_6m``, overall and per
    tenure and volume band. ``informed`` (`train_informed_learner`), when given, is scored on
    the same rows as a third forecaster."""
    rows = _with_oracle(result.evaluation_frame, truth, {"default": ORACLE_DEFAULT_COLUMN})
    y = rows[result.label_column].astype(int).to_numpy()
    forecasts = {"model": rows["predicted_probability"].to_numpy(), "oracle": rows["oracle_default"].to_numpy()}
    if informed is not None:
        keyed = informed.evaluation_frame.set_index(["supplier_id", "as_of_date"])["predicted_probability"]
        forecasts["informed_learner"] = keyed.reindex(pd.MultiIndex.from_frame(rows[["supplier_id", "as_of_date"]])).to_numpy()
        if np.isnan(forecasts["informed_learner"]).any():
            raise ValueError("the informed learner was evaluated on other rows than the model: same training frame needed")
    metrics = pd.DataFrame(
        [{"forecaster": name, **classification_metrics(y, p)} for name, p in forecasts.items()]
    ).set_index("forecaster")
    metrics["auc_gap_to_oracle"] = metrics.loc["oracle", "auc"] - metrics["auc"]
    predictions = rows.assign(**{f"p_{name}": p for name, p in forecasts.items()})
    return {"metrics": metrics, "segments": segment_metrics(predictions, list(forecasts), result.label_column)}


# What the oracle conditions on and the data only hints at: the latent reliability and
# whether the supplier is already fraudulent at T (columns of ``_truth/``).
LATENT_STATE_COLUMNS = ("latent_reliability", "is_fraudulent")


def train_informed_learner(
    training: pd.DataFrame,
    truth: pd.DataFrame,
    feature_specs_or_columns: Iterable | None,
    config: TrainingConfig,
    **train_options,
) -> TrainingResult:
    """The same learner as the model, also handed the generator's latent state at T.

    It separates the two reasons a model trails the oracle: the oracle knows the latent state
    (information the data may not hold) and the exact form of the process (which a learner
    has to find from a finite number of events). What this learner still misses is the cost
    of learning alone, at this many rows and positive labels; the rest of the model's gap
    is information. Evaluation tooling only: it reads ``_truth/``."""
    latent = truth[["supplier_id", "as_of_date", *LATENT_STATE_COLUMNS]].astype({"is_fraudulent": float})
    frame = training.merge(latent, on=["supplier_id", "as_of_date"], how="left", validate="many_to_one")
    features = [*resolve_model_features(feature_specs_or_columns, training),
                *(ModelFeature(column, 0, False) for column in LATENT_STATE_COLUMNS)]
    return train_breach_model(frame, features, config, **train_options)


def oracle_level_by_month(training: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per month of complete labels: realised refund dollars over the oracle's expected refund
    dollars (its loss rate times the window's order value), over every supplier with order
    value in its window. The oracle's own month-to-month level error: a floor under any
    calibration bar stated against realised refunds."""
    from models.loss_rate import EXPOSURE_COLUMN, TOTAL_REFUND_COLUMN  # noqa: PLC0415

    rows = _with_oracle(complete_label_rows(training), truth, {"total": ORACLE_LOSS_RATE_COLUMNS["total"]})
    rows = rows[rows[EXPOSURE_COLUMN] > 0]
    expected = rows["oracle_total"] * rows[EXPOSURE_COLUMN]
    by_month = pd.DataFrame({"as_of_date": rows["as_of_date"], "realised": rows[TOTAL_REFUND_COLUMN], "expected": expected})
    table = by_month.groupby("as_of_date", sort=True)[["realised", "expected"]].sum()
    table["realised_over_oracle"] = table["realised"] / table["expected"]
    return table.reset_index()
