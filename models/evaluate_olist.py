"""Out-of-time quality of the three risk models on a landing zone without an oracle (Olist),
next to the rule and logistic baselines on the same rows.

    uv run assurance import-olist ../shared/data/olist --out /tmp/olist_lz
    uv run python -m models.evaluate_olist --landing /tmp/olist_lz

Real data has no ``_truth/``: the only judge is what happened. Ingests the landing zone into
an in-memory DuckDB, builds the training set with the pipeline's own code (labels from the
outcome definition the manifest declares: for Olist its order failures), trains each model
as the pipeline does, and prints Markdown tables for the standard split (origin 0: the
newest complete months are the evaluation window) and for earlier evaluation windows
(origin i ends ``3 i`` months earlier, everything before it moved back too), so a result can
be checked on windows nobody looked at while choosing the settings:

* breach (any failure in six months) and default: AUC, Brier, ECE, base rate and mean
  prediction of the model, the rule baseline (seller standards tiers, ``models.baselines``)
  and a logistic regression, each baseline fitted on the model's training months;
* loss rate: realised and predicted refund dollars per order dollar, exposure-weighted Gini
  and the worst decile's relative error, for the model and for the rule baseline's tiers
  (each tier's realised rate on the training months).

Evaluation tooling, never part of the pipeline.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from features import FEATURES
from models.baselines import RuleBaseline
from models.evaluation import evaluate_against_oracle
from models.labels import add_months
from models.loss_rate import EXPOSURE_COLUMN, LOSS_RATE_COLUMN, coverage_refunds, exposure_rows, loss_config_from_yaml, train_loss_rate_model
from models.metrics import loss_rate_metrics
from models.model_features import LABEL_COLUMN
from models.training import TrainingConfig, complete_label_rows, learned_outcome_definition, train_breach_model
from models.training_set import DEFAULT_LABEL_COLUMN, untrainable_default_reason, untrainable_reason

ORIGIN_STEP_MONTHS = 3
_CLASSIFICATION_COLUMNS = ["auc", "brier", "ece", "base_rate", "mean_predicted", "rows"]
_LOSS_COLUMNS = ["realised_rate", "predicted_rate", "predicted_to_realised", "gini", "decile_max_abs_relative_error", "rows"]


def training_summary(training: pd.DataFrame) -> dict[str, object]:
    """What the labels hold: rows, months, events and the realised loss rate."""
    rows = complete_label_rows(training)
    exposure = exposure_rows(training)
    return {
        "outcome_definition": learned_outcome_definition(training),
        "supplier_months": len(rows),
        "complete_months": f"{rows['as_of_date'].min()}..{rows['as_of_date'].max()} ({rows['as_of_date'].nunique()})",
        "suppliers": rows["supplier_id"].nunique(),
        "breach_rate": round(float(rows[LABEL_COLUMN].mean()), 4),
        "defaults": int(rows[DEFAULT_LABEL_COLUMN].sum()),
        "realised_loss_rate": round(float(exposure["breach_refund_usd_6m"].sum() / exposure[EXPOSURE_COLUMN].sum()), 4),
    }


def _classification(training: pd.DataFrame, config: TrainingConfig, label_column: str) -> pd.DataFrame:
    result = train_breach_model(
        training, FEATURES, config, label_column=label_column, size_non_increasing=label_column == DEFAULT_LABEL_COLUMN
    )
    metrics = evaluate_against_oracle(training, result).metrics
    metrics = metrics.loc[["model", "rule_baseline", "logistic_baseline"], _CLASSIFICATION_COLUMNS]
    return metrics.reset_index().assign(evaluation=result.split.describe()["evaluation"])


def rule_tier_loss_rates(train_rows: pd.DataFrame, rule: RuleBaseline | None = None) -> tuple[RuleBaseline, dict[str, float], float]:
    """The rule baseline for the loss rate: each seller-standards tier's realised refund
    dollars per order dollar over the training rows (the overall rate for unseen tiers)."""
    rule = rule or RuleBaseline()
    refunds = sum(coverage_refunds(train_rows).values())
    exposure = train_rows[EXPOSURE_COLUMN].to_numpy(float)
    tiers = rule.tiers(train_rows)
    overall = float(refunds.sum() / exposure.sum())
    rates = {tier: float(refunds[tiers == tier].sum() / exposure[tiers == tier].sum()) for tier in sorted(set(tiers))}
    return rule, rates, overall


def _loss_rate(training: pd.DataFrame, end) -> pd.DataFrame:
    result = train_loss_rate_model(training, FEATURES, replace(loss_config_from_yaml(), evaluation_end=end))
    evaluation = result.evaluation_frame
    refunds = sum(coverage_refunds(evaluation).values())
    exposure = evaluation[EXPOSURE_COLUMN].to_numpy(float)
    rows = exposure_rows(training)
    rule, rates, overall = rule_tier_loss_rates(rows[rows["as_of_date"].isin(set(result.split.train))])
    baseline = np.array([rates.get(tier, overall) for tier in rule.tiers(evaluation)])
    table = pd.DataFrame([
        {"forecaster": "model", **loss_rate_metrics(refunds, exposure, evaluation[LOSS_RATE_COLUMN].to_numpy(float))},
        {"forecaster": "rule_baseline", **loss_rate_metrics(refunds, exposure, baseline)},
    ])
    return table[["forecaster", *_LOSS_COLUMNS]].assign(evaluation=result.split.describe()["evaluation"])


def evaluate_origins(training: pd.DataFrame, origins: int = 3) -> dict[str, pd.DataFrame]:
    """The three models and their baselines, one block of rows per evaluation origin."""
    months = sorted(complete_label_rows(training)["as_of_date"].unique())
    config = TrainingConfig.from_yaml()
    tables: dict[str, list[pd.DataFrame]] = {"breach": [], "default": [], "loss_rate": []}
    skipped: dict[str, str] = {}
    for origin in range(origins):
        end = add_months(months[-1], -origin * ORIGIN_STEP_MONTHS) if origin else None
        window = training[pd.to_datetime(training["as_of_date"]).dt.date <= (end or months[-1])]
        for model, problem, run in (
            ("breach", untrainable_reason(window), lambda: _classification(training, replace(config, evaluation_end=end), LABEL_COLUMN)),
            ("default", untrainable_default_reason(window),
             lambda: _classification(training, replace(config, evaluation_end=end), DEFAULT_LABEL_COLUMN)),
            ("loss_rate", untrainable_reason(window), lambda: _loss_rate(training, end)),
        ):
            if problem:
                skipped[f"{model} origin {origin}"] = problem
                continue
            try:
                tables[model].append(run().assign(origin=origin))
            except ValueError as too_short:  # history exhausted: report what we have
                skipped[f"{model} origin {origin}"] = str(too_short)
    out = {
        name: pd.concat(frames, ignore_index=True).set_index(["origin", "evaluation", "forecaster"])
        for name, frames in tables.items() if frames
    }
    out["skipped"] = pd.DataFrame({"what": list(skipped), "why": list(skipped.values())})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--origins", type=int, default=3, help="evaluation windows: the newest, then 3, 6, ... months earlier")
    args = parser.parse_args(argv)

    from models.evaluate_synthetic import training_frame_from_landing  # noqa: PLC0415

    training = training_frame_from_landing(args.landing)
    print("## Training set\n")
    print(pd.Series(training_summary(training)).to_frame("value").to_markdown())
    tables = evaluate_origins(training, args.origins)
    titles = {
        "breach": "Breach (any failure in six months): model vs baselines, out of time",
        "default": "Default (stops fulfilling): model vs baselines, out of time",
        "loss_rate": "Loss rate (refund dollars per order dollar): model vs rule tiers, out of time",
    }
    for name, title in titles.items():
        if name in tables:
            print(f"\n## {title}\n")
            print(tables[name].round(4).to_markdown())
    if len(tables["skipped"]):
        print("\n## Not evaluated\n")
        print(tables["skipped"].to_markdown(index=False))


if __name__ == "__main__":
    main()
