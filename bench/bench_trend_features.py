"""Do the three-month trend features help the breach model? Rolling origins with and without.

    uv run assurance generate --suppliers 2000 --start 2024-01 --months 30 --seed 7 --out /tmp/fd-lz7
    uv run python bench/bench_trend_features.py --landing /tmp/fd-lz7 --landing /tmp/fd-lz11

For each landing zone the training set is built once with the pipeline's code
(``models.evaluate_synthetic.training_frame_from_landing``); the breach model is then
validated on the same rolling origins (``models.evaluation.rolling_origin_validation``,
default ``training.yaml``) twice: with the catalogue as it is, and with the trend rates
(``TREND_FEATURES``) as model inputs and without them, whatever the catalogue says. Prints one Markdown table per landing
zone and the mean difference (with minus without) over the origins.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The 3-month rates and their shrunk twins (the counts behind them are not model inputs).
TREND_FEATURES = ("dispute_ratio_3m", "dispute_ratio_3m_shrunk", "on_time_shipment_rate_3m",
                  "on_time_shipment_rate_3m_shrunk")
METRICS = ("auc", "brier", "log_loss", "ece")


def compare(landing: Path, origins: int) -> pd.DataFrame:
    from features import FEATURES
    from models.evaluate_synthetic import training_frame_from_landing
    from models.evaluation import rolling_origin_validation
    from models.training import TrainingConfig

    training = training_frame_from_landing(landing)
    config = TrainingConfig.from_yaml()
    assert set(TREND_FEATURES) <= {spec.name for spec in FEATURES}
    with_trends = [replace(spec, model_input=True) if spec.name in TREND_FEATURES else spec for spec in FEATURES]
    without_trends = [replace(spec, model_input=False) if spec.name in TREND_FEATURES else spec for spec in FEATURES]
    rows = []
    for label, specs in (("with 3m", with_trends), ("without 3m", without_trends)):
        started = time.perf_counter()
        table = rolling_origin_validation(training, specs, config, n_origins=origins)
        table.insert(0, "features", label)
        print(f"{landing}: {label} in {time.perf_counter() - started:.0f} s", flush=True)
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, action="append", required=True)
    parser.add_argument("--origins", type=int, default=3)
    args = parser.parse_args()
    for landing in args.landing:
        table = compare(landing, args.origins)
        print(f"\n### {landing}\n")
        columns = ["features", "origin", "evaluation_months", *METRICS, "rows", "best_iteration"]
        print(table[columns].round(4).to_markdown(index=False))
        pivot = table.pivot(index="origin", columns="features", values=list(METRICS))
        print("\nwith minus without, per origin:\n")
        diff = pd.DataFrame({m: pivot[(m, "with 3m")] - pivot[(m, "without 3m")] for m in METRICS})
        print(diff.round(4).to_markdown())
        print("\nmean over origins: " + ", ".join(f"{m} {diff[m].mean():+.4f}" for m in METRICS) + "\n", flush=True)


if __name__ == "__main__":
    main()
