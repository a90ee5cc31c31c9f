"""Experiment: the loss-rate model's shape out of time, vintage by vintage.

    uv run python bench/bench_loss_rate_vintages.py --landing LZ [--variants current,powercal]

Retrains the loss-rate model as each quarterly vintage 2024-12 .. 2025-09 would
(`models.vintages.rows_known_at`), scores the vintage's own month end and the three after it,
and prints, over all those rows, model / realised - 1 by decile of the model's rate (exposure
weighted). Variants: ``current`` (models/loss_rate.yaml), ``power1.2`` (Tweedie power 1.2),
``leaf800`` (min_data_in_leaf 800), ``powercal`` (current, then refunds ~ a x rate^b fitted by
a Poisson regression with exposure weights on the vintage's own calibration months; prints a, b).
Prints only; the readings are in bench/results/risk_oracle_gap.md. The training frame is
cached beside the landing zone (``<LZ>.training.parquet``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features import FEATURES  # noqa: E402
from models.evaluate_synthetic import training_frame_from_landing  # noqa: E402
from models.labels import add_months  # noqa: E402
from models.loss_rate import EXPOSURE_COLUMN, TOTAL_REFUND_COLUMN, exposure_rows, loss_config_from_yaml, train_loss_rate_model  # noqa: E402
from models.metrics import weighted_gini  # noqa: E402
from models.vintages import rows_known_at  # noqa: E402

VINTAGES = [date(2024, 12, 31), date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30)]
VARIANTS = {
    "current": lambda c: c,
    "power1.2": lambda c: replace(c, lightgbm_overrides={**c.lightgbm_overrides, "tweedie_variance_power": 1.2}),
    "leaf800": lambda c: replace(c, min_data_in_leaf=800),
    "powercal": lambda c: c,
}


def power_calibration(known: pd.DataFrame, result) -> tuple[float, float]:
    """(log a, b) of refunds ~ a x rate^b on the vintage's calibration months."""
    from sklearn.linear_model import PoissonRegressor

    rows = exposure_rows(known[known["as_of_date"].isin(set(result.split.calibration))])
    rate = result.model.predict_loss_rate(rows)
    exposure = rows[EXPOSURE_COLUMN].to_numpy(float)
    fit = PoissonRegressor(alpha=0, max_iter=1000).fit(
        np.log(np.maximum(rate, 1e-9))[:, None], rows[TOTAL_REFUND_COLUMN].to_numpy(float) / exposure, sample_weight=exposure)
    return float(fit.intercept_), float(fit.coef_[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--variants", default="current,powercal", help=f"comma-separated: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    cache = args.landing.with_name(args.landing.name + ".training.parquet")
    if cache.exists():
        training = pd.read_parquet(cache)
        training["as_of_date"] = pd.to_datetime(training["as_of_date"]).dt.date
    else:
        training = training_frame_from_landing(args.landing)
        training.to_parquet(cache)
    for name in args.variants.split(","):
        config = VARIANTS[name](loss_config_from_yaml())
        scored = []
        for vintage in VINTAGES:
            known = rows_known_at(training, vintage)
            result = train_loss_rate_model(known, FEATURES, config)
            months = training["as_of_date"]
            rows = exposure_rows(training[(months >= vintage) & (months <= add_months(vintage, 3))])
            rate = result.model.predict_loss_rate(rows)
            if name == "powercal":
                log_a, b = power_calibration(known, result)
                print(f"{vintage} power fit log a {log_a:.3f} b {b:.3f}", flush=True)
                rate = np.exp(log_a) * np.maximum(rate, 1e-9) ** b
            scored.append(rows.assign(rate=rate))
        frame = pd.concat(scored)
        exposure, refund, rate = (frame[c].to_numpy(float) for c in (EXPOSURE_COLUMN, TOTAL_REFUND_COLUMN, "rate"))
        decile = pd.qcut(pd.Series(rate).rank(method="first"), 10, labels=False).to_numpy()
        errors = [(rate[decile == d] * exposure[decile == d]).sum() / refund[decile == d].sum() - 1 for d in range(10)]
        print(f"{args.landing} {name}: {len(frame):,} rows, predicted / realised refunds {(rate * exposure).sum() / refund.sum():.3f}, "
              f"Gini {weighted_gini(refund, exposure, rate):.4f}; model / realised - 1 by decile: "
              + ", ".join(f"{e:+.0%}" for e in errors), flush=True)


if __name__ == "__main__":
    main()
