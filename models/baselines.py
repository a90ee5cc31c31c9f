"""Baselines the breach model must beat on the same rows.

* ``RuleBaseline``: how big marketplaces police sellers without a model. Each supplier is
  placed in a tier by how many seller standards it fails (thresholds in the spirit of
  published seller-performance targets: order defect / dispute rate under 2%, late
  shipment under 4-5%, seller cancellation under 2.5%, answering 90% of buyer messages),
  with suppliers too new to judge in a tier of their own. A tier's probability is its
  observed breach rate in the training window, shrunk toward the overall rate.
* ``LogisticBaseline``: scikit-learn logistic regression on the same inputs as the model:
  median-imputed with missing-value indicators, heavy-tailed columns log-transformed,
  standardised; categorical columns one-hot encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models.model_features import ModelFeature


@dataclass(frozen=True)
class SellerStandards:
    max_dispute_ratio: float = 0.02
    min_on_time_shipment_rate: float = 0.95
    max_supplier_cancellation_rate: float = 0.025
    # Used only when the frame has no supplier cancellation rate.
    max_incompletion_rate: float = 0.10
    min_response_rate: float = 0.90
    min_tenure_months: float = 3
    # Pseudo-rows of the overall rate added to every tier (small tiers stay sensible).
    prior_strength: float = 20.0


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


@dataclass
class RuleBaseline:
    standards: SellerStandards = field(default_factory=SellerStandards)
    tier_probability: dict[str, float] = field(default_factory=dict)
    overall_rate: float = float("nan")

    def failed_standards(self, frame: pd.DataFrame) -> np.ndarray:
        """How many standards each row fails; an unknown metric (NaN) fails nothing."""
        s = self.standards
        with np.errstate(invalid="ignore"):
            failures = (
                (_column(frame, "dispute_ratio_6m") > s.max_dispute_ratio).astype(int)
                + (_column(frame, "on_time_shipment_rate_6m") < s.min_on_time_shipment_rate).astype(int)
                + (_column(frame, "response_rate_6m") < s.min_response_rate).astype(int)
            )
            if "supplier_cancellation_rate_6m" in frame.columns:
                failures += (_column(frame, "supplier_cancellation_rate_6m") > s.max_supplier_cancellation_rate).astype(int)
            else:
                failures += (1 - _column(frame, "completion_rate_6m") > s.max_incompletion_rate).astype(int)
        return failures

    def tiers(self, frame: pd.DataFrame) -> np.ndarray:
        failures = np.minimum(self.failed_standards(frame), 3)
        tiers = np.array([f"fails_{n}" if n < 3 else "fails_3+" for n in failures], dtype=object)
        orders = _column(frame, "orders_6m")
        tenure = _column(frame, "tenure_months")
        too_new = (np.nan_to_num(orders, nan=0.0) <= 0) | (tenure < self.standards.min_tenure_months)
        tiers[too_new] = "too_new_to_judge"
        return tiers

    def fit(self, frame: pd.DataFrame, y: Sequence[bool]) -> RuleBaseline:
        y = np.asarray(y, dtype=float)
        self.overall_rate = float(y.mean())
        tiers = self.tiers(frame)
        a = self.standards.prior_strength
        self.tier_probability = {
            tier: float((y[tiers == tier].sum() + a * self.overall_rate) / ((tiers == tier).sum() + a))
            for tier in sorted(set(tiers))
        }
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([self.tier_probability.get(t, self.overall_rate) for t in self.tiers(frame)])


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class LogisticBaseline:
    features: list[ModelFeature]
    C: float = 1.0
    pipeline: Pipeline | None = None

    def _numeric_frame(self, frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
        return frame[names].apply(pd.to_numeric, errors="coerce").astype(float)

    def fit(self, frame: pd.DataFrame, y: Sequence[bool]) -> LogisticBaseline:
        numeric = [f.name for f in self.features if not f.categorical]
        categorical = [f.name for f in self.features if f.categorical]
        values = self._numeric_frame(frame, numeric)
        # Counts, amounts and hours span orders of magnitude: log them so one huge supplier
        # does not dominate a linear model.
        heavy = [c for c in numeric if values[c].abs().max(skipna=True) > 50]
        light = [c for c in numeric if c not in heavy]
        # keep_empty_features: a column that is all missing (no inquiries table) stays a
        # column, so every frame maps to the same design.
        impute = {"strategy": "median", "add_indicator": True, "keep_empty_features": True}
        transformers = []
        if heavy:
            transformers.append(("heavy", Pipeline([
                ("impute", SimpleImputer(**impute)),
                ("log", FunctionTransformer(_signed_log1p)),
                ("scale", StandardScaler()),
            ]), heavy))
        if light:
            transformers.append(("light", Pipeline([
                ("impute", SimpleImputer(**impute)),
                ("scale", StandardScaler()),
            ]), light))
        if categorical:
            transformers.append(("categorical", Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value="missing", keep_empty_features=True)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=20)),
            ]), categorical))
        self.pipeline = Pipeline([
            ("columns", ColumnTransformer(transformers)),
            ("model", LogisticRegression(C=self.C, max_iter=3000)),
        ])
        self.pipeline.fit(self._design(frame), np.asarray(y, dtype=int))
        return self

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        numeric = [f.name for f in self.features if not f.categorical]
        categorical = [f.name for f in self.features if f.categorical]
        design = self._numeric_frame(frame, numeric)
        for name in categorical:
            design[name] = frame[name].astype(object).where(frame[name].notna(), "missing").astype(str)
        return design

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("LogisticBaseline is not fitted")
        return self.pipeline.predict_proba(self._design(frame))[:, 1]
