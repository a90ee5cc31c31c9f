"""The six-month loss rate: buyer-won refunds per dollar of a supplier's order value.

What the programme's fee (3% + $1) has to cover is refunds per covered dollar, not the
chance of any refund: the latter grows with the number of orders a supplier takes, the
former does not (docs/design.md §4). This module learns the loss rate of each coverage Trade
Assurance sells, out of time, from the labels of `models/labels.py`:

* ``pre_shipment``: late shipment and goods not received;
* ``post_delivery``: quality;
* ``other``: buyer-won disputes of any other reason (small; part of the total only).

One LightGBM booster per coverage with a **Tweedie** objective (a point mass at zero plus a
continuous positive part, the shape of a refund total) and the window's order value as
**exposure**: the target is refunds / exposure and the row weight is the exposure, so a
supplier counts in proportion to the dollars it trades, and the fitted mean is refunds per
dollar. The published loss rate is the sum of the three.

Like the breach model, the boosters are fitted on the earlier complete-label months, early-
stopped on the calibration months, and evaluated on the newest ones, untouched. Each
coverage is then scaled by one factor fitted on the calibration months (refund dollars over
predicted refund dollars), which absorbs the level drift a log link leaves. Size features
(`models.model_features.SIZE_FEATURES`) are held non-increasing, so volume is never read as
per-dollar risk.

Last, each coverage's rate is pulled toward that coverage's portfolio rate (refunds over order
value of every complete-label month the model learnt from) with a constant weight,
``portfolio_blend`` in loss_rate.yaml: rate = (1 - w) x booster rate + w x portfolio rate. Out of
time the boosters put the largest suppliers with a clean record far below what they go on to
lose (the log link and a dozen size inputs, each allowed only to lower the rate, stack up);
the blend keeps a floor under every rate that no feature can remove. Measured in
bench/results/risk_oracle_gap.md (2026-12-06).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.metrics import loss_rate_calibration_table, loss_rate_metrics
from models.model_features import ModelFeature, per_dollar_features, resolve_model_features
from models.reason_codes import top_reason_codes
from models.scoring import build_design_matrix
from models.tree_shap import booster_contributions, booster_from_text, booster_predict, booster_predict_and_contributions
from data_contracts.outcomes import CLAIMS, OUTCOME_DEFINITION_COLUMN
from models.training import (
    OutOfTimeSplit,
    TrainingConfig,
    category_levels,
    keyed_rows,
    learned_outcome_definition,
    rows_in_months,
    split_out_of_time,
    training_data_fingerprint,
)

DEFAULT_LOSS_CONFIG_PATH = Path(__file__).with_name("loss_rate.yaml")

# The label columns of models/labels.py this model learns from.
EXPOSURE_COLUMN = "forward_order_value_6m_usd"
TOTAL_REFUND_COLUMN = "breach_refund_usd_6m"
COVERAGE_REFUND_COLUMNS = {
    "pre_shipment": "pre_shipment_refund_usd_6m",
    "post_delivery": "post_delivery_refund_usd_6m",
}
COVERAGES = ("pre_shipment", "post_delivery", "other")

# The published estimates (published.supplier_scores).
LOSS_RATE_COLUMN = "loss_rate_6m"
COVERAGE_RATE_COLUMNS = {
    "pre_shipment": "loss_rate_pre_shipment_6m",
    "post_delivery": "loss_rate_post_delivery_6m",
}


def coverage_refunds(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Refund dollars per coverage; ``other`` is what the total holds beyond the two covers."""
    total = pd.to_numeric(frame[TOTAL_REFUND_COLUMN], errors="coerce").fillna(0.0).to_numpy(float)
    refunds = {
        coverage: pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy(float)
        for coverage, column in COVERAGE_REFUND_COLUMNS.items()
    }
    refunds["other"] = np.maximum(total - refunds["pre_shipment"] - refunds["post_delivery"], 0.0)
    return refunds


def exposure_rows(training: pd.DataFrame) -> pd.DataFrame:
    """Complete-label rows with order value in the window: the rows a loss rate is defined on."""
    exposure = pd.to_numeric(training[EXPOSURE_COLUMN], errors="coerce")
    return keyed_rows(training, (training[TOTAL_REFUND_COLUMN].notna() & (exposure > 0)).to_numpy())


