"""Measure the risk models against the generator's truth (and the breach model against baselines).

    uv run assurance generate --out /tmp/lz          # a default-size world with _truth/
    uv run python -m models.evaluate_synthetic --landing /tmp/lz

Ingests the landing zone into an in-memory DuckDB, builds the training set with the
pipeline's own code (features joined with complete labels), trains with the default
``training.yaml``, and prints Markdown tables: model vs oracle vs rule and logistic
baselines on the evaluation window, segment metrics, rolling-origin validation and
reason-code throughput; then the loss-rate model (calibration by decile against the true
loss rate and the true loss rate given what T shows of past orders, rank correlation, per
coverage and segment) and the default model (AUC and
Brier against the true default probability's). This reads ``_truth/``, so it is evaluation tooling, never part
of the pipeline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import pandas as pd

from models.evaluation import (
    LOSS_RATE_ORACLES,
    LATENT_STATE_COLUMNS,
    PublishedForecasts,
    default_against_oracle,
    evaluate_against_oracle,
    loss_rate_against_oracle,
    oracle_gaps_by_period,
    oracle_level_by_month,
    published_forecasts,
    RISK_ORACLE_COLUMNS,
    read_truth,
    rolling_origin_validation,
    train_informed_learner,
)
from models.loss_rate import train_loss_rate_model
from models.training import TrainingConfig, train_breach_model
from models.training_set import DEFAULT_LABEL_COLUMN
from models.vintages import vintages_from_table

QUALITY_BAR = {"max_auc_gap_to_oracle": 0.02, "max_ece": 0.01, "max_brier_vs_oracle": 0.05}
# Issue 12's bars for the quantities the amount rests on.
RISK_BAR = {"max_decile_gap_to_oracle": 0.10, "max_default_auc_gap_to_oracle": 0.03}


def training_frame_from_landing(landing_dir: Path) -> pd.DataFrame:
    from data_contracts import ingest_landing_zone  # noqa: PLC0415  (tooling-only dependency)
    from models.training_set import build_training_set  # noqa: PLC0415

    con = duckdb.connect()
    report = ingest_landing_zone(landing_dir, con)
    horizon = report.data_horizon
    frame = build_training_set(con, horizon).to_pandas()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def quality_verdict(metrics: pd.DataFrame) -> list[str]:
    model = metrics.loc["model"]
    lines = []
    if "oracle" in metrics.index:
        gap = model["auc_gap_to_oracle"]
        lines.append(f"AUC gap to oracle {gap:.4f} (bar {QUALITY_BAR['max_auc_gap_to_oracle']}): "
                     + ("met" if gap <= QUALITY_BAR["max_auc_gap_to_oracle"] else "NOT met"))
        brier = model["brier_vs_oracle"]
        lines.append(f"Brier vs oracle {brier:+.2%} (bar +{QUALITY_BAR['max_brier_vs_oracle']:.0%}): "
                     + ("met" if brier <= QUALITY_BAR["max_brier_vs_oracle"] else "NOT met"))
        lines.append(f"ECE {model['ece']:.4f} (bar {QUALITY_BAR['max_ece']}; the oracle itself scores "
                     f"{metrics.loc['oracle', 'ece']:.4f} on these rows, i.e. sampling noise): "
                     + ("met" if model["ece"] <= QUALITY_BAR["max_ece"] else "NOT met"))
    for baseline in ("rule_baseline", "logistic_baseline"):
        better = model["auc"] > metrics.loc[baseline, "auc"] and model["brier"] < metrics.loc[baseline, "brier"]
        lines.append(f"better than {baseline} on AUC and Brier: {'yes' if better else 'NO'}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--landing", type=Path, help="landing zone with _truth/: train and evaluate as the pipeline does")
    source.add_argument("--home", type=Path, help="home after `assurance run` on a synthetic landing zone: evaluate "
                        "its published point-in-time scores, every month with complete outcomes")
    parser.add_argument("--origins", type=int, default=3, help="rolling origins (0 to skip)")
    args = parser.parse_args(argv)
    if args.home is not None:
        report_published_scores(args.home)
        return

    started = time.perf_counter()
    training = training_frame_from_landing(args.landing)
    print(f"training set: {len(training):,} rows, {training['as_of_date'].nunique()} complete months "
          f"({time.perf_counter() - started:.1f} s)\n")

    config = TrainingConfig.from_yaml()
    from features import FEATURES  # noqa: PLC0415

    started = time.perf_counter()
    result = train_breach_model(training, FEATURES, config)
    print(f"trained in {time.perf_counter() - started:.1f} s: {result.split.describe()}, "
          f"{result.best_iteration} trees, calibration {result.calibration.method} {result.calibration.cv_ece}\n")

    evaluation = evaluate_against_oracle(training, result, read_truth(args.landing))
    print("## Evaluation window: model vs oracle vs baselines\n")
    print(evaluation.metrics.round(4).to_markdown())
    print()
    for line in quality_verdict(evaluation.metrics):
        print(f"- {line}")
    print("\n## Segments (model vs oracle)\n")
    segments = evaluation.segments[evaluation.segments["forecaster"].isin(["model", "oracle"])]
    print(segments.round(4).to_markdown(index=False))

    # A sample keeps the measurement short; the rate is per row either way.
    rows = training[training["as_of_date"].isin(set(result.split.evaluation))].head(3000)
    started = time.perf_counter()
    result.model.reason_codes(rows, k=3)
    seconds = time.perf_counter() - started
    print(f"\nreason codes: {len(rows):,} rows in {seconds:.2f} s = {len(rows) / seconds:,.0f} rows/s "
          f"(num_threads={result.model.num_threads})")

    report_risk_models(
        training,
        read_truth(args.landing, [*RISK_ORACLE_COLUMNS, *LATENT_STATE_COLUMNS]),
    )

    if args.origins:
        print("\n## Rolling-origin validation\n")
        print(rolling_origin_validation(training, FEATURES, config, n_origins=args.origins).round(4).to_markdown(index=False))


def report_risk_models(training: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Train the loss-rate and default models as the pipeline does; print them against the truth."""
    from features import FEATURES  # noqa: PLC0415

    started = time.perf_counter()
    loss = train_loss_rate_model(training, FEATURES)
    print(f"\n## Loss rate (refunds per order dollar), evaluation window {loss.split.describe()['evaluation']}\n")
    print(f"trained in {time.perf_counter() - started:.1f} s, scales {loss.model.scales}\n")
    tables = loss_rate_against_oracle(loss, truth)
    print(tables["summary"].set_index("cover").T.round(5).to_markdown())
    print("\nBy decile of the model's rate (total):\n")
    print(tables["deciles"][tables["deciles"]["cover"] == "total"].drop(columns="cover").round(5).to_markdown(index=False))
    print("\nEach oracle by decile of its own rate (total):\n")
    own = tables["oracle_deciles"]
    print(own[own["cover"] == "total"].drop(columns="cover").round(5).to_markdown(index=False))
    print("\nSegments (total loss rate):\n")
    print(tables["segments"].round(5).to_markdown(index=False))
    total = tables["summary"].set_index("cover").loc["total"]
    bar = RISK_BAR["max_decile_gap_to_oracle"]
    levels = oracle_level_by_month(training, truth)
    model_error = float(total["model_mean_abs_decile_error"])
    for name in LOSS_RATE_ORACLES:
        worst = float(total[f"worst_decile_gap_to_{name}"])
        print(f"\n- {name}: worst decile gap {worst:.1%} (bar {bar:.0%}): " + ("met" if worst <= bar else "NOT met")
              + f"; Spearman with the model {float(total[f'spearman_model_{name}']):.3f}")
        oracle_error = float(total[f"{name}_mean_abs_decile_error"])
        print(f"  calibration against what happened, mean absolute decile error by the model's deciles: model "
              f"{model_error:.1%}, {name} {oracle_error:.1%} (bar: model within {bar:.0%} of it): "
              + ("met" if model_error <= oracle_error + bar else "NOT met")
              + f"; {name} by its own deciles {float(total[f'{name}_own_decile_error']):.1%}")
        level = levels[f"realised_over_{name}"]
        print(f"  its level, realised / expected refund dollars per month over {len(levels)} months: "
              f"{level.min():.2f}..{level.max():.2f} (month-to-month noise no forecaster can remove)")

    started = time.perf_counter()
    default = train_breach_model(training, FEATURES, TrainingConfig.from_yaml(), label_column=DEFAULT_LABEL_COLUMN,
                                 size_non_increasing=True)
    print(f"\n## Default probability, evaluation window {default.split.describe()['evaluation']}\n")
    print(f"trained in {time.perf_counter() - started:.1f} s\n")
    informed = train_informed_learner(training, truth, FEATURES, TrainingConfig.from_yaml(),
                                      label_column=DEFAULT_LABEL_COLUMN, size_non_increasing=True)
    tables = default_against_oracle(default, truth, informed)
    print(tables["metrics"].round(4).to_markdown())
    gap = float(tables["metrics"].loc["model", "auc_gap_to_oracle"])
    print(f"\n- AUC gap to the oracle {gap:.4f} (bar {RISK_BAR['max_default_auc_gap_to_oracle']}): "
          + ("met" if gap <= RISK_BAR["max_default_auc_gap_to_oracle"] else "NOT met"))
    learning = float(tables["metrics"].loc["informed_learner", "auc_gap_to_oracle"])
    print(f"- of which learning (the same learner also handed {', '.join(LATENT_STATE_COLUMNS)}): {learning:.4f}; "
          f"information the features lack: {gap - learning:.4f}")
    print("\nSegments:\n")
    print(tables["segments"].round(4).to_markdown(index=False))


