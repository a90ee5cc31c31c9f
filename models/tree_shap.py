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

The comparisons carry no branch: LightGBM's missing-value rules (per split: missing type
None, Zero or NaN, and the side a missing value takes) are folded once per call into "split
columns", copies of the input columns where a value that must go left is -inf and one that
must go right +inf; a categorical split reads a 0/1 column. A block of rows then passes
through each tree as ``column <= threshold`` over contiguous memory. The prediction and the
contributions come from the same pass (``predict_and_contributions``); the prediction adds
the trees' outputs in LightGBM's order, so it stays LightGBM's bit for bit.

Why not one table per feature group (SHAP values add across trees)? The prediction must be
LightGBM's sum, tree by tree, so every tree is visited anyway; once it is, its contributions
cost three lookups. And the demo boosters' trees rarely share their features: 434 distinct
feature sets among 523 trees in the breach model.

A booster with a deeper tree, linear trees or several trees per iteration is not handled
here (``ShallowTrees.from_booster`` returns None) and keeps LightGBM's own ``pred_contrib``.
"""

from __future__ import annotations

import functools
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
    table: np.ndarray  # (trees, slots, outcomes) float64: contribution per slot and outcome
    # Split columns: split j of tree t goes left when split column split_column[t, j] is at most
    # split_threshold[t, j]; column c is input column column_feature[c] read by kind column_kind[c]
    # (a categorical one: left for categories[column_category_start[c]:column_category_end[c]]).
    split_column: np.ndarray  # (trees, splits) int64
    split_threshold: np.ndarray  # (trees, splits) float64
    column_feature: np.ndarray  # (columns,) int64
    column_kind: np.ndarray  # (columns,) int64
    column_category_start: np.ndarray  # (columns,) int64
    column_category_end: np.ndarray  # (columns,) int64
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
        table = np.zeros((n_trees, n_slots, 2**k))
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
            table[t, : len(features), : tree_table.shape[0]] = tree_table.T
            expected += tree_expected
        return cls(
            **_split_columns(arrays, [len(s) for s in splits], categories),
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

    def split_columns(self, x: np.ndarray) -> np.ndarray:
        """The split columns (columns x rows) of input columns ``x`` (``columns``)."""
        out = np.empty((len(self.column_feature), x.shape[1]))
        for c, (feature, kind, start, end) in enumerate(zip(self.column_feature, self.column_kind,
                                                            self.column_category_start, self.column_category_end,
                                                            strict=True)):
            out[c] = _split_column_values(x[feature], int(kind), self.categories[start:end])
        return out

    def _run(self, design, with_contributions: bool, num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        columns = self.split_columns(self.columns(design))
        n = columns.shape[1]
        raw = np.zeros(n)
        contributions = np.zeros((self.n_features + 1, n) if with_contributions else (0, n))
        threads = num_threads or os.cpu_count() or 1
        kernel = _evaluate_parallel if threads > 1 and n >= 2 * _BLOCK else _evaluate
        kernel(columns, self.n_splits, self.split_column, self.split_threshold, self.slot_feature, self.leaf_value,
               self.table, with_contributions, raw, contributions)
        return raw, contributions

    def predict(self, design: pd.DataFrame | np.ndarray, raw_score: bool = False, num_threads: int | None = None) -> np.ndarray:
        """What ``booster.predict(design, raw_score=raw_score)`` returns (the same floating-point
        additions in the same order, then LightGBM's transformation)."""
        raw, _ = self._run(design, False, num_threads)
        return self._output(raw, raw_score)

    def contributions(self, design: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Rows x (features + 1): what ``booster.predict(design, pred_contrib=True)`` returns, to rounding."""
        return self.predict_and_contributions(design, num_threads=num_threads)[1]

    def predict_and_contributions(self, design: pd.DataFrame | np.ndarray, raw_score: bool = False,
                                  num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` and ``contributions`` from one pass over the trees: the prediction is the
        same sum in the same order, so it stays LightGBM's bit for bit."""
        raw, contributions = self._run(design, True, num_threads)
        contributions[self.n_features] = self.expected_value
        return self._output(raw, raw_score), np.ascontiguousarray(contributions.T)

    def _output(self, raw: np.ndarray, raw_score: bool) -> np.ndarray:
        if raw_score or self.output == "identity":
            return raw
        return _transform(raw, self.output == "sigmoid", self.sigmoid)


_TABLES: weakref.WeakKeyDictionary[lgb.Booster, ShallowTrees | None] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=8)
def booster_from_text(model_text: str) -> lgb.Booster:
    """The booster of LightGBM model text, one object per text (the last few texts kept).

    Models built from the same text share the booster and so its tables (``shallow_trees``),
    which cost ~0.1 CPU s per 100 trees to build: a vintage's uncalibrated and calibrated
    model, and the model MLflow loads back to check its input example right after logging
    it. Nothing mutates a booster once trained, so sharing changes no prediction."""
    return lgb.Booster(model_str=model_text)


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


def booster_predict_and_contributions(booster: lgb.Booster, design: pd.DataFrame, num_threads: int,
                                      contribution_threads: int, raw_score: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``booster_predict`` and ``booster_contributions`` at once: one pass over the tables when
    the booster has them, else LightGBM's two calls."""
    trees = shallow_trees(booster)
    if trees is None:
        return (booster_predict(booster, design, num_threads, raw_score=raw_score),
                booster_contributions(booster, design, contribution_threads))
    return trees.predict_and_contributions(design, raw_score=raw_score)


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


def _split_columns(arrays: dict[str, np.ndarray], n_splits: list[int], categories: list[int]) -> dict[str, np.ndarray]:
    """One split column per input column and missing-value handling (per category set for a
    categorical split), shared by every split that reads it the same way."""
    split_column = np.zeros_like(arrays["split_feature"])
    split_threshold = np.zeros(split_column.shape)
    index: dict[tuple, int] = {}
    specs: list[tuple[int, int, int, int]] = []
    for t, count in enumerate(n_splits):
        for j in range(count):
            feature = int(arrays["split_feature"][t, j])
            start, end = int(arrays["category_start"][t, j]), int(arrays["category_end"][t, j])
            if arrays["is_categorical"][t, j]:
                key = (feature, _IN_CATEGORIES, frozenset(categories[start:end]))
                spec, threshold = (feature, _IN_CATEGORIES, start, end), 0.5
            else:
                kind = _split_column_kind(int(arrays["missing_type"][t, j]), bool(arrays["default_left"][t, j]))
                spec, key, threshold = (feature, kind, 0, 0), (feature, kind, None), arrays["threshold"][t, j]
            if key not in index:
                index[key] = len(specs)
                specs.append(spec)
            split_column[t, j] = index[key]
            split_threshold[t, j] = threshold
    feature, kind, start, end = (np.array(column, np.int64) for column in zip(*specs)) if specs else [np.zeros(0, np.int64)] * 4
    return {"split_column": split_column, "split_threshold": split_threshold, "column_feature": feature,
            "column_kind": kind, "column_category_start": start, "column_category_end": end}


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

# Rows per block: a block's split columns and outputs stay in cache while every tree passes over it.
_BLOCK = 256
# How a split column is derived from its input column (LightGBM's NumericalDecision, folded into
# the values so that every split is one branch-free ``column <= threshold``): a missing value
# that goes left becomes -inf, one that goes right +inf (thresholds are finite).
_AS_IS = 0  # missing type None: NaN reads as 0.0, then the value is compared
_MISSING_LEFT, _MISSING_RIGHT = 1, 2  # missing type NaN: NaN takes the default side
_ZERO_LEFT, _ZERO_RIGHT = 3, 4  # missing type Zero: NaN and |x| <= kZeroThreshold take the default side
_IN_CATEGORIES = 5  # a categorical split: 0.0 when the category goes left, else 1.0 (threshold 0.5)


def _split_column_kind(missing_type: int, default_left: bool) -> int:
    if missing_type == _MISSING_NAN:
        return _MISSING_LEFT if default_left else _MISSING_RIGHT
    if missing_type == _MISSING_ZERO:
        return _ZERO_LEFT if default_left else _ZERO_RIGHT
    return _AS_IS


def _split_column_values(x: np.ndarray, kind: int, categories: np.ndarray) -> np.ndarray:
    """One split column from the input column ``x`` (see the kinds above)."""
    missing = np.isnan(x)
    if kind == _IN_CATEGORIES:
        # LightGBM: a missing or negative value goes right, else int(value) is looked up
        codes = np.trunc(np.where(missing | (x < 0), -1.0, x))
        return np.where(np.isin(codes, categories), 0.0, 1.0)
    if kind in (_MISSING_LEFT, _MISSING_RIGHT):
        return np.where(missing, -np.inf if kind == _MISSING_LEFT else np.inf, x)
    x = np.where(missing, 0.0, x)
    if kind == _AS_IS:
        return x
    return np.where(np.abs(x) <= _ZERO_THRESHOLD, -np.inf if kind == _ZERO_LEFT else np.inf, x)


@njit(cache=True, nogil=True)
def _block(columns, lo, hi, n_splits, split_column, split_threshold, slot_feature, leaf_value, table,
           with_contributions, raw, contributions):
    """Rows lo..hi through every tree in order: each row's raw score adds the trees' outputs in
    tree order, as LightGBM's prediction does. Per tree, the outcome of its splits for the whole
    block first (branch-free comparisons over contiguous columns), then its output and the
    contributions of its features."""
    m = hi - lo
    outcome = np.empty(m, np.int64)
    for t in range(n_splits.shape[0]):
        outcome[:] = 0
        for j in range(n_splits[t]):
            column = split_column[t, j]
            threshold = split_threshold[t, j]
            for i in range(m):
                outcome[i] |= np.int64(columns[column, lo + i] <= threshold) << j
        for i in range(m):
            raw[lo + i] += leaf_value[t, outcome[i]]
        if with_contributions:
            for s in range(slot_feature.shape[1]):
                feature = slot_feature[t, s]
                if feature < 0:
                    break
                for i in range(m):
                    contributions[feature, lo + i] += table[t, s, outcome[i]]


@njit(cache=True, nogil=True)
def _evaluate(columns, n_splits, split_column, split_threshold, slot_feature, leaf_value, table, with_contributions,
              raw, contributions):
    n = columns.shape[1]
    for lo in range(0, n, _BLOCK):
        _block(columns, lo, min(lo + _BLOCK, n), n_splits, split_column, split_threshold, slot_feature, leaf_value,
               table, with_contributions, raw, contributions)


@njit(cache=True, nogil=True, parallel=True)
def _evaluate_parallel(columns, n_splits, split_column, split_threshold, slot_feature, leaf_value, table,
                       with_contributions, raw, contributions):
    # Blocks are independent and each row is summed in the same order: the threads change no result.
    n = columns.shape[1]
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        _block(columns, lo, min(lo + _BLOCK, n), n_splits, split_column, split_threshold, slot_feature, leaf_value,
               table, with_contributions, raw, contributions)


@njit(cache=True, nogil=True)
def _transform(raw, is_sigmoid, sigmoid):
    """LightGBM's output transformation (binary: 1 / (1 + exp(-sigmoid x)); log link: exp(x))."""
    out = np.empty_like(raw)
    for i in range(raw.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * raw[i])) if is_sigmoid else math.exp(raw[i])
    return out
