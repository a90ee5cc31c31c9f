"""models.tree_shap: the shallow trees' tables give LightGBM's own predictions bit for bit and
its TreeSHAP contributions to rounding, on every kind of split the models grow."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.reason_codes import top_reason_codes
from models.model_features import ModelFeature
from models.tree_shap import (
    MAX_SPLITS,
    ShallowTrees,
    booster_contributions,
    booster_predict,
    booster_predict_and_contributions,
)

N_ROWS = 3000


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({
        "rate": rng.uniform(0, 1, n),
        "count": rng.poisson(2, n).astype(float),  # many exact zeros
        "hours": rng.exponential(10, n),
        "tier": pd.Categorical(rng.choice(["gold", "silver", "free", "new"], n), categories=["gold", "silver", "free", "new"]),
    })
    frame.loc[rng.random(n) < 0.15, "rate"] = np.nan
    frame.loc[rng.random(n) < 0.10, "hours"] = np.nan
    frame.loc[rng.random(n) < 0.05, "tier"] = np.nan
    return frame


def _train(objective: str, **params) -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(3)
    frame = _frame(rng, N_ROWS)
    signal = np.nan_to_num(frame["rate"].to_numpy(), nan=0.7) + 0.3 * (frame["tier"] == "new") + 0.05 * frame["count"]
    label = {
        "binary": (rng.random(N_ROWS) < 1 / (1 + np.exp(3 - 3 * signal))).astype(float),
        "tweedie": rng.poisson(np.exp(signal - 1)).astype(float),
        "regression": signal + rng.normal(0, 0.1, N_ROWS),
    }[objective]
    booster = lgb.train(
        {"objective": objective, "max_depth": 2, "num_leaves": 4, "min_data_in_leaf": 20, "learning_rate": 0.1,
         "verbosity": -1, "seed": 1, "deterministic": True, "cat_smooth": 1, "min_data_per_group": 10, **params},
        lgb.Dataset(frame, label, categorical_feature=["tier"]),
        num_boost_round=60,
    )
    # scored as the registry's boosters are: rebuilt from their text
    return lgb.Booster(model_str=booster.model_to_string()), _frame(np.random.default_rng(11), N_ROWS)


@pytest.mark.parametrize(
    "objective, params",
    [
        ("binary", {}),  # the breach and default models: missing values as NaN, a categorical tier
        ("tweedie", {}),  # the loss-rate boosters: a log link
        ("regression", {"zero_as_missing": True}),  # zeros and NaN both missing ("Zero" splits)
        ("binary", {"use_missing": False}),  # no missing handling: NaN read as 0 ("None" splits)
        ("binary", {"max_depth": 3, "num_leaves": 7}),  # deeper, still within MAX_SPLITS
    ],
)
def test_tables_give_lightgbms_predictions_and_contributions(objective, params):
    booster, frame = _train(objective, **params)
    trees = ShallowTrees.from_booster(booster)
    assert trees is not None
    # predictions: the same additions in the same order, bit for bit
    np.testing.assert_array_equal(trees.predict(frame), booster.predict(frame))
    np.testing.assert_array_equal(trees.predict(frame, raw_score=True), booster.predict(frame, raw_score=True))
    # contributions: TreeSHAP's values, summed in another order
    np.testing.assert_allclose(trees.contributions(frame), booster.predict(frame, pred_contrib=True), rtol=0, atol=1e-12)


def test_unseen_category_and_reordered_levels_read_as_lightgbm_reads_them():
    booster, frame = _train("binary")
    # levels in another order and one the booster never saw: both mapped by name, the new one missing
    frame["tier"] = pd.Categorical(frame["tier"].astype(object).where(frame.index % 7 != 0, "platinum"),
                                   categories=["platinum", "new", "free", "silver", "gold"])
    trees = ShallowTrees.from_booster(booster)
    np.testing.assert_array_equal(trees.predict(frame), booster.predict(frame))
    np.testing.assert_allclose(trees.contributions(frame), booster.predict(frame, pred_contrib=True), atol=1e-12)


def test_results_do_not_depend_on_the_number_of_threads():
    booster, frame = _train("binary")
    trees = ShallowTrees.from_booster(booster)
    np.testing.assert_array_equal(trees.contributions(frame, num_threads=1), trees.contributions(frame, num_threads=2))
    np.testing.assert_array_equal(trees.predict(frame, num_threads=1), trees.predict(frame, num_threads=2))


def test_a_deeper_booster_keeps_lightgbms_own_treeshap():
    booster, frame = _train("binary", max_depth=4, num_leaves=15)
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) - 1 > MAX_SPLITS
    assert ShallowTrees.from_booster(booster) is None
    np.testing.assert_array_equal(booster_contributions(booster, frame, 1), booster.predict(frame, pred_contrib=True))
    np.testing.assert_array_equal(booster_predict(booster, frame, 1), booster.predict(frame))


def test_reason_codes_from_the_tables_equal_those_from_lightgbms_treeshap():
    booster, frame = _train("binary")
    features = [ModelFeature("rate", 1, False), ModelFeature("count", 0, False), ModelFeature("hours", -1, False),
                ModelFeature("tier", 0, True)]
    exact = top_reason_codes(booster.predict(frame, pred_contrib=True), frame, features, {"count": 2.0})
    assert top_reason_codes(booster_contributions(booster, frame, 2), frame, features, {"count": 2.0}) == exact
    assert sum(map(len, exact)) > N_ROWS  # most rows carry codes: the comparison is not vacuous


def test_one_pass_gives_the_prediction_and_the_contributions_of_two():
    booster, frame = _train("binary")
    trees = ShallowTrees.from_booster(booster)
    for raw_score in (False, True):
        prediction, contributions = trees.predict_and_contributions(frame, raw_score=raw_score)
        np.testing.assert_array_equal(prediction, booster.predict(frame, raw_score=raw_score))
        np.testing.assert_array_equal(contributions, trees.contributions(frame))


def test_one_pass_of_a_deeper_booster_is_lightgbms_two_calls():
    booster, frame = _train("binary", max_depth=4, num_leaves=15)
    prediction, contributions = booster_predict_and_contributions(booster, frame, 1, 1)
    np.testing.assert_array_equal(prediction, booster.predict(frame))
    np.testing.assert_array_equal(contributions, booster.predict(frame, pred_contrib=True))


def _random_case(seed: int, max_depth: int) -> tuple[lgb.Booster, pd.DataFrame]:
    """A booster of random shape and missing-value settings on random data: NaN, exact zeros,
    tiny values that LightGBM reads as zero, infinities, two categoricals, a constant column."""
    rng = np.random.default_rng(seed)
    n = 1500

    def data(rng: np.random.Generator) -> pd.DataFrame:
        frame = pd.DataFrame({
            "a": rng.normal(0, 1, n),
            "b": rng.choice([0.0, 1e-40, -1e-36, 1.0, 2.5, 7.0], n),
            "c": rng.exponential(3, n),
            "d": rng.integers(-3, 4, n).astype(float),
            "constant": np.ones(n),
            "colour": pd.Categorical(rng.choice(list("rgbcmyk"), n), categories=list("rgbcmyk")),
            "size": pd.Categorical(rng.choice(["s", "m", "l"], n), categories=["s", "m", "l"]),
        })
        for column in ("a", "b", "c", "d", "colour", "size"):
            frame.loc[rng.random(n) < rng.uniform(0, 0.3), column] = np.nan
        frame.loc[rng.random(n) < 0.01, "c"] = np.inf
        frame.loc[rng.random(n) < 0.01, "a"] = -np.inf
        return frame

    frame = data(rng)
    signal = (np.nan_to_num(frame["a"].to_numpy(), nan=1.0, posinf=2, neginf=-2) * rng.normal()
              + (frame["b"].fillna(-1).to_numpy() == 0) * rng.normal() + (frame["colour"] == "g") * rng.normal()
              + np.nan_to_num(frame["d"].to_numpy()) * 0.2 + frame["size"].isna() * rng.normal())
    label = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(float)
    params = {
        "objective": "binary", "max_depth": max_depth, "num_leaves": min(2**max_depth, MAX_SPLITS + 1), "min_data_in_leaf": 10,
        "learning_rate": 0.2, "verbosity": -1, "seed": seed, "deterministic": True, "cat_smooth": 1,
        "min_data_per_group": 5, "max_cat_to_onehot": int(rng.integers(1, 8)),
        # missing values: ignored (read as 0: "None" splits), zeros and NaN missing ("Zero"), NaN missing ("NaN")
        "use_missing": seed % 3 != 0, "zero_as_missing": seed % 3 == 1,
        "feature_fraction": float(rng.uniform(0.5, 1.0)), "bagging_fraction": 0.8, "bagging_freq": 1,
    }
    booster = lgb.train(params, lgb.Dataset(frame, label, categorical_feature=["colour", "size"]),
                        num_boost_round=int(rng.integers(20, 80)))
    return lgb.Booster(model_str=booster.model_to_string()), data(np.random.default_rng(seed + 1000))


RANDOM_SEEDS = range(6)


# Property: on random boosters of depth 2 (the models') and 3, with every missing-value setting,
# the tables' one pass gives LightGBM's prediction bit for bit and its TreeSHAP to 1e-9.
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
@pytest.mark.parametrize("max_depth", [2, 3])
def test_random_boosters_with_missing_values_and_categories(seed, max_depth):
    booster, frame = _random_case(seed, max_depth)
    trees = ShallowTrees.from_booster(booster)
    assert trees is not None
    prediction, contributions = trees.predict_and_contributions(frame)
    np.testing.assert_array_equal(prediction, booster.predict(frame))
    np.testing.assert_allclose(contributions, booster.predict(frame, pred_contrib=True), rtol=0, atol=1e-9)


def test_the_random_boosters_grow_every_kind_of_split():
    # the property above is only as good as its cases: together they hold categorical splits and
    # numerical ones of each missing type (None, Zero, NaN), defaulting left and right
    kinds = set()
    for seed in RANDOM_SEEDS:
        trees = ShallowTrees.from_booster(_random_case(seed, 2)[0])
        for t, count in enumerate(trees.n_splits):
            for j in range(count):
                kinds.add("categorical" if trees.is_categorical[t, j]
                          else (int(trees.missing_type[t, j]), bool(trees.default_left[t, j])))
    assert {"categorical", (1, True), (1, False), (2, True), (2, False)} <= kinds
    assert any(kind[0] == 0 for kind in kinds if kind != "categorical")
