"""Breach model training: determinism, monotone constraints, out-of-time windows, calibration."""

import numpy as np
import pandas as pd
import pytest

from models.calibration import fit_calibrator
from demo_frames import example_training_frame
from models.metrics import expected_calibration_error
from models.model_features import ModelFeature
from models.model_files import load_model_files, save_model_files
from models.scoring import BreachRiskModel, build_design_matrix
from models.training import TrainingConfig, split_out_of_time, train_breach_model
from models.tree_shap import ShallowTrees, booster_from_text

FAST = TrainingConfig(max_boost_rounds=120, early_stopping_rounds=30, min_data_in_leaf=50, feature_warmup_months=0)


# Per constrained feature, values ordered so that risk may only rise along the grid.
RISING_RISK_GRIDS = (
    ("dispute_ratio_6m", np.linspace(0, 0.5, 26)),
    ("median_response_hours_6m", np.linspace(0, 200, 26)),
    ("on_time_shipment_rate_6m", np.linspace(1, 0, 26)),  # falling safe feature = rising risk
    ("tenure_months", np.linspace(60, 0, 26)),
)


@pytest.fixture(scope="module")
def frame():
    return example_training_frame(n_suppliers=400, months=12, seed=3, incomplete_months=2)


@pytest.fixture(scope="module")
def result(frame):
    return train_breach_model(frame, None, FAST)


def test_training_is_deterministic(frame, result):
    again = train_breach_model(frame, None, FAST)
    assert again.data_fingerprint == result.data_fingerprint
    np.testing.assert_array_equal(again.model.predict_proba(frame), result.model.predict_proba(frame))
    assert again.model.booster_model == result.model.booster_model


def test_the_thread_count_changes_no_model(frame, result):
    """The thread count is a speed setting only (training.yaml): two threads fit the very trees
    one does (deterministic, row-wise histograms), so raising it changes no published value."""
    two = train_breach_model(frame, None, TrainingConfig(**{**FAST.to_dict(), "num_threads": 2}))
    assert result.model.num_threads == 1 and two.model.num_threads == 2

    def trees(model):  # the booster's text, less the fit's parameters it ends with
        return model.booster_model.split("\nparameters:")[0]

    assert trees(two.model) == trees(result.model) and "Tree=1" in trees(result.model)
    np.testing.assert_array_equal(two.model.predict_proba(frame), result.model.predict_proba(frame))


def test_out_of_time_windows_are_ordered_and_skip_incomplete_labels(frame, result):
    split = result.split
    assert max(split.train) < min(split.calibration) <= max(split.calibration) < min(split.evaluation)
    complete_months = sorted(pd.to_datetime(frame.loc[frame.label_complete, "as_of_date"]).dt.date.unique())
    assert max(split.evaluation) == complete_months[-1]
    assert result.row_counts["dropped_incomplete"] == 2 * 400
    assert set(result.evaluation_frame["as_of_date"]) == set(split.evaluation)


def test_split_shrinks_on_short_history_and_refuses_too_short():
    months = pd.date_range("2024-01-31", periods=6, freq="ME").date
    split = split_out_of_time(months, TrainingConfig())
    assert (len(split.train), len(split.calibration), len(split.evaluation)) == (4, 1, 1)
    with pytest.raises(ValueError, match="at least 3 months"):
        split_out_of_time(months[:2], TrainingConfig())


def test_monotone_constraints_are_honoured(frame, result):
    directions = {f.name: f.risk_direction for f in result.features}
    assert directions["dispute_ratio_6m"] == 1 and directions["on_time_shipment_rate_6m"] == -1
    rows = frame.sample(60, random_state=0)
    for name, grid in RISING_RISK_GRIDS:
        probabilities = np.column_stack(
            [result.model.predict_proba(rows.assign(**{name: value})) for value in grid]
        )
        assert (np.diff(probabilities, axis=1) >= -1e-12).all(), name


def test_categories_are_fixed_in_the_model(frame, result):
    assert result.model.categories["membership_tier"] == sorted(frame["membership_tier"].unique())
    unseen = frame.head(5).assign(membership_tier="platinum")
    assert np.isfinite(result.model.predict_proba(unseen)).all()


