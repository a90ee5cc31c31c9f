"""Map raw model scores to probabilities that match observed breach rates.

Calibrators are fitted on a window *later* than the one the booster was trained on (see
``training.split_out_of_time``), so they correct the drift between the two as well as the
booster's own distortion. ``fit_calibrator(method="auto")`` chooses between isotonic
regression and Platt scaling by the ECE each achieves on held-out folds of the calibration
window: scored on its own fitting data, isotonic would always win by over-fitting.

Calibrators are plain dataclasses of numpy arrays so that a pickled model does not depend
on scikit-learn internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models.metrics import expected_calibration_error

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class IdentityCalibrator:
    method: str = "identity"

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(raw, dtype=float), 0.0, 1.0)


@dataclass
class PlattCalibrator:
    """``sigmoid(slope * logit(raw) + intercept)``: a monotone, smooth two-parameter fix."""

    slope: float = 1.0
    intercept: float = 0.0
    method: str = "platt"

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        # A very weak penalty keeps the fit finite when the window is tiny or separable.
        lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
        lr.fit(_logit(raw).reshape(-1, 1), np.asarray(y, dtype=int))
        return cls(slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        z = self.slope * _logit(raw) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


@dataclass
class IsotonicCalibrator:
    """Centred isotonic regression: a strictly increasing piecewise-linear map.

    Plain isotonic regression is a step function: every supplier in a step gets the same
    probability, which throws away the booster's ranking inside the step (AUC drops) and
    makes amounts jump at step edges. Interpolating between the steps' centres (mean raw
    score of each step, its fitted rate) keeps the calibration and the ranking; only the
    two outermost half-steps stay flat.

    An outermost step without a single event (or with nothing else) would publish a
    probability of exactly 0 (or 1): "this supplier cannot default", which its rows do not
    show; they show a rate too small to see in that many rows. That step gets the Jeffreys
    estimate instead, (events + 1/2) / (rows + 1), kept inside its neighbour so the map
    stays increasing; every other step keeps its fitted rate.
    """

    x_thresholds: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    y_thresholds: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    method: str = "isotonic"

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        raw = np.asarray(raw, dtype=float)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        fitted = iso.fit_transform(raw, np.asarray(y, dtype=float))
        steps, step_index = np.unique(fitted, return_inverse=True)  # ascending fitted rates
        rows = np.bincount(step_index)
        centres = np.bincount(step_index, weights=raw) / rows
        if len(steps) == 1:  # a constant fit: one rate for everyone
            return cls(x_thresholds=np.array([0.0, 1.0]), y_thresholds=np.repeat(steps, 2))
        rates = steps.copy()
        if rates[0] == 0.0:
            jeffreys = 0.5 / (rows[0] + 1)
            rates[0] = jeffreys if jeffreys < rates[1] else rates[1] / 2
        if rates[-1] == 1.0:
            jeffreys = (rows[-1] + 0.5) / (rows[-1] + 1)
            rates[-1] = jeffreys if jeffreys > rates[-2] else (1 + rates[-2]) / 2
        return cls(x_thresholds=centres, y_thresholds=rates)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(raw, dtype=float), self.x_thresholds, self.y_thresholds)


Calibrator = IdentityCalibrator | PlattCalibrator | IsotonicCalibrator
_FITTERS = {"platt": PlattCalibrator.fit, "isotonic": IsotonicCalibrator.fit}


@dataclass
class CalibrationChoice:
    calibrator: Calibrator
    method: str
    cv_ece: dict[str, float]  # mean held-out ECE per candidate method ('auto' only)


def fit_calibrator(
    raw: np.ndarray, y: np.ndarray, method: str = "auto", n_folds: int = 5, seed: int = 0
) -> CalibrationChoice:
    """Fit a calibrator of ``method`` ('auto', 'isotonic', 'platt' or 'identity')."""
    raw = np.asarray(raw, dtype=float)
    y = np.asarray(y, dtype=int)
    if method == "identity" or len(np.unique(y)) < 2:
        # One class only: nothing to calibrate against, keep the booster's scores.
        return CalibrationChoice(IdentityCalibrator(), "identity", {})
    if method in _FITTERS:
        return CalibrationChoice(_FITTERS[method](raw, y), method, {})
    if method != "auto":
        raise ValueError(f"unknown calibration method {method!r}")

    folds = min(n_folds, int(np.bincount(y).min()))
    if folds < 2:
        return CalibrationChoice(PlattCalibrator.fit(raw, y), "platt", {})
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    cv_ece: dict[str, float] = {}
    for name, fitter in _FITTERS.items():
        eces = []
        for fit_idx, held_idx in splitter.split(raw.reshape(-1, 1), y):
            calibrator = fitter(raw[fit_idx], y[fit_idx])
            eces.append(expected_calibration_error(y[held_idx], calibrator.transform(raw[held_idx])))
        cv_ece[name] = float(np.mean(eces))
    # Ties go to Platt: fewer parameters, smoother, keeps the booster's ranking intact.
    best = min(cv_ece, key=lambda name: (round(cv_ece[name], 6), name != "platt"))
    return CalibrationChoice(_FITTERS[best](raw, y), best, cv_ece)
