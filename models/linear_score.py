"""A sign-constrained logistic regression the booster is blended with (``logistic_blend``).

On the synthetic worlds the risk is close to additive in the inputs: a logistic
regression ranks about as well as the shallow booster, and a blend of the two ranks better
than either. The blend is one model with one calibration and one explanation: both are
fitted on the training months, their log-odds are mixed (``(1 - w) * booster + w *
logistic``, ``BreachRiskModel.raw_score``) and the calibrator is fitted on the mixed
score; reason codes read the mixed per-feature contributions. (Boosting *from* the
logistic, as LightGBM ``init_score``, ranked worse on the rolling origins: early stopping
kept 5-150 trees; see training.yaml.)

The regression reads the model's design matrix the way ``baselines.LogisticBaseline``
does: numeric columns median-imputed with a missing-value indicator, heavy-tailed columns
(|x| > 50 somewhere in training) through a signed log1p, standardised; categorical
columns one-hot over the model's fixed category lists (missing or unseen: no level).
Unlike the baseline, a coefficient may not contradict the feature's risk direction: the
fit is a bounded L-BFGS (a +1 feature's coefficient >= 0, a -1 feature's <= 0), so the
combined score stays monotone in every constrained feature. Missing-value indicators and
categorical levels are free.

Per-feature contributions (for reason codes) are centred on the training rows:
``coef * (z - mean z) + missing_coef * (missing - mean missing)``, so the contributions
plus ``bias`` add up to the log-odds exactly as TreeSHAP's do for the booster.

A plain dataclass of numpy arrays: a pickled model does not depend on scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from models.model_features import ModelFeature

HEAVY_TAIL_THRESHOLD = 50.0
# L-BFGS stops when the projected gradient of the weight-normalised objective is below
# FIT_GRADIENT_TOLERANCE (scikit-learn's lbfgs stops at 1e-4) or an iteration improves it
# by less than FIT_RELATIVE_TOLERANCE. 1e-5 / 1e-9 take about a third of the iterations
# of the former 1e-7 / 1e-11 for log-odds within a few thousandths of theirs
# (bench/results/training.md, 2026-12-06 session 17); 1e-4 moved them by up to 0.6.
FIT_GRADIENT_TOLERANCE = 1e-5
FIT_RELATIVE_TOLERANCE = 1e-9


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class LinearScore:
    names: list[str]  # the model's features, in order
    categorical: list[bool]
    heavy: np.ndarray  # bool per feature: signed log1p before standardising
    medians: np.ndarray  # imputation value per numeric feature (raw scale)
    means: np.ndarray  # mean of the transformed, imputed value (training rows)
    scales: np.ndarray
    coefs: np.ndarray  # per feature, on the standardised value (0 for categorical)
    missing_coefs: np.ndarray  # per feature, on the missing indicator
    missing_means: np.ndarray
    levels: dict[str, list[str]]  # categorical feature -> its levels
    level_coefs: dict[str, np.ndarray]
    level_means: dict[str, np.ndarray]
    intercept: float
    bias: float  # log-odds at the training means: intercept + sum of centred terms' means

    # -- scoring --------------------------------------------------------------------------
    def contributions(self, design: pd.DataFrame) -> np.ndarray:
        """Rows x features: each feature's centred term in log-odds."""
        n = len(design)
        out = np.zeros((n, len(self.names)))
        # the numeric columns all at once (rows x columns): the same operations on each value
        numeric = np.flatnonzero(~np.asarray(self.categorical, dtype=bool))
        if len(numeric):
            values = design[[self.names[j] for j in numeric]].to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(values)
            imputed = np.where(missing, self.medians[numeric], values)
            heavy = np.flatnonzero(self.heavy[numeric])
            imputed[:, heavy] = _signed_log1p(imputed[:, heavy])
            z = (imputed - self.means[numeric]) / self.scales[numeric]
            out[:, numeric] = self.coefs[numeric] * z + self.missing_coefs[numeric] * (missing - self.missing_means[numeric])
        for j, name in enumerate(self.names):
            if self.categorical[j]:
                onehot = _onehot(design[name], self.levels[name])
                out[:, j] = onehot @ self.level_coefs[name] - float(self.level_means[name] @ self.level_coefs[name])
        return out

    def decision_function(self, design: pd.DataFrame) -> np.ndarray:
        """Log-odds: the contributions plus the bias (summed in feature order)."""
        return self.decision_from_contributions(self.contributions(design))

    def decision_from_contributions(self, contributions: np.ndarray) -> np.ndarray:
        """``decision_function`` from the rows' ``contributions`` already computed."""
        return contributions.sum(axis=1) + self.bias

    # -- fitting --------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        design: pd.DataFrame,
        y: np.ndarray,
        features: list[ModelFeature],
        categories: dict[str, list[str]],
        C: float = 1.0,
        sample_weight: np.ndarray | None = None,
    ) -> LinearScore:
        """Penalised (``0.5 |w|^2 + C * log loss``, as scikit-learn's) logistic fit with
        each value coefficient's sign bounded by its feature's risk direction."""
        y = np.asarray(y, dtype=float)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        p = len(features)
        names = [f.name for f in features]
        categorical = [f.categorical for f in features]
        heavy = np.zeros(p, dtype=bool)
        medians, means, scales = np.zeros(p), np.zeros(p), np.ones(p)
        missing_means = np.zeros(p)
        columns: list[np.ndarray] = []
        bounds: list[tuple[float | None, float | None]] = []
        slots: list[tuple[str, int, int]] = []  # (kind, feature index, level index)
        levels = {f.name: list(categories.get(f.name, [])) for f in features if f.categorical}
        for j, feature in enumerate(features):
            if feature.categorical:
                onehot = _onehot(design[feature.name], levels[feature.name])
                for k in range(onehot.shape[1]):
                    columns.append(onehot[:, k])
                    bounds.append((None, None))
                    slots.append(("level", j, k))
                continue
            values = design[feature.name].to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(values)
            medians[j] = float(np.median(values[~missing])) if (~missing).any() else 0.0
            imputed = np.where(missing, medians[j], values)
            heavy[j] = bool(np.abs(imputed).max(initial=0.0) > HEAVY_TAIL_THRESHOLD)
            if heavy[j]:
                imputed = _signed_log1p(imputed)
            means[j] = float(imputed.mean())
            std = float(imputed.std())
            scales[j] = std if std > 0 else 1.0
            columns.append((imputed - means[j]) / scales[j])
            direction = feature.risk_direction
            bounds.append((0.0, None) if direction > 0 else (None, 0.0) if direction < 0 else (None, None))
            slots.append(("value", j, 0))
            missing_means[j] = float(missing.mean())
            if 0 < missing_means[j] < 1:
                columns.append(missing - missing_means[j])
                bounds.append((None, None))
                slots.append(("missing", j, 0))

        x = np.column_stack(columns) if columns else np.zeros((len(y), 0))
        w0 = np.zeros(x.shape[1] + 1)
        rate = float(np.clip(np.average(y, weights=weight), 1e-6, 1 - 1e-6))
        w0[-1] = np.log(rate / (1 - rate))
        total = float(weight.sum())

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ w[:-1] + w[-1]
            # log(1 + e^z) - y z, stably; scaled by the total weight for L-BFGS's tolerances
            loss = weight @ (np.logaddexp(0.0, z) - y * z)
            residual = weight * (_sigmoid(z) - y)
            coefs = w[:-1]
            value = (C * loss + 0.5 * coefs @ coefs) / total
            gradient = np.append(C * (x.T @ residual) + coefs, C * residual.sum()) / total
            return value, gradient

        # One BLAS thread: the products are small, and a busy 2-core box makes a thread
        # pool spin (measured 50 ms per evaluation with the default pool).
        with threadpool_limits(limits=1):
            solution = minimize(
                objective, w0, jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)],
                options={"maxiter": 5000, "gtol": FIT_GRADIENT_TOLERANCE, "ftol": FIT_RELATIVE_TOLERANCE},
            )
        w = solution.x
        coefs, missing_coefs = np.zeros(p), np.zeros(p)
        level_coefs = {name: np.zeros(len(values)) for name, values in levels.items()}
        for weight_value, (kind, j, k) in zip(w[:-1], slots, strict=True):
            if kind == "value":
                coefs[j] = weight_value
            elif kind == "missing":
                missing_coefs[j] = weight_value
            else:
                level_coefs[names[j]][k] = weight_value
        level_means = {
            name: _onehot(design[name], values).mean(axis=0) if len(design) else np.zeros(len(values))
            for name, values in levels.items()
        }
        # The fit's design centres missing indicators, not the one-hot levels: move the
        # levels' mean term into the bias so contributions are centred too.
        intercept = float(w[-1])
        bias = intercept + sum(float(level_means[n] @ level_coefs[n]) for n in levels)
        return cls(
            names=names, categorical=categorical, heavy=heavy, medians=medians, means=means,
            scales=scales, coefs=coefs, missing_coefs=missing_coefs, missing_means=missing_means,
            levels=levels, level_coefs=level_coefs, level_means=level_means,
            intercept=intercept, bias=bias,
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _onehot(values: pd.Series, levels: list[str]) -> np.ndarray:
    if isinstance(values.dtype, pd.CategoricalDtype) and list(values.cat.categories) == levels \
            and all(isinstance(level, str) for level in levels):
        codes = values.cat.codes.to_numpy()  # a design matrix's column: already coded over these levels
    else:
        text = values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))
        codes = pd.Categorical(text, categories=levels).codes  # -1: missing or unseen
    out = np.zeros((len(codes), len(levels)))
    known = codes >= 0
    out[np.flatnonzero(known), codes[known]] = 1.0
    return out