def report_published_scores(home: Path, months_per_period: int = 3) -> None:
    """The home's published loss rates and default probabilities against the truth, on every
    published month whose outcomes are complete (each scored by the vintage known then)."""
    landing = home / "landing"
    if not (landing / "_truth").is_dir():
        raise SystemExit(f"{landing}/_truth not found: --home needs a home whose landing zone the generator wrote "
                         "(`assurance demo --home HOME`)")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        scores = con.execute("SELECT * FROM published.supplier_scores").df()
        vintages = vintages_from_table(con.execute("SELECT * FROM models.vintages").df())
    forecasts = published_forecasts(training_frame_from_landing(landing), scores, vintages)
    print(published_scores_report(forecasts, read_truth(landing, RISK_ORACLE_COLUMNS), str(home), months_per_period))


def published_scores_report(forecasts: PublishedForecasts, truth: pd.DataFrame, name: str, months_per_period: int = 3) -> str:
    """Markdown: ``forecasts`` (`published_forecasts`) against the truth, overall, per segment
    (tenure and volume bands; country too for the default) and per period, with issue 12's bars
    and their verdicts."""
    rows = forecasts.evaluation_frame
    lines = [f"## Published scores of {name}: {len(rows):,} supplier-months with complete outcomes, "
             f"{rows['as_of_date'].min():%Y-%m} .. {rows['as_of_date'].max():%Y-%m}, each scored by the vintage "
             f"known at its month end ({len(forecasts.vintage_dates)} vintages)\n"]
    tables = loss_rate_against_oracle(forecasts, truth)
    summary = tables["summary"].set_index("cover")
    lines += ["### Loss rate, all months\n", summary.T.round(5).to_markdown(),
              "\nBy decile of the published rate (total):\n",
              tables["deciles"][tables["deciles"]["cover"] == "total"].drop(columns="cover").round(5).to_markdown(index=False),
              "\nBy segment (total):\n", tables["segments"].round(5).to_markdown(index=False)]
    default = default_against_oracle(forecasts, truth)
    lines += ["\n### Default probability, all months\n", default["metrics"].round(4).to_markdown(),
              "\nBy segment:\n", default["segments"].round(4).to_markdown(index=False),
              f"\n### Per {months_per_period} months\n",
              oracle_gaps_by_period(forecasts, truth, months_per_period).round(4).to_markdown(index=False), ""]
    bar = RISK_BAR["max_decile_gap_to_oracle"]
    worst = float(summary.loc["total", "worst_decile_gap_to_oracle_given_open"])
    lines.append(f"- loss rate, worst decile gap to the information-matched oracle over all months: {worst:.1%} "
                 f"(bar {bar:.0%}): " + ("met" if worst <= bar else "NOT met"))
    # The same bar read as the default's ("within 0.03 of the oracle's AUC"): the model's calibration
    # against what happened, next to the oracle's own, each by its own deciles.
    model_error = float(summary.loc["total", "model_mean_abs_decile_error"])
    for oracle in LOSS_RATE_ORACLES:
        own = float(summary.loc["total", f"{oracle}_own_decile_error"])
        lines.append(f"- loss rate, mean absolute decile error against realised refunds: model {model_error:.1%}, "
                     f"{oracle} {own:.1%} by its own deciles (read as: model within {bar:.0%} of it): "
                     + ("met" if model_error <= own + bar else "NOT met"))
    gap = float(default["metrics"].loc["model", "auc_gap_to_oracle"])
    lines.append(f"- default, AUC gap to the oracle over all months: {gap:.4f} (bar {RISK_BAR['max_default_auc_gap_to_oracle']}): "
                 + ("met" if gap <= RISK_BAR["max_default_auc_gap_to_oracle"] else "NOT met"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