def test_calibration_improves_ece_on_a_later_window_after_drift():
    frame = example_training_frame(n_suppliers=600, months=12, seed=5)
    # The world gets riskier after month 6: the booster learns the old base rate, the
    # calibration window (later months) must correct it.
    later = pd.to_datetime(frame["as_of_date"]) > pd.Timestamp("2024-06-30")
    rng = np.random.default_rng(0)
    p_drift = 1 / (1 + np.exp(-(np.log(frame.breach_probability_6m / (1 - frame.breach_probability_6m)) + 0.8)))
    frame.loc[later, "breach_6m"] = rng.random(later.sum()) < p_drift[later]
    result = train_breach_model(frame, None, FAST)
    assert result.metrics["evaluation_ece"] < result.metrics["evaluation_uncalibrated_ece"]
    assert result.metrics["evaluation_ece"] < 0.03


def test_auto_calibration_picks_by_held_out_ece():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.6, 8000)
    y = rng.random(8000) < p
    raw = p**2  # systematically too low
    choice = fit_calibrator(raw[:4000], y[:4000], "auto")
    assert set(choice.cv_ece) == {"isotonic", "platt"}
    assert choice.method == min(choice.cv_ece, key=choice.cv_ece.get)
    held_out = expected_calibration_error(y[4000:], choice.calibrator.transform(raw[4000:]))
    assert held_out < expected_calibration_error(y[4000:], raw[4000:]) / 3


def test_warm_up_months_are_skipped(frame):
    result = train_breach_model(frame, None, TrainingConfig(**{**FAST.to_dict(), "feature_warmup_months": 2}))
    complete_months = sorted(pd.to_datetime(frame.loc[frame.label_complete, "as_of_date"]).dt.date.unique())
    assert min(result.split.train) == complete_months[2]
    assert result.row_counts["dropped_warmup"] == 2 * 400


def test_isotonic_calibration_keeps_the_ranking():
    from sklearn.metrics import roc_auc_score

    from models.calibration import IsotonicCalibrator

    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.5, 6000)
    y = rng.random(6000) < p
    raw = p**2
    calibrator = IsotonicCalibrator.fit(raw[:3000], y[:3000])
    assert (np.diff(calibrator.x_thresholds) > 0).all() and (np.diff(calibrator.y_thresholds) > 0).all()
    held_out = calibrator.transform(raw[3000:])
    assert roc_auc_score(y[3000:], held_out) == pytest.approx(roc_auc_score(y[3000:], raw[3000:]), abs=1e-3)


@pytest.mark.parametrize(
    "p_low, p_high",
    [
        (0.0, 0.5),  # the safest rows never default in the calibration window: no step at 0
        (0.1, 1.0),  # the riskiest always do: no step at 1
        (0.0, 1.0),  # both ends at once
    ],
)
def test_isotonic_calibration_never_publishes_certainty(p_low, p_high):
    from sklearn.isotonic import IsotonicRegression

    from models.calibration import IsotonicCalibrator

    rng = np.random.default_rng(5)
    raw = np.sort(rng.uniform(0, 1, 4000))
    p = np.clip(np.interp(raw, [0, 0.3, 0.7, 1], [p_low, p_low, p_high, p_high]), 0, 1)
    y = rng.random(4000) < p
    calibrator = IsotonicCalibrator.fit(raw, y)
    probabilities = calibrator.transform(np.r_[0.0, raw, 1.0])
    assert (probabilities > 0).all() and (probabilities < 1).all()
    assert (np.diff(calibrator.y_thresholds) > 0).all()  # still increasing
    # only a step at exactly 0 or 1 moves, to the Jeffreys estimate of its rows
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(raw, y.astype(float))
    steps = np.unique(fitted)
    np.testing.assert_array_equal(calibrator.y_thresholds[1:-1], steps[1:-1])
    assert (p_low > 0 or steps[0] == 0.0) and (p_high < 1 or steps[-1] == 1.0)  # the case holds its certainty
    # (inside its neighbour: a step of a handful of rows gets half way to it instead)
    first, last = steps[0], steps[-1]
    if first == 0:
        jeffreys = 0.5 / ((fitted == 0).sum() + 1)
        first = jeffreys if jeffreys < steps[1] else steps[1] / 2
    if last == 1:
        jeffreys = ((fitted == 1).sum() + 0.5) / ((fitted == 1).sum() + 1)
        last = jeffreys if jeffreys > steps[-2] else (1 + steps[-2]) / 2
    assert (calibrator.y_thresholds[0], calibrator.y_thresholds[-1]) == pytest.approx((first, last))


