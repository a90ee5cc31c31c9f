"""Train the six-month breach model out of time: fit, calibrate later, evaluate latest.

The complete-label months of the training frame are split in time order:

    | warm-up | train .............. | embargo | calibration | evaluation |
      skipped   booster fitted here    skipped   early stop +   latest complete
                                                 calibrator     months, untouched

* The booster never sees a calibration or evaluation month; the calibrator is fitted on
  months after the booster's, so it also absorbs drift; the evaluation months are the
  newest whose six-month label window is complete (docs/design.md §4), touched by nothing.
* ``embargo_months`` can drop months between train and calibration: labels of the last
  training months look six months ahead and so overlap the calibration months' outcome
  period. The default keeps them (0) because history is short; set 6 for a strict purge.
* Early stopping watches the calibration window (never the evaluation window).
* Determinism: fixed seeds, ``deterministic=True``, ``force_row_wise=True`` and a fixed
  ``num_threads``: the same frame and config give bit-identical predictions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml
from pandas.core.util.hashing import combine_hash_arrays  # how hash_pandas_object combines a frame's columns
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from data_contracts.outcomes import CLAIMS, OUTCOME_DEFINITION_COLUMN
from models.calibration import CalibrationChoice, fit_calibrator
from models.config_errors import one_line
from models.linear_score import LinearScore
from models.metrics import classification_metrics
from models.model_features import KEY_COLUMNS, LABEL_COLUMN, ModelFeature, per_dollar_features, resolve_model_features
from models.scoring import BreachRiskModel, build_design_matrix

DEFAULT_CONFIG_PATH = Path(__file__).with_name("training.yaml")
Months = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
# the calibrated probability of each row in a result's window frames (evaluation_frame, ...)
PROBABILITY_COLUMN = "predicted_probability"
Share = Annotated[float, Field(gt=0, le=1)]


class TrainingConfigError(ValueError):
    """A training YAML that cannot be used; one line naming the file, the key and what is allowed."""


# A pydantic dataclass: every value is checked when the config is built (from a file, in code
# or by dataclasses.replace), and a key that is not a field is refused.
@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class TrainingConfig:
    calibration_months: Annotated[int, Field(ge=1)] = 3
    evaluation_months: Annotated[int, Field(ge=1)] = 3
    embargo_months: Months = 0
    # The first months of a history have truncated feature windows (a six-month rate at
    # the first month end sees one month) and labels without orders in flight: they teach
    # the booster relationships that never hold again. Skip this many leading months (as
    # long as at least 6 months remain). Off by default: on the default synthetic world
    # skipping 5 months cost more (less data) than it gained (AUC 0.881 vs 0.886).
    feature_warmup_months: Months = 0
    # Last as-of date the split may use (None: the newest complete month). Rolling-origin
    # validation moves this back in time.
    evaluation_end: date | None = None
    calibration_method: Literal["auto", "isotonic", "platt", "identity"] = "auto"
    # Weight training rows by recency: a row ``a`` months before the last training month
    # weighs 0.5 ** (a / half_life). None: all months weigh the same. Meant for drifting
    # marketplaces; off by default (a 6-month half-life lowered AUC on synthetic data).
    recency_half_life_months: Positive | None = None
    # Blend the booster with a sign-constrained logistic regression fitted on the same
    # training months (models/linear_score.py): raw log-odds = (1 - w) * booster + w *
    # logistic, then the one calibrator, fitted on that combined score. 0: booster alone.
    # Off by default here; training.yaml sets the measured value.
    logistic_blend: Annotated[float, Field(ge=0, lt=1)] = 0.0
    logistic_C: Positive = 1.0  # inverse L2 strength of the logistic, as scikit-learn's C
    # Loss rate only (models/loss_rate.py): each coverage's published rate = (1 - w) * scaled
    # booster + w * that coverage's portfolio rate on the training rows. 0: booster alone.
    # loss_rate.yaml sets the measured value; the breach and default models ignore it.
    portfolio_blend: Annotated[float, Field(ge=0, lt=1)] = 0.0
    seed: int = 7
    num_threads: Annotated[int, Field(ge=1)] = 1  # see training.yaml: faster than 2 on a shared 2-core machine
    learning_rate: Positive = 0.03
    num_leaves: Annotated[int, Field(ge=2)] = 15
    max_depth: int = -1  # -1: no limit
    min_data_in_leaf: Annotated[int, Field(ge=1)] = 200
    feature_fraction: Share = 0.9
    bagging_fraction: Share = 0.8
    bagging_freq: Months = 1
    lambda_l2: Annotated[float, Field(ge=0)] = 5.0
    cat_smooth: Annotated[float, Field(ge=0)] = 20.0
    max_boost_rounds: Annotated[int, Field(ge=1)] = 1500
    early_stopping_rounds: Annotated[int, Field(ge=1)] = 100
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"] = "intermediate"
    lightgbm_overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path = DEFAULT_CONFIG_PATH) -> TrainingConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise TrainingConfigError(f"{path}: not valid YAML: {exc}") from None
        try:
            return cls.from_dict(data)
        except TrainingConfigError as exc:
            raise TrainingConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Validated (an ISO date string for ``evaluation_end`` is read as a date)."""
        try:
            return TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            raise TrainingConfigError(one_line(exc, lambda _tag: TypeAdapter(cls).json_schema(), root="training config")) from None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evaluation_end"] = self.evaluation_end.isoformat() if self.evaluation_end else None
        return data

    def lightgbm_params(self, monotone: list[int]) -> dict[str, Any]:
        params = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": self.cat_smooth,
            "monotone_constraints": monotone,
            "monotone_constraints_method": self.monotone_constraints_method,
            "seed": self.seed,
            "bagging_seed": self.seed,
            "feature_fraction_seed": self.seed,
            "data_random_seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }
        params.update(self.lightgbm_overrides)
        return params


