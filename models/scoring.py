"""A deployable binary risk model: booster + calibrator + the exact input recipe.

The breach model and the default model (``models/training.py`` with another label) are both
``BreachRiskModel``s; the loss-rate model is ``models.loss_rate.LossRateModel``.

``BreachRiskModel`` is what the registry stores (as plain files, ``models.model_files``,
behind the pyfunc of ``models.mlflow_pyfunc``) and what the pipeline scores with. It owns everything needed to turn a ``compute_supplier_features``
frame into calibrated six-month breach probabilities, so scoring never depends on
training code: the ordered feature list, their risk directions, the fixed category lists
of the categorical columns (a category unseen in training scores as missing), the
training medians (for reason-code sides) and the calibrator.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator
from models.linear_score import LinearScore
from models.model_features import ModelFeature
from models.reason_codes import top_reason_codes
from models.tree_shap import (
    booster_contributions,
    booster_from_text,
    booster_predict,
    booster_predict_and_contributions,
)


class BreachRiskModel:
    def __init__(
        self,
        booster_model: str,
        features: list[ModelFeature],
        categories: dict[str, list[str]],
        calibrator: Calibrator,
        medians: dict[str, float],
        metadata: dict[str, Any] | None = None,
        version: str | None = None,
        num_threads: int = 2,
        linear: LinearScore | None = None,
        booster_weight: float = 1.0,
        linear_weight: float = 1.0,
    ) -> None:
        self.booster_model = booster_model  # LightGBM text format: portable across pickles
        self.features = list(features)
        self.categories = {name: list(values) for name, values in categories.items()}
        self.calibrator = calibrator
        self.medians = dict(medians)
        self.metadata = dict(metadata or {})
        self.version = version
        self.num_threads = num_threads
        # logistic_blend: raw log-odds = booster_weight * booster + linear_weight * linear
        # (no linear: the booster alone, exactly as before the blend existed)
        self.linear = linear
        self.booster_weight = booster_weight
        self.linear_weight = linear_weight
        self._booster: lgb.Booster | None = None

    # -- pickling (models registered before models.model_files were cloudpickled; an
    # old home's models still load): rebuild the booster from its text after loading ------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_booster"] = None
        state["features"] = [asdict(f) for f in self.features]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["features"] = [ModelFeature(**f) for f in state["features"]]
        state.setdefault("linear", None)  # models pickled before logistic_blend
        state.setdefault("booster_weight", 1.0)
        state.setdefault("linear_weight", 1.0)
        self.__dict__.update(state)

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = booster_from_text(self.booster_model)
        return self._booster

    @property
    def feature_columns(self) -> list[str]:
        return [f.name for f in self.features]

    # -- inputs -------------------------------------------------------------------------
    def design_matrix(self, features_df: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, in order, typed exactly as in training."""
        return build_design_matrix(features_df, self.features, self.categories)

    # -- outputs ------------------------------------------------------------------------
    def raw_proba(self, features_df: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probabilities of the booster (blended with the logistic, if any)."""
        if len(features_df) == 0:
            return np.empty(0)
        return self._raw_proba(self.design_matrix(features_df))

    def _raw_proba(self, design: pd.DataFrame) -> np.ndarray:
        if self.linear is None:
            return booster_predict(self.booster, design, self.num_threads)
        return _sigmoid(self.raw_score(design))

    def raw_score(self, design: pd.DataFrame) -> np.ndarray:
        """Log-odds before calibration: the booster's raw score, blended with the logistic's."""
        score = booster_predict(self.booster, design, self.num_threads, raw_score=True)
        return score if self.linear is None else self._blended_score(score, self.linear.decision_function(design))

    def _blended_score(self, booster_score: np.ndarray, linear_score: np.ndarray) -> np.ndarray:
        return self.booster_weight * booster_score + self.linear_weight * linear_score

    def predict_proba(self, features_df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the event (a breach, a default) in the six months after each row's as-of date."""
        return np.clip(self.calibrator.transform(self.raw_proba(features_df)), 0.0, 1.0)

    def proba_from_design(self, design: pd.DataFrame) -> np.ndarray:
        """``predict_proba`` on a matrix already built by ``design_matrix``."""
        if len(design) == 0:
            return np.empty(0)
        return np.clip(self.calibrator.transform(self._raw_proba(design)), 0.0, 1.0)

    def contributions(self, features_df: pd.DataFrame) -> np.ndarray:
        """Contributions in log-odds: rows x (features + bias), summing to the raw score.

        TreeSHAP of the booster (models.tree_shap); with a logistic blend, both weighted, each feature's
        TreeSHAP value plus its centred logistic term (biases add in the bias column)."""
        return self.contributions_from_design(self.design_matrix(features_df))

    def contributions_from_design(self, design: pd.DataFrame) -> np.ndarray:
        """``contributions`` on a matrix already built by ``design_matrix``."""
        contributions = booster_contributions(self.booster, design, _contribution_threads())
        if self.linear is None:
            return contributions
        return self._blended_contributions(contributions, self.linear.contributions(design))

    def proba_and_contributions_from_design(self, design: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``proba_from_design`` and ``contributions_from_design`` from one pass over the booster's
        trees (the same probabilities, bit for bit, and the same contributions)."""
        if len(design) == 0:
            return np.empty(0), np.empty((0, len(self.features) + 1))
        booster_output, contributions = booster_predict_and_contributions(
            self.booster, design, self.num_threads, _contribution_threads(), raw_score=self.linear is not None
        )
        if self.linear is None:  # the booster's probability as LightGBM transforms it, as ``_raw_proba`` does
            return np.clip(self.calibrator.transform(booster_output), 0.0, 1.0), contributions
        linear_contributions = self.linear.contributions(design)  # serves the score and the contributions
        score = self._blended_score(booster_output, self.linear.decision_from_contributions(linear_contributions))
        proba = np.clip(self.calibrator.transform(_sigmoid(score)), 0.0, 1.0)
        return proba, self._blended_contributions(contributions, linear_contributions)

    def _blended_contributions(self, contributions: np.ndarray, linear_contributions: np.ndarray) -> np.ndarray:
        contributions = self.booster_weight * np.asarray(contributions, dtype=float)
        contributions[:, : len(self.features)] += self.linear_weight * linear_contributions
        contributions[:, len(self.features)] += self.linear_weight * self.linear.bias
        return contributions

    def reason_codes(self, features_df: pd.DataFrame, k: int = 3) -> list[list[str]]:
        """Per row, up to ``k`` codes of the features that raise its risk the most."""
        if len(features_df) == 0:
            return []
        design = self.design_matrix(features_df)
        return top_reason_codes(self.contributions_from_design(design), design, self.features, self.medians, k=k)

    # -- what the registered model's pyfunc returns (models.mlflow_pyfunc) ----------------
    def pyfunc_predict(self, features_df: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(features_df)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _contribution_threads() -> int:
    # LightGBM's TreeSHAP (a booster too deep for models.tree_shap's tables) costs ~100x a
    # prediction and splits cleanly by row, so it uses every core; results do not depend on
    # the thread count.
    return os.cpu_count() or 1


def build_design_matrix(
    frame: pd.DataFrame, features: list[ModelFeature], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """The model's input columns, in order, typed exactly as in training (KeyError naming any
    input column the frame lacks)."""
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise KeyError(f"features frame lacks model input columns: {missing}")
    columns: dict[str, Any] = {}
    for feature in features:
        values = frame[feature.name]
        if feature.categorical:
            as_text = values.astype("string").astype(object).where(values.notna(), None)
            columns[feature.name] = pd.Categorical(as_text, categories=categories[feature.name])
        elif isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiu":
            columns[feature.name] = values.to_numpy(dtype=np.float64)  # already numbers: what to_numeric would give
        else:
            columns[feature.name] = pd.to_numeric(
                values.astype("Float64") if values.dtype == bool or str(values.dtype) == "boolean" else values,
                errors="coerce",
            ).astype("float64")
    return pd.DataFrame(columns, index=frame.index)