def test_a_country_new_to_the_programme_scores_like_any_other(frame, result):
    # Country is not a model input (features/specs.py): a supplier from a country the
    # model never saw gets the probability its trading history earns, not a guess.
    assert "country" not in result.model.feature_columns
    rows = frame.head(50)
    np.testing.assert_array_equal(
        result.model.predict_proba(rows.assign(country="ZZ")), result.model.predict_proba(rows)
    )


# Every column type a features frame may carry reads as pd.to_numeric(...).astype("float64") would
# read it (the numeric ones now without to_numeric).
@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1.5, np.nan, -0.0, np.inf]),  # float64 with NaN, signed zero, infinity
        pd.Series([1, 0, -7, 2**53 + 1]),  # int64 (the largest rounds as to_numeric rounds it)
        pd.Series([1, 0, 3, 200], dtype="uint8"),
        pd.Series([1.5, 2.0, 0.0, 1.0], dtype="float32"),
        pd.Series([True, False, True, False]),  # bool: 1.0 / 0.0
        pd.Series([True, None, False, True], dtype="boolean"),  # nullable bool: NA is NaN
        pd.Series([1, None, 3, 4], dtype="Int64"),  # nullable int
        pd.Series(["1.5", "x", None, "3"], dtype=object),  # text: a non-number is NaN
    ],
)
def test_design_matrix_reads_numeric_columns_as_to_numeric(values):
    values = values.set_axis([10, 11, 12, 13])  # not the default index: columns must stay aligned
    frame = pd.DataFrame({"x": values})
    design = build_design_matrix(frame, [ModelFeature("x", 0, False)], {})
    reference = pd.to_numeric(values.astype("Float64") if values.dtype == bool or str(values.dtype) == "boolean"
                              else values, errors="coerce").astype("float64")
    assert design["x"].dtype == np.float64 and list(design.index) == [10, 11, 12, 13]
    np.testing.assert_array_equal(design["x"].to_numpy(), reference.to_numpy())


def test_each_window_is_scored_once_and_the_calibration_rows_keep_the_raw_scores_the_calibrator_saw(frame, monkeypatch):
    """Train and evaluation rows are scored once each; the calibration rows' raw scores, the
    calibrator's input, are reused for their metrics (the calibrator changes no raw score)."""
    scored = []
    real_raw_proba = BreachRiskModel._raw_proba  # what raw_proba scores a design matrix with

    def counting_raw_proba(self, design):
        scored.append(len(design))
        return real_raw_proba(self, design)

    monkeypatch.setattr(BreachRiskModel, "_raw_proba", counting_raw_proba)
    result = train_breach_model(frame, None, FAST)
    monkeypatch.undo()
    assert sorted(scored) == sorted(result.row_counts[w] for w in ("train", "calibration", "evaluation"))
    calibration = result.calibration_frame
    np.testing.assert_array_equal(calibration["raw_probability"], result.model.raw_proba(calibration))
    np.testing.assert_array_equal(calibration["predicted_probability"],
                                  result.model.calibrator.transform(calibration["raw_probability"].to_numpy()))


def test_a_boosters_trees_are_read_into_tables_once_per_model_text(frame, tmp_path, monkeypatch):
    """The uncalibrated model that scores the calibration rows, the calibrated model and the
    model loaded back from its files (as MLflow does to check the input example right after
    logging it) are built from one booster text: its trees become tables once, and all three
    predict the same."""
    booster_from_text.cache_clear()
    built = []
    real_from_booster = ShallowTrees.from_booster.__func__
    monkeypatch.setattr(ShallowTrees, "from_booster",
                        classmethod(lambda cls, booster: built.append(booster) or real_from_booster(cls, booster)))
    result = train_breach_model(frame, None, FAST)
    assert len(built) == 1
    loaded = load_model_files(save_model_files(result.model, tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(frame), result.model.predict_proba(frame))
    assert len(built) == 1


def test_a_fingerprint_the_caller_took_is_recorded_without_hashing_the_rows_again(frame, result, monkeypatch):
    """models.vintages fingerprints a vintage's rows for its reuse key and hands the fingerprint on."""
    monkeypatch.setattr("models.training.training_data_fingerprint", lambda rows: pytest.fail("rows hashed again"))
    again = train_breach_model(frame, None, FAST, data_fingerprint=result.data_fingerprint)
    assert again.data_fingerprint == again.model.metadata["data_fingerprint"] == result.data_fingerprint
    assert again.model.booster_model == result.model.booster_model