class LossRateModel:
    """Per-coverage Tweedie boosters, each with its calibration factor, and the input recipe."""

    def __init__(
        self,
        booster_models: dict[str, str],
        scales: dict[str, float],
        features: list[ModelFeature],
        categories: dict[str, list[str]],
        medians: dict[str, float],
        metadata: dict[str, Any] | None = None,
        version: str | None = None,
        num_threads: int = 1,
        portfolio_rates: dict[str, float] | None = None,
        portfolio_blend: float = 0.0,
    ) -> None:
        self.booster_models = dict(booster_models)  # LightGBM text format per coverage
        self.scales = {k: float(v) for k, v in scales.items()}
        # Per coverage, refunds per order dollar over the training rows, and the weight each
        # published rate gives it (0: the scaled booster alone, as models trained before it).
        self.portfolio_rates = {k: float(v) for k, v in (portfolio_rates or {}).items()}
        self.portfolio_blend = float(portfolio_blend)
        if self.portfolio_blend and set(self.portfolio_rates) != set(COVERAGES):
            raise ValueError(f"portfolio_blend {self.portfolio_blend} needs a portfolio rate per coverage {COVERAGES}, "
                             f"got {sorted(self.portfolio_rates)}")
        self.features = list(features)
        self.categories = {name: list(values) for name, values in categories.items()}
        self.medians = dict(medians)
        self.metadata = dict(metadata or {})
        self.version = version
        self.num_threads = num_threads
        self._boosters: dict[str, lgb.Booster] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_boosters"] = {}
        state["features"] = [asdict(f) for f in self.features]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["features"] = [ModelFeature(**f) for f in state["features"]]
        state.setdefault("portfolio_rates", {})  # pickled before the blend existed: booster rates alone
        state.setdefault("portfolio_blend", 0.0)
        self.__dict__.update(state)

    def booster(self, coverage: str) -> lgb.Booster:
        if coverage not in self._boosters:
            self._boosters[coverage] = booster_from_text(self.booster_models[coverage])
        return self._boosters[coverage]

    def design_matrix(self, features_df: pd.DataFrame) -> pd.DataFrame:
        return build_design_matrix(features_df, self.features, self.categories)

    def component_rates(self, design: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per coverage (``COVERAGES``), the calibrated loss rate of each row of ``design``."""
        return {
            coverage: self.published_rate(coverage, booster_predict(self.booster(coverage), design, self.num_threads))
            if len(design) else np.empty(0)
            for coverage in COVERAGES
        }

    def published_rate(self, coverage: str, prediction: np.ndarray) -> np.ndarray:
        """The booster's ``prediction`` scaled, then blended with the coverage's portfolio rate."""
        scaled = self.scales[coverage] * prediction
        if not self.portfolio_blend:
            return scaled
        return (1.0 - self.portfolio_blend) * scaled + self.portfolio_blend * self.portfolio_rates[coverage]

    @staticmethod
    def rates_frame(components: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
        """The published columns from ``component_rates``: the two covers and the total."""
        out = pd.DataFrame({column: components[c] for c, column in COVERAGE_RATE_COLUMNS.items()}, index=index)
        out[LOSS_RATE_COLUMN] = sum(components.values())
        return out

    def predict_rates(self, features_df: pd.DataFrame) -> pd.DataFrame:
        """Per row: the loss rate of each coverage and their sum (``loss_rate_6m``)."""
        return self.rates_frame(self.component_rates(self.design_matrix(features_df)), features_df.index)

    def predict_loss_rate(self, features_df: pd.DataFrame) -> np.ndarray:
        return self.predict_rates(features_df)[LOSS_RATE_COLUMN].to_numpy()

    def contributions(self, features_df: pd.DataFrame) -> np.ndarray:
        design = self.design_matrix(features_df)
        return self.contributions_from_design(design, self.component_rates(design))

    def contributions_from_design(self, design: pd.DataFrame, components: dict[str, np.ndarray]) -> np.ndarray:
        """TreeSHAP contributions to the log of the total loss rate, rows x (features + bias).

        Each coverage's booster explains its own log rate; the total's log is approximated by
        weighting each coverage's contributions by its share of the row's total rate (exact
        when one coverage dominates), which keeps "what raises the loss rate" one ranking.
        ``components`` are ``component_rates(design)``."""
        threads = os.cpu_count() or 1
        return self._combined_contributions(
            components, {c: booster_contributions(self.booster(c), design, threads) for c in COVERAGES}
        )

    def component_rates_and_contributions(self, design: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``component_rates`` and ``contributions_from_design`` from one pass over each
        coverage booster's trees (the same rates, bit for bit, and the same contributions)."""
        if len(design) == 0:
            return self.component_rates(design), np.empty((0, len(self.features) + 1))
        components, contributions = {}, {}
        for coverage in COVERAGES:
            prediction, contributions[coverage] = booster_predict_and_contributions(
                self.booster(coverage), design, self.num_threads, os.cpu_count() or 1
            )
            components[coverage] = self.published_rate(coverage, prediction)
        return components, self._combined_contributions(components, contributions)

    def _combined_contributions(self, components: dict[str, np.ndarray], contributions: dict[str, np.ndarray]) -> np.ndarray:
        total = np.maximum(sum(components.values()), 1e-300)
        combined = np.zeros((len(total), len(self.features) + 1))
        for coverage in COVERAGES:
            combined += (components[coverage] / total)[:, None] * contributions[coverage]
        return combined

    def reason_codes(self, features_df: pd.DataFrame, k: int = 3) -> list[list[str]]:
        """Per row, up to ``k`` codes of the features that raise its loss rate the most."""
        if len(features_df) == 0:
            return []
        design = self.design_matrix(features_df)
        return top_reason_codes(
            self.contributions_from_design(design, self.component_rates(design)), design, self.features, self.medians, k=k
        )

    def pyfunc_predict(self, features_df: pd.DataFrame) -> pd.DataFrame:
        """What the registered model's pyfunc returns (``models.mlflow_pyfunc``)."""
        return self.predict_rates(features_df)


@dataclass
class LossRateTrainingResult:
    model: LossRateModel
    config: TrainingConfig
    split: OutOfTimeSplit
    features: list[ModelFeature]
    metrics: dict[str, float]  # "<window>_<coverage>_<metric>", e.g. evaluation_total_gini
    evaluation_frame: pd.DataFrame  # evaluation rows: keys, labels, exposure, predicted rates
    calibration_tables: dict[str, pd.DataFrame]  # evaluation window, per coverage and total
    feature_importance: pd.DataFrame
    data_fingerprint: str
    best_iteration: int
    row_counts: dict[str, int] = field(default_factory=dict)
    label_column: str = LOSS_RATE_COLUMN
    outcome_definition: str = CLAIMS  # what the refunds were defined from (data_contracts.outcomes)
    # The rows the fingerprint is taken on (logged as the run's MLflow dataset).
    training_rows: pd.DataFrame | None = field(default=None, repr=False)


def loss_config_from_yaml(path: str | Path = DEFAULT_LOSS_CONFIG_PATH) -> TrainingConfig:
    return TrainingConfig.from_yaml(path)


def train_loss_rate_model(
    training: pd.DataFrame,
    feature_specs_or_columns=None,
    config: TrainingConfig | None = None,
    data_fingerprint: str | None = None,
    label_rows: pd.DataFrame | None = None,
) -> LossRateTrainingResult:
    """Fit, calibrate and evaluate the per-coverage loss-rate boosters out of time.

    ``data_fingerprint``: ``training_data_fingerprint(exposure_rows(training))`` when the
    caller has taken it already (``models.vintages``' reuse key); ``label_rows``: that
    ``exposure_rows(training)`` itself, likewise (not copied again)."""
    config = config or loss_config_from_yaml()
    rows = exposure_rows(training) if label_rows is None else label_rows
    if rows.empty:
        raise ValueError("no complete-label supplier-month with order value in its window: no loss rate to learn")
    features = per_dollar_features(resolve_model_features(feature_specs_or_columns, rows))
    split = split_out_of_time(rows["as_of_date"].unique(), config)
    windows = {name: rows_in_months(rows, months) for name, months in asdict(split).items()}
    categories = category_levels(windows["train"], features)
    designs = {name: build_design_matrix(frame, features, categories) for name, frame in windows.items()}
    refunds = {name: coverage_refunds(frame) for name, frame in windows.items()}
    exposure = {name: frame[EXPOSURE_COLUMN].to_numpy(float) for name, frame in windows.items()}

    params = config.lightgbm_params([f.risk_direction for f in features])
    params["min_data_in_leaf"] = min(config.min_data_in_leaf, max(10, len(windows["train"]) // 50))
    power = float(params.get("tweedie_variance_power", 1.5))
    categorical = [f.name for f in features if f.categorical] or "auto"
    boosters: dict[str, str] = {}
    scales: dict[str, float] = {}
    best: dict[str, int] = {}
    importance = []
    # Every coverage learns from the same design matrices; only the target differs. LightGBM
    # bins the features, never the target, so each window is binned once and relabelled per
    # coverage: the boosters are the ones a Dataset per coverage gives, for a third of the binning.
    # Weights normalised to mean 1: the fit is the same, leaf sizes keep their meaning.
    weight = {window: exposure[window] / exposure["train"].mean() for window in ("train", "calibration")}
    train_set = lgb.Dataset(designs["train"], weight=weight["train"], categorical_feature=categorical, free_raw_data=False)
    valid_set = lgb.Dataset(designs["calibration"], weight=weight["calibration"], reference=train_set)
    for coverage in COVERAGES:
        train_set.set_label(refunds["train"][coverage] / exposure["train"])
        valid_set.set_label(refunds["calibration"][coverage] / exposure["calibration"])
        has_refunds = refunds["calibration"][coverage].sum() > 0
        booster = lgb.train(
            params, train_set, num_boost_round=config.max_boost_rounds, valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)] if has_refunds else [],
        )
        best[coverage] = booster.best_iteration or booster.current_iteration()
        boosters[coverage] = booster.model_to_string(num_iteration=best[coverage])
        predicted = booster.predict(designs["calibration"], num_iteration=best[coverage])
        predicted_refund = float(np.sum(predicted * exposure["calibration"]))
        scales[coverage] = float(refunds["calibration"][coverage].sum() / predicted_refund) if predicted_refund > 0 else 1.0
        importance.append(
            pd.DataFrame({
                "coverage": coverage, "feature": booster.feature_name(),
                "gain": booster.feature_importance("gain", iteration=best[coverage]),
            })
        )
    del train_set, valid_set  # the binned rows: every booster is trained

    # Every complete-label month the model learnt from, the evaluation months included: the
    # portfolio level nearest to the months it will score.
    all_refunds = coverage_refunds(rows)
    all_exposure = float(rows[EXPOSURE_COLUMN].to_numpy(float).sum())
    portfolio_rates = {c: float(all_refunds[c].sum() / all_exposure) for c in COVERAGES}
    medians = {
        f.name: float(np.nanmedian(designs["train"][f.name].to_numpy()))
        if not f.categorical and designs["train"][f.name].notna().any() else 0.0
        for f in features
    }
    fingerprint = data_fingerprint or training_data_fingerprint(rows)
    model = LossRateModel(
        boosters, scales, features, categories, medians,
        metadata={"split": split.describe(), "best_iteration": best, "scales": scales,
                  "data_fingerprint": fingerprint, "tweedie_variance_power": power,
                  "portfolio_rates": portfolio_rates, "portfolio_blend": config.portfolio_blend,
                  OUTCOME_DEFINITION_COLUMN: learned_outcome_definition(rows)},
        num_threads=config.num_threads,
        portfolio_rates=portfolio_rates,
        portfolio_blend=config.portfolio_blend,
    )

    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    evaluation_frame = pd.DataFrame()
    for window, frame in windows.items():
        design = designs.pop(window)  # released once its window is scored
        rates = model.rates_frame(model.component_rates(design), frame.index)  # predict_rates, design built once
        del design
        total_refund = sum(refunds[window].values())
        per_coverage = {**{c: (refunds[window][c], rates[COVERAGE_RATE_COLUMNS[c]].to_numpy())
                           for c in COVERAGE_RATE_COLUMNS},
                        "total": (total_refund, rates[LOSS_RATE_COLUMN].to_numpy())}
        for name, (refund, predicted) in per_coverage.items():
            for metric, value in loss_rate_metrics(refund, exposure[window], predicted, power).items():
                metrics[f"{window}_{name}_{metric}"] = value
            if window == "evaluation":
                tables[name] = loss_rate_calibration_table(refund, exposure[window], predicted)
        if window == "evaluation":
            evaluation_frame = pd.concat([frame.reset_index(drop=True), rates.reset_index(drop=True)], axis=1)

    importance_frame = (
        pd.concat(importance).groupby("feature", as_index=False)["gain"].sum()
        .sort_values(["gain", "feature"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    )
    return LossRateTrainingResult(
        model=model, config=config, split=split, features=features, metrics=metrics,
        evaluation_frame=evaluation_frame, calibration_tables=tables, feature_importance=importance_frame,
        data_fingerprint=fingerprint, best_iteration=int(max(best.values())),
        row_counts={name: len(frame) for name, frame in windows.items()}
        | {"dropped_no_exposure_or_incomplete": len(training) - len(rows)},
        outcome_definition=learned_outcome_definition(rows),
        training_rows=rows,
    )