@dataclass(frozen=True)
class OutOfTimeSplit:
    train: list[date]
    calibration: list[date]
    evaluation: list[date]

    def describe(self) -> dict[str, str]:
        def span(months: list[date]) -> str:
            return f"{months[0].isoformat()}..{months[-1].isoformat()} ({len(months)} months)"

        return {
            "train": span(self.train),
            "calibration": span(self.calibration),
            "evaluation": span(self.evaluation),
        }


@dataclass
class TrainingResult:
    model: BreachRiskModel
    config: TrainingConfig
    split: OutOfTimeSplit
    features: list[ModelFeature]
    calibration: CalibrationChoice
    metrics: dict[str, float]  # "<window>_<metric>", e.g. evaluation_auc, calibration_ece
    evaluation_frame: pd.DataFrame  # evaluation rows: keys, label, inputs, raw and calibrated p
    calibration_frame: pd.DataFrame
    feature_importance: pd.DataFrame
    data_fingerprint: str
    best_iteration: int
    row_counts: dict[str, int]
    label_column: str = LABEL_COLUMN  # the binary outcome learned (breach_6m, default_6m)
    outcome_definition: str = CLAIMS  # what the label was defined from (data_contracts.outcomes)
    # The complete-label rows the fingerprint is taken on (logged as the run's MLflow dataset).
    training_rows: pd.DataFrame | None = field(default=None, repr=False)


def learned_outcome_definition(rows: pd.DataFrame) -> str:
    """The outcome definition a training frame's labels follow (its ``outcome_definition``
    column; ``claims`` for frames built before definitions were recorded)."""
    if OUTCOME_DEFINITION_COLUMN not in rows.columns:
        return CLAIMS
    definitions = sorted(rows[OUTCOME_DEFINITION_COLUMN].dropna().unique())
    if len(definitions) > 1:
        raise ValueError(f"training rows mix outcome definitions {definitions}: build the training set once")
    return definitions[0] if definitions else CLAIMS


