"""The previous session's row loop of models/tree_shap.py, kept only to benchmark against it.

It decides each split per row with a branch on missing values and categories
(LightGBM's NumericalDecision / CategoricalDecision) and reads ``ShallowTrees``' per-split
arrays. ``use_previous_kernel`` swaps it in for ``ShallowTrees._run``; the scoring code
never uses it.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from numba import njit, prange

from models import tree_shap
from models.tree_shap import _MISSING_NAN, _MISSING_ZERO, _ZERO_THRESHOLD

_BLOCK = 512


@contextlib.contextmanager
def use_previous_kernel():
    current = tree_shap.ShallowTrees._run
    tree_shap.ShallowTrees._run = _run
    try:
        yield
    finally:
        tree_shap.ShallowTrees._run = current


def _run(self, design, with_contributions: bool, num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``ShallowTrees._run`` with the previous kernel, on the input columns themselves."""
    x = self.columns(design)
    raw, contributions = np.zeros(x.shape[1]), np.zeros((self.n_features + 1 if with_contributions else 0, x.shape[1]))
    parallel = (num_threads or os.cpu_count() or 1) > 1 and x.shape[1] >= 2 * _BLOCK
    (_evaluate_parallel if parallel else _evaluate)(
        x, self.n_splits, self.split_feature, self.threshold, self.default_left, self.missing_type, self.is_categorical,
        self.category_start, self.category_end, self.categories, self.slot_feature, self.leaf_value, self.table,
        with_contributions, raw, contributions)
    return raw, contributions


@njit(cache=True, nogil=True)
def _goes_left(value, threshold, default_left, missing_type, is_categorical, categories, start, end):
    if is_categorical:
        if np.isnan(value) or value < 0:
            return False
        code = int(value)
        for c in range(start, end):
            if categories[c] == code:
                return True
        return False
    if np.isnan(value) and missing_type != _MISSING_NAN:
        value = 0.0
    if (missing_type == _MISSING_ZERO and abs(value) <= _ZERO_THRESHOLD) or (
        missing_type == _MISSING_NAN and np.isnan(value)
    ):
        return default_left
    return value <= threshold


@njit(cache=True, nogil=True)
def _block(x, lo, hi, n_splits, split_feature, threshold, default_left, missing_type, is_categorical, category_start,
           category_end, categories, slot_feature, leaf_value, table, with_contributions, raw, contributions):
    for t in range(n_splits.shape[0]):
        for i in range(lo, hi):
            outcome = 0
            for j in range(n_splits[t]):
                value = x[split_feature[t, j], i]
                if is_categorical[t, j] or value != value or abs(value) <= _ZERO_THRESHOLD:
                    left = _goes_left(value, threshold[t, j], default_left[t, j], missing_type[t, j],
                                      is_categorical[t, j], categories, category_start[t, j], category_end[t, j])
                else:
                    left = value <= threshold[t, j]
                outcome |= np.int64(left) << j
            raw[i] += leaf_value[t, outcome]
            if with_contributions:
                for s in range(slot_feature.shape[1]):
                    feature = slot_feature[t, s]
                    if feature < 0:
                        break
                    contributions[feature, i] += table[t, s, outcome]  # tables are now (trees, slots, outcomes)


@njit(cache=True, nogil=True)
def _evaluate(x, n_splits, split_feature, threshold, default_left, missing_type, is_categorical, category_start,
              category_end, categories, slot_feature, leaf_value, table, with_contributions, raw, contributions):
    n = x.shape[1]
    for lo in range(0, n, _BLOCK):
        _block(x, lo, min(lo + _BLOCK, n), n_splits, split_feature, threshold, default_left, missing_type,
               is_categorical, category_start, category_end, categories, slot_feature, leaf_value, table,
               with_contributions, raw, contributions)


@njit(cache=True, nogil=True, parallel=True)
def _evaluate_parallel(x, n_splits, split_feature, threshold, default_left, missing_type, is_categorical,
                       category_start, category_end, categories, slot_feature, leaf_value, table, with_contributions,
                       raw, contributions):
    n = x.shape[1]
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        _block(x, lo, min(lo + _BLOCK, n), n_splits, split_feature, threshold, default_left, missing_type,
               is_categorical, category_start, category_end, categories, slot_feature, leaf_value, table,
               with_contributions, raw, contributions)
