"""Experiment (issue 12): does holding size non-increasing cost the default model its AUC?

    uv run python bench/bench_default_size_constraint.py LZ

Trains the default model (training.yaml, the catalogue's inputs, label ``default_6m``) and the
informed learner (the same, also handed the generator's latent state at T) on the landing zone's training frame
(built and cached as ``bench/bench_loss_rate_published.py`` does), once with every size input held
non-increasing (as the pipeline does) and once unconstrained, and prints each against the oracle on
the evaluation window (``models.evaluation.default_against_oracle``). The default label needs a
minimum number of orders falling due, so a learner free to read size could learn that tiny
suppliers cannot default; this measures what that freedom is worth. Results:
bench/results/risk_oracle_gap.md (session 17).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_loss_rate_published import cached_training_frame  # noqa: E402
from features import FEATURES  # noqa: E402
from models.evaluation import (  # noqa: E402
    LATENT_STATE_COLUMNS, RISK_ORACLE_COLUMNS, default_against_oracle, read_truth, train_informed_learner,
)
from models.training import TrainingConfig, train_breach_model  # noqa: E402

DEFAULT_LABEL = "default_6m"


def main(landing: Path) -> None:
    training = cached_training_frame(landing)  # built from the landing zone on first use
    truth = read_truth(landing, [*RISK_ORACLE_COLUMNS, *LATENT_STATE_COLUMNS])
    config = TrainingConfig.from_yaml()
    lines = []
    for constrained in (True, False):
        model = train_breach_model(training, FEATURES, config, label_column=DEFAULT_LABEL, size_non_increasing=constrained)
        informed = train_informed_learner(training, truth, FEATURES, config, label_column=DEFAULT_LABEL,
                                          size_non_increasing=constrained)
        metrics = default_against_oracle(model, truth, informed)["metrics"]
        for forecaster in ("model", "informed_learner", "oracle"):
            lines.append({"world": landing.name, "size inputs": "non-increasing" if constrained else "free",
                          "forecaster": forecaster, **metrics.loc[forecaster, ["auc", "brier", "auc_gap_to_oracle"]]})
    print(pd.DataFrame(lines).round(4).to_markdown(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