def model_outcome_definition(model) -> str:
    """The outcome definition a registered model learned (``claims`` for models trained
    before definitions were recorded: they all learned from claims)."""
    return getattr(model, "metadata", {}).get(OUTCOME_DEFINITION_COLUMN, CLAIMS)


def complete_label_rows(training: pd.DataFrame, label_column: str = LABEL_COLUMN) -> pd.DataFrame:
    """Rows usable for training: label window complete and label present."""
    if label_column not in training.columns:
        raise KeyError(f"training frame has no label column {label_column!r}")
    return keyed_rows(training, training[label_column].notna().to_numpy())


def keyed_rows(training: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows ``keep`` marks whose label window is complete (``label_complete``, when the
    frame has it), ``as_of_date`` as dates, in key order (stable), indexed 0..n-1.

    One copy of the kept rows: a frame already in key order (the stored training set) is not
    sorted into a second one."""
    if "label_complete" in training.columns:
        keep = keep & training["label_complete"].fillna(False).astype(bool).to_numpy()
    rows = training.take(np.flatnonzero(keep))
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date.to_numpy()
    order = key_order(rows)
    if order is not None:
        rows = rows.take(order)
    rows.index = pd.RangeIndex(len(rows))
    return rows


def key_order(frame: pd.DataFrame) -> np.ndarray | None:
    """The positions of ``frame``'s rows in key order (a stable sort); None when they are in it already."""
    keys = frame[list(KEY_COLUMNS)].reset_index(drop=True)
    order = keys.sort_values(list(KEY_COLUMNS), kind="mergesort").index.to_numpy()
    return None if (order == np.arange(len(frame))).all() else order


def rows_in_months(rows: pd.DataFrame, months: Iterable[date]) -> pd.DataFrame:
    """The rows of ``months``. In rows in month order (``complete_label_rows``) a window's
    months are one run of rows: returned as a slice sharing their memory, not a copy (a
    window is read, never written)."""
    return rows_where(rows, rows["as_of_date"].isin(set(months)).to_numpy())


def rows_where(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows ``keep`` marks: a slice sharing ``frame``'s memory when they are one run of
    rows (treat it as read-only), else a copy."""
    positions = np.flatnonzero(keep)
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return frame.iloc[positions[0] : positions[-1] + 1]
    return frame[keep]


def split_out_of_time(months: Iterable[date], config: TrainingConfig) -> OutOfTimeSplit:
    """Train / calibration / evaluation months, shrinking the windows on short histories."""
    months = sorted(set(months))
    if config.evaluation_end is not None:
        months = [m for m in months if m <= config.evaluation_end]
    warmup = min(config.feature_warmup_months, max(0, len(months) - 6))
    months = months[warmup:]
    if len(months) < 3:
        raise ValueError(
            f"need at least 3 months with complete labels for an out-of-time split, got {len(months)}"
        )
    # Keep at least half of the history for the booster.
    share = max(1, len(months) // 4)
    evaluation = min(config.evaluation_months, share)
    calibration = min(config.calibration_months, share)
    embargo = min(config.embargo_months, max(0, len(months) - evaluation - calibration - 1))
    train_end = len(months) - evaluation - calibration - embargo
    return OutOfTimeSplit(
        train=months[:train_end],
        calibration=months[train_end + embargo : len(months) - evaluation],
        evaluation=months[len(months) - evaluation :],
    )


def training_data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the rows (in key order) and column names: same data, same fingerprint.

    The hash ``pd.util.hash_pandas_object(frame in key order, columns sorted, index=False)``
    gives, taken column by column, so the rows are never copied (sorted or reordered)."""
    columns = sorted(frame.columns)
    order = key_order(frame)
    hashes = (pd.util.hash_pandas_object(frame[column], index=False).to_numpy() for column in columns)
    combined = combine_hash_arrays(
        (values if order is None else values[order] for values in hashes), len(columns)
    )
    digest = hashlib.sha256("|".join(columns).encode())
    digest.update(combined.tobytes())
    return digest.hexdigest()


def recency_weights(as_of_dates: pd.Series, half_life_months: float | None) -> np.ndarray | None:
    """0.5 ** (months before the newest date / half-life); None when not weighting."""
    if not half_life_months:
        return None
    dates = pd.to_datetime(as_of_dates)
    newest = dates.max()
    age_months = (newest.year - dates.dt.year) * 12 + (newest.month - dates.dt.month)
    return np.power(0.5, age_months.to_numpy(dtype=float) / half_life_months)


def category_levels(frame: pd.DataFrame, features: list[ModelFeature]) -> dict[str, list[str]]:
    """Fixed, sorted category lists per categorical feature, as seen in training."""
    return {
        f.name: sorted(str(v) for v in frame[f.name].dropna().unique())
        for f in features
        if f.categorical
    }


def train_breach_model(
    training: pd.DataFrame,
    feature_specs_or_columns: Iterable | None = None,
    config: TrainingConfig | None = None,
    label_column: str = LABEL_COLUMN,
    size_non_increasing: bool = False,
    data_fingerprint: str | None = None,
    label_rows: pd.DataFrame | None = None,
) -> TrainingResult:
    """Fit, calibrate and evaluate a binary risk model on a features-joined-with-labels frame.

    ``training`` holds ``as_of_date``, ``supplier_id``, the ``label_column`` (``breach_6m``
    by default; ``default_6m`` for the default model), optionally ``label_complete``
    (incomplete rows are dropped) and the feature columns. ``size_non_increasing`` holds
    every size feature non-increasing (``models.model_features.per_dollar_features``), as the
    default model does: how much a supplier trades must never read as its risk.
    ``data_fingerprint``: ``training_data_fingerprint`` of ``complete_label_rows(training,
    label_column)`` when the caller has taken it already (``models.vintages``' reuse key);
    ``label_rows``: that ``complete_label_rows`` itself, likewise (not copied again).
    """
    config = config or TrainingConfig()
    rows = complete_label_rows(training, label_column) if label_rows is None else label_rows
    features = resolve_model_features(feature_specs_or_columns, rows)
    if size_non_increasing:
        features = per_dollar_features(features)
    split = split_out_of_time(rows["as_of_date"].unique(), config)
    row_counts_warmup = int((rows["as_of_date"] < min(split.train)).sum())
    train_rows = rows_in_months(rows, split.train)
    calibration_rows = rows_in_months(rows, split.calibration)
    evaluation_rows = rows_in_months(rows, split.evaluation)

    categories = category_levels(train_rows, features)
    x_train = build_design_matrix(train_rows, features, categories)
    x_calibration = build_design_matrix(calibration_rows, features, categories)
    y_train = train_rows[label_column].astype(int).to_numpy()
    y_calibration = calibration_rows[label_column].astype(int).to_numpy()

    weights = recency_weights(train_rows["as_of_date"], config.recency_half_life_months)
    if not 0.0 <= config.logistic_blend < 1.0:
        raise ValueError(f"logistic_blend must be in [0, 1), got {config.logistic_blend}")
    linear = None
    if config.logistic_blend > 0:
        linear = LinearScore.fit(x_train, y_train, features, categories, C=config.logistic_C, sample_weight=weights)
    booster_weight, linear_weight = 1.0 - config.logistic_blend, config.logistic_blend

    params = config.lightgbm_params([f.risk_direction for f in features])
    # Small worlds (demos, tests): a leaf minimum sized for 100k rows would forbid every
    # split, so it shrinks to 2% of the training rows (never below 10).
    params["min_data_in_leaf"] = min(config.min_data_in_leaf, max(10, len(train_rows) // 50))
    categorical_names = [f.name for f in features if f.categorical]
    train_set = lgb.Dataset(
        x_train, y_train, weight=weights,
        categorical_feature=categorical_names or "auto", free_raw_data=False,
    )
    valid_set = lgb.Dataset(x_calibration, y_calibration, reference=train_set)
    callbacks = [lgb.early_stopping(config.early_stopping_rounds, verbose=False)]
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.max_boost_rounds,
        valid_sets=[valid_set],
        callbacks=callbacks if len(np.unique(y_calibration)) == 2 else [],
    )
    del train_set, valid_set  # the binned rows: the booster is trained
    best_iteration = booster.best_iteration or booster.current_iteration()
    booster_text = booster.model_to_string(num_iteration=best_iteration)

    medians = {
        f.name: float(np.nanmedian(x_train[f.name].to_numpy()))
        if not f.categorical and x_train[f.name].notna().any()
        else 0.0
        for f in features
    }
    uncalibrated = BreachRiskModel(
        booster_text, features, categories, calibrator=fit_calibrator([], [], "identity").calibrator,
        medians=medians, num_threads=config.num_threads, linear=linear,
        booster_weight=booster_weight, linear_weight=linear_weight,
    )
    raw_calibration = uncalibrated._raw_proba(x_calibration)  # raw_proba(calibration_rows), design built once
    del x_calibration
    calibration = fit_calibrator(raw_calibration, y_calibration, config.calibration_method, seed=config.seed)
    fingerprint = data_fingerprint or training_data_fingerprint(rows)
    model = BreachRiskModel(
        booster_text,
        features,
        categories,
        calibrator=calibration.calibrator,
        medians=medians,
        metadata={
            "split": split.describe(),
            "calibration_method": calibration.method,
            "best_iteration": int(best_iteration),
            "data_fingerprint": fingerprint,
            "logistic_blend": float(config.logistic_blend),
            OUTCOME_DEFINITION_COLUMN: learned_outcome_definition(rows),
        },
        num_threads=config.num_threads,
        linear=linear,
        booster_weight=booster_weight, linear_weight=linear_weight,
    )

    metrics: dict[str, float] = {}
    frames: dict[str, pd.DataFrame] = {}
    for window, window_rows in (
        ("train", train_rows),
        ("calibration", calibration_rows),
        ("evaluation", evaluation_rows),
    ):
        # the calibrator changes no raw score: the calibration rows' are the ones it was fitted on
        if window == "calibration":
            raw = raw_calibration
        elif window == "train":  # model.raw_proba(train_rows) on the design matrix built once, then released
            raw, x_train = model._raw_proba(x_train), None
        else:
            raw = model.raw_proba(window_rows)
        calibrated = model.calibrator.transform(raw)
        y = window_rows[label_column].astype(int).to_numpy()
        for name, value in classification_metrics(y, calibrated).items():
            metrics[f"{window}_{name}"] = value
        metrics[f"{window}_uncalibrated_ece"] = classification_metrics(y, raw)["ece"]
        if window == "train":
            continue  # no result keeps the train window's rows: they are not copied
        frame = window_rows.reset_index(drop=True)  # a copy: the window is a slice of the rows
        frame["raw_probability"] = raw
        frame[PROBABILITY_COLUMN] = calibrated
        frames[window] = frame
    for method, ece in calibration.cv_ece.items():
        metrics[f"calibration_cv_ece_{method}"] = ece

    importance = pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain", iteration=best_iteration),
            "split": booster.feature_importance("split", iteration=best_iteration),
        }
    ).sort_values(["gain", "feature"], ascending=[False, True], kind="mergesort")
    return TrainingResult(
        model=model,
        config=config,
        split=split,
        features=features,
        calibration=calibration,
        metrics=metrics,
        evaluation_frame=frames["evaluation"],
        calibration_frame=frames["calibration"],
        feature_importance=importance.reset_index(drop=True),
        data_fingerprint=fingerprint,
        best_iteration=int(best_iteration),
        row_counts={
            "train": len(train_rows),
            "calibration": len(calibration_rows),
            "evaluation": len(evaluation_rows),
            "dropped_incomplete": len(training) - len(rows),
            "dropped_warmup": row_counts_warmup,
        },
        label_column=label_column,
        outcome_definition=learned_outcome_definition(rows),
        training_rows=rows,
    )
