"""Exact TreeSHAP for boosters of shallow trees, by one table per tree.

LightGBM's ``pred_contrib`` runs path-dependent TreeSHAP for every row and every tree: about
a microsecond per tree and row, which made reason codes nearly all of the scoring time. Our
boosters grow trees of at most three splits (``max_depth: 2`` in models/training.yaml and
models/loss_rate.yaml). A tree's TreeSHAP values for a row depend on the row only through
the side it takes at each split: TreeSHAP follows the row's branch at a split on a feature
of the coalition and otherwise averages both branches by their training counts. So a tree
with k splits has at most 2^k different answers. They are computed once per booster (the
Shapley values of that same game, by enumerating the tree's feature subsets), and a row then
costs k comparisons and one lookup per tree, in a compiled loop. The contributions are
LightGBM's up to floating-point rounding (tests/test_tree_shap.py holds them to it).

A booster with a deeper tree, linear trees or several trees per iteration is not handled
here (``ShallowTrees.from_booster`` returns None) and keeps LightGBM's own ``pred_contrib``.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass
from itertools import combinations

import lightgbm as lgb
import numpy as np
import pandas as pd
from numba import njit, prange

# 2^6 outcomes per tree at most; deeper trees would make the tables large for little gain.
MAX_SPLITS = 6
# LightGBM's missing-value handling of a numerical split (``missing_type`` of its dump).
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_MISSING_TYPES = {"None": _MISSING_NONE, "Zero": _MISSING_ZERO, "NaN": _MISSING_NAN}
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold: |x| at most this is a zero


@dataclass(frozen=True)
class ShallowTrees:
    """A booster's trees as arrays (split j of tree t, in preorder) and, per tree and outcome
    of its splits (bit j set: the row goes left at split j), its output and the contribution
    of each of its features (its "slots")."""

    n_features: int
    n_splits: np.ndarray  # (trees,) int64
    split_feature: np.ndarray  # (trees, splits) int64
    threshold: np.ndarray  # (trees, splits) float64; unused for a categorical split
    default_left: np.ndarray  # (trees, splits) bool
    missing_type: np.ndarray  # (trees, splits) int64
    is_categorical: np.ndarray  # (trees, splits) bool
    category_start: np.ndarray  # (trees, splits) int64: a categorical split's categories
    category_end: np.ndarray  # (trees, splits) int64: (they go left) are categories[start:end]
    categories: np.ndarray  # int64
    slot_feature: np.ndarray  # (trees, slots) int64: the tree's distinct features, -1 padded
    leaf_value: np.ndarray  # (trees, outcomes) float64: the tree's output per outcome
    table: np.ndarray  # (trees, outcomes, slots) float64: contribution per outcome and slot
    expected_value: float  # the bias column: sum of the trees' expected outputs
    output: str  # how LightGBM turns the raw score into a prediction: "identity", "sigmoid", "exp"
    sigmoid: float
    pandas_categorical: list | None  # the booster's category levels of pandas categorical columns

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> ShallowTrees | None:
        """The tables of ``booster``; None when a tree has more than ``MAX_SPLITS`` splits, the
        booster has linear trees or more than one tree per iteration, or its objective's output
        transformation is not one of ``identity``/``sigmoid``/``exp``."""
        dump = booster.dump_model()
        output, sigmoid = _output_transform(str(dump.get("objective", "")))
        if output is None or dump.get("num_tree_per_iteration", 1) != 1 or booster.params.get("linear_tree"):
            return None
        trees = [info["tree_structure"] for info in dump["tree_info"]]
        splits = [_splits_preorder(tree) for tree in trees]
        if not trees or any(len(s) > MAX_SPLITS for s in splits):
            return None
        n_trees = len(trees)
        k = max(1, max(len(s) for s in splits))
        n_slots = max(1, max(len({node["split_feature"] for node in s}) for s in splits))
        arrays = {
            "split_feature": np.zeros((n_trees, k), np.int64),
            "threshold": np.zeros((n_trees, k)),
            "default_left": np.zeros((n_trees, k), np.bool_),
            "missing_type": np.zeros((n_trees, k), np.int64),
            "is_categorical": np.zeros((n_trees, k), np.bool_),
            "category_start": np.zeros((n_trees, k), np.int64),
            "category_end": np.zeros((n_trees, k), np.int64),
            "slot_feature": np.full((n_trees, n_slots), -1, np.int64),
        }
        leaf_value = np.zeros((n_trees, 2**k))
        table = np.zeros((n_trees, 2**k, n_slots))
        categories: list[int] = []
        expected = 0.0
        for t, (tree, tree_splits) in enumerate(zip(trees, splits, strict=True)):
            for j, node in enumerate(tree_splits):
                arrays["split_feature"][t, j] = node["split_feature"]
                arrays["default_left"][t, j] = bool(node["default_left"])
                arrays["missing_type"][t, j] = _MISSING_TYPES[node["missing_type"]]
                if node["decision_type"] == "==":
                    arrays["is_categorical"][t, j] = True
                    arrays["category_start"][t, j] = len(categories)
                    categories += [int(c) for c in str(node["threshold"]).split("||")]
                    arrays["category_end"][t, j] = len(categories)
                elif node["decision_type"] == "<=":
                    arrays["threshold"][t, j] = float(node["threshold"])
                else:
                    return None
            features, outputs, tree_table, tree_expected = _tree_table(tree, tree_splits)
            arrays["slot_feature"][t, : len(features)] = features
            leaf_value[t, : len(outputs)] = outputs
            table[t, : tree_table.shape[0], : len(features)] = tree_table
            expected += tree_expected
        return cls(
            n_features=booster.num_feature(),
            n_splits=np.array([len(s) for s in splits], np.int64),
            categories=np.array(categories, np.int64),
            leaf_value=leaf_value,
            table=table,
            expected_value=expected,
            output=output,
            sigmoid=sigmoid,
            pandas_categorical=getattr(booster, "pandas_categorical", None),
            **arrays,
        )

    def columns(self, design: pd.DataFrame | np.ndarray) -> np.ndarray:
        """``design`` as LightGBM reads it, one contiguous float64 row per input column (features
        x rows): a pandas categorical as its code in the booster's levels, a missing one NaN."""
        if isinstance(design, np.ndarray):
            out = np.ascontiguousarray(np.asarray(design, dtype=np.float64).T)
        else:
            categorical = [c for c in design.columns if isinstance(design[c].dtype, pd.CategoricalDtype)]
            levels = dict(zip(categorical, self.pandas_categorical or [list(design[c].cat.categories) for c in categorical],
                              strict=False))
            out = np.empty((design.shape[1], len(design)), np.float64)
            for j, column in enumerate(design.columns):
                values = design[column]
                if column in levels:
                    if list(values.cat.categories) != list(levels[column]):
                        values = values.cat.set_categories(levels[column])
                    codes = values.cat.codes.to_numpy(np.float64)
                    codes[codes < 0] = np.nan
                    out[j] = codes
                else:
                    out[j] = values.to_numpy(np.float64, na_value=np.nan)
        if out.shape[0] != self.n_features:
            raise ValueError(f"the booster reads {self.n_features} input columns, the design has {out.shape[0]}")
        return out

    def _run(self, design, with_contributions: bool, num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        x = self.columns(design)
        n = x.shape[1]
        raw = np.zeros(n)
        contributions = np.zeros((self.n_features + 1, n) if with_contributions else (0, n))
        threads = num_threads or os.cpu_count() or 1
        kernel = _evaluate_parallel if threads > 1 and n >= 2 * _BLOCK else _evaluate
        kernel(x, self.n_splits, self.split_feature, self.threshold, self.default_left, self.missing_type,
               self.is_categorical, self.category_start, self.category_end, self.categories, self.slot_feature,
               self.leaf_value, self.table, with_contributions, raw, contributions)
        return raw, contributions

    def predict(self, design: pd.DataFrame | np.ndarray, raw_score: bool = False, num_threads: int | None = None) -> np.ndarray:
        """What ``booster.predict(design, raw_score=raw_score)`` returns (the same floating-point
        additions in the same order, then LightGBM's transformation)."""
        raw, _ = self._run(design, False, num_threads)
        if raw_score or self.output == "identity":
            return raw
        return _transform(raw, self.output == "sigmoid", self.sigmoid)

    def contributions(self, design: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Rows x (features + 1): what ``booster.predict(design, pred_contrib=True)`` returns, to rounding."""
        _, contributions = self._run(design, True, num_threads)
        contributions[self.n_features] = self.expected_value
        return np.ascontiguousarray(contributions.T)


_TABLES: weakref.WeakKeyDictionary[lgb.Booster, ShallowTrees | None] = weakref.WeakKeyDictionary()


def shallow_trees(booster: lgb.Booster) -> ShallowTrees | None:
    """The booster's tables, built once per booster object; None when it has none (see
    ``ShallowTrees.from_booster``)."""
    if booster not in _TABLES:
        _TABLES[booster] = ShallowTrees.from_booster(booster)
    return _TABLES[booster]


def booster_predict(booster: lgb.Booster, design: pd.DataFrame, num_threads: int, raw_score: bool = False) -> np.ndarray:
    """``booster.predict(design, raw_score=raw_score)``, bit for bit, by the tables when the
    booster has them (on every core: rows are independent, so the threads change no result),
    else by LightGBM with ``num_threads``."""
    trees = shallow_trees(booster)
    if trees is None:
        return booster.predict(design, raw_score=raw_score, num_threads=num_threads)
    return trees.predict(design, raw_score=raw_score)


def booster_contributions(booster: lgb.Booster, design: pd.DataFrame, num_threads: int) -> np.ndarray:
    """TreeSHAP contributions, rows x (features + bias), by the tables (on every core) when the
    booster has them, else LightGBM's ``pred_contrib`` with ``num_threads``."""
    trees = shallow_trees(booster)
    if trees is None:
        return np.asarray(booster.predict(design, pred_contrib=True, num_threads=num_threads))
    return trees.contributions(design)


def _output_transform(objective: str) -> tuple[str | None, float]:
    """LightGBM's output transformation of an objective named as in ``dump_model()``."""
    name, *params = objective.split()
    if name == "binary":
        sigmoid = dict(p.split(":", 1) for p in params if ":" in p).get("sigmoid", "1")
        return "sigmoid", float(sigmoid)
    if name in ("tweedie", "poisson", "gamma"):
        return "exp", 1.0
    if name in ("regression", "regression_l1", "huber", "fair", "quantile", "mape"):
        return ("identity", 1.0) if not any(p.startswith("sqrt") for p in params) else (None, 1.0)
    return None, 1.0


# ------------------------------------------------------------------------------ the tables


def _splits_preorder(tree: dict) -> list[dict]:
    if "split_index" not in tree:
        return []
    return [tree, *_splits_preorder(tree["left_child"]), *_splits_preorder(tree["right_child"])]


def _count(node: dict) -> float:
    return float(node["internal_count"] if "split_index" in node else node["leaf_count"])


def _tree_table(tree: dict, splits: list[dict]) -> tuple[list[int], np.ndarray, np.ndarray, float]:
    """The tree's distinct split features, its output per outcome, its table (outcomes x
    features) and its expected output.

    ``value(S)`` is TreeSHAP's path-dependent expectation given the features in S, for every
    outcome at once (bit j of an outcome: left at split j); a feature's contribution is its
    Shapley value in that game."""
    position = {id(node): j for j, node in enumerate(splits)}
    features = sorted({node["split_feature"] for node in splits})
    n_outcomes = 2 ** len(splits)
    left = [((np.arange(n_outcomes) >> j) & 1).astype(bool) for j in range(len(splits))]

    def value(node: dict, known: frozenset) -> np.ndarray:
        if "split_index" not in node:
            return np.full(n_outcomes, float(node["leaf_value"]))
        low, high = node["left_child"], node["right_child"]
        if node["split_feature"] in known:
            return np.where(left[position[id(node)]], value(low, known), value(high, known))
        weight = _count(node)
        return (_count(low) / weight) * value(low, known) + (_count(high) / weight) * value(high, known)

    m = len(features)
    values = {frozenset(s): value(tree, frozenset(s)) for size in range(m + 1) for s in combinations(features, size)}
    table = np.zeros((n_outcomes, m))
    for slot, feature in enumerate(features):
        others = [f for f in features if f != feature]
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for subset in combinations(others, size):
                s = frozenset(subset)
                table[:, slot] += weight * (values[s | {feature}] - values[s])
    return features, values[frozenset(features)], table, float(value(tree, frozenset())[0])


# ------------------------------------------------------------------------------ the row loop

# Rows per block: a block's input columns and outputs stay in cache while every tree passes over it.
_BLOCK = 512


@njit(cache=True, nogil=True)
def _goes_left(value, threshold, default_left, missing_type, is_categorical, categories, start, end):
    """LightGBM's decision at one split (its NumericalDecision / CategoricalDecision)."""
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
    """Rows lo..hi through every tree in order: each row's raw score adds the trees' outputs in
    tree order, as LightGBM's prediction does."""
    for t in range(n_splits.shape[0]):
        for i in range(lo, hi):
            outcome = 0
            for j in range(n_splits[t]):
                value = x[split_feature[t, j], i]
                if is_categorical[t, j] or value != value or abs(value) <= _ZERO_THRESHOLD:
                    left = _goes_left(value, threshold[t, j], default_left[t, j], missing_type[t, j],
                                      is_categorical[t, j], categories, category_start[t, j], category_end[t, j])
                else:  # the common case, without a branch on the data
                    left = value <= threshold[t, j]
                outcome |= np.int64(left) << j
            raw[i] += leaf_value[t, outcome]
            if with_contributions:
                for s in range(slot_feature.shape[1]):
                    feature = slot_feature[t, s]
                    if feature < 0:
                        break
                    contributions[feature, i] += table[t, outcome, s]


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
    # Blocks are independent and each row is summed in the same order: the threads change no result.
    n = x.shape[1]
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        _block(x, lo, min(lo + _BLOCK, n), n_splits, split_feature, threshold, default_left, missing_type,
               is_categorical, category_start, category_end, categories, slot_feature, leaf_value, table,
               with_contributions, raw, contributions)


@njit(cache=True, nogil=True)
def _transform(raw, is_sigmoid, sigmoid):
    """LightGBM's output transformation (binary: 1 / (1 + exp(-sigmoid x)); log link: exp(x))."""
    out = np.empty_like(raw)
    for i in range(raw.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * raw[i])) if is_sigmoid else math.exp(raw[i])
    return out
