"""Model depth vs reason-code speed: the trade-off behind `max_depth`/`learning_rate` in models/training.yaml.

    uv run assurance generate --out /tmp/assure_eval/landing      # the default world (seed 7)
    uv run python bench/bench_model_depth.py --landing /tmp/assure_eval/landing

Trains each configuration on the same training set (the pipeline's own code) and reports
out-of-time AUC, Brier, ECE and reason-code throughput (TreeSHAP via LightGBM pred_contrib)
on 2,000 evaluation rows, side by side in one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from features import FEATURES
from models.evaluate_synthetic import training_frame_from_landing
from models.training import TrainingConfig, train_breach_model

CONFIGURATIONS = {
    "unbounded depth, lr 0.03": {"max_depth": -1, "learning_rate": 0.03},
    "depth 5, lr 0.05": {"max_depth": 5, "learning_rate": 0.05},
    "depth 4, lr 0.08": {"max_depth": 4, "learning_rate": 0.08},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    args = parser.parse_args()
    frame = training_frame_from_landing(args.landing)
    base = TrainingConfig.from_yaml().to_dict()
    print("| configuration | trees | train s | AUC | Brier | ECE | reason codes rows/s |\n|---|---|---|---|---|---|---|")
    for label, override in CONFIGURATIONS.items():
        config = TrainingConfig.from_dict({**base, **override})
        started = time.perf_counter()
        result = train_breach_model(frame, FEATURES, config)
        trained = time.perf_counter() - started
        rows = result.evaluation_frame.head(2000)
        started = time.perf_counter()
        result.model.reason_codes(rows, k=3)
        per_second = len(rows) / (time.perf_counter() - started)
        m = result.metrics
        print(
            f"| {label} | {result.model.booster.num_trees()} | {trained:.0f} | {m['evaluation_auc']:.4f} | "
            f"{m['evaluation_brier']:.4f} | {m['evaluation_ece']:.4f} | {per_second:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
