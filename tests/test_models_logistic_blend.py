"""The booster blended with a sign-constrained logistic (``logistic_blend``): one model,
one calibration, contributions that add up, monotone end to end, deterministic, picklable."""

import pickle

import numpy as np
import pandas as pd
import pytest

from models.linear_score import LinearScore, _onehot
from models.model_features import ModelFeature
from models.reason_codes import top_reason_codes
from models.training import TrainingConfig, train_breach_model

from test_models_training import FAST, RISING_RISK_GRIDS, frame  # noqa: F401  (the training tests' fixture)

BLEND = TrainingConfig(**{**FAST.to_dict(), "logistic_blend": 0.5})


@pytest.fixture(scope="module")
def blended(frame):
    return train_breach_model(frame, None, BLEND)


@pytest.fixture(scope="module")
def booster_only(frame):
    return train_breach_model(frame, None, FAST)


def test_a_coefficient_against_the_risk_direction_is_forced_to_zero():
    rng = np.random.default_rng(0)
    n = 4000
    design = pd.DataFrame({
        "dispute_ratio_6m": rng.uniform(0, 0.2, n),  # +1, but in this world it *lowers* risk
        "tenure_months": rng.uniform(0, 60, n),  # -1, and it does lower risk
        "order_growth_mom": rng.normal(0, 1, n),  # unconstrained, raises risk
        "membership_tier": pd.Categorical(rng.choice(["free", "gold"], n), categories=["free", "gold"]),
    })
    design.loc[rng.random(n) < 0.1, "order_growth_mom"] = np.nan
    z = -20 * design["dispute_ratio_6m"] - 0.05 * design["tenure_months"] + 0.8 * design["order_growth_mom"].fillna(0)
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    features = [
        ModelFeature("dispute_ratio_6m", 1, False),
        ModelFeature("tenure_months", -1, False),
        ModelFeature("order_growth_mom", 0, False),
        ModelFeature("membership_tier", 0, True),
    ]
    linear = LinearScore.fit(design, y, features, {"membership_tier": ["free", "gold"]})
    assert linear.coefs[0] == 0.0  # bounded at zero, not merely small
    assert linear.coefs[1] < -0.5 and linear.coefs[2] > 0.5
    # Unconstrained, the same data gives the dispute ratio a clearly negative weight.
    free = LinearScore.fit(design, y, [ModelFeature("dispute_ratio_6m", 0, False), *features[1:]],
                           {"membership_tier": ["free", "gold"]})
    assert free.coefs[0] < -0.1
    # Centred contributions plus the bias are the log-odds.
    np.testing.assert_allclose(linear.contributions(design).sum(axis=1) + linear.bias,
                               linear.decision_function(design), rtol=0, atol=1e-12)
    assert abs(linear.contributions(design).mean(axis=0)).max() < 1e-9


def test_blend_off_is_the_booster_alone(frame, booster_only):
    assert booster_only.model.linear is None
    design = booster_only.model.design_matrix(frame)
    np.testing.assert_array_equal(
        booster_only.model.raw_proba(frame), booster_only.model.booster.predict(design, num_threads=1)
    )


def test_raw_score_mixes_booster_and_logistic_log_odds(frame, blended):
    model = blended.model
    assert model.linear is not None and (model.booster_weight, model.linear_weight) == (0.5, 0.5)
    design = model.design_matrix(frame)
    expected = 0.5 * model.booster.predict(design, raw_score=True) + 0.5 * model.linear.decision_function(design)
    np.testing.assert_allclose(model.raw_score(design), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.raw_proba(frame), 1 / (1 + np.exp(-expected)), rtol=1e-12)
    # The calibrator was fitted on the blended score: its input is the blend's probability.
    np.testing.assert_allclose(
        blended.calibration_frame["raw_probability"], model.raw_proba(blended.calibration_frame), rtol=1e-12
    )


def test_combined_contributions_sum_to_the_combined_raw_score(frame, blended):
    model = blended.model
    rows = frame.head(300)
    contributions = model.contributions(rows)
    assert contributions.shape == (len(rows), len(model.features) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_score(model.design_matrix(rows)), atol=1e-9)
    # Reason codes read exactly these contributions.
    assert model.reason_codes(rows, k=3) == top_reason_codes(
        contributions, model.design_matrix(rows), model.features, model.medians, k=3
    )


@pytest.mark.parametrize("which", ["blended", "booster_only"])
def test_one_pass_gives_the_probabilities_and_contributions_of_two(frame, which, request):
    model = request.getfixturevalue(which).model
    design = model.design_matrix(frame)
    probability, contributions = model.proba_and_contributions_from_design(design)
    np.testing.assert_array_equal(probability, model.proba_from_design(design))  # published, bit for bit
    np.testing.assert_array_equal(contributions, model.contributions_from_design(design))
    empty, no_contributions = model.proba_and_contributions_from_design(design.iloc[:0])
    assert len(empty) == 0 and no_contributions.shape == (0, len(model.features) + 1)


def test_logistic_part_and_blend_are_monotone_in_constrained_features(frame, blended):
    model = blended.model
    rows = frame.sample(60, random_state=0)
    for name, grid in RISING_RISK_GRIDS:
        variants = [rows.assign(**{name: value}) for value in grid]
        logistic = np.column_stack([model.linear.decision_function(model.design_matrix(v)) for v in variants])
        blended_p = np.column_stack([model.predict_proba(v) for v in variants])
        assert (np.diff(logistic, axis=1) >= -1e-12).all(), name
        assert (np.diff(blended_p, axis=1) >= -1e-12).all(), name
    directions = np.array([f.risk_direction for f in model.features])
    assert (model.linear.coefs * directions >= 0).all()


def test_blended_training_is_deterministic(frame, blended):
    again = train_breach_model(frame, None, BLEND)
    np.testing.assert_array_equal(again.model.linear.coefs, blended.model.linear.coefs)
    np.testing.assert_array_equal(again.model.predict_proba(frame), blended.model.predict_proba(frame))
    np.testing.assert_array_equal(again.model.contributions(frame), blended.model.contributions(frame))


def test_blended_model_pickles_and_old_pickles_still_load(frame, blended, booster_only):
    restored = pickle.loads(pickle.dumps(blended.model))
    np.testing.assert_array_equal(restored.predict_proba(frame), blended.model.predict_proba(frame))
    assert restored.reason_codes(frame.head(50)) == blended.model.reason_codes(frame.head(50))
    # A model pickled before the blend existed has no linear/weights in its state.
    state = booster_only.model.__getstate__()
    for key in ("linear", "booster_weight", "linear_weight"):
        state.pop(key)
    old = booster_only.model.__class__.__new__(booster_only.model.__class__)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict_proba(frame), booster_only.model.predict_proba(frame))


def test_blend_weight_outside_zero_to_one_is_refused(frame):
    with pytest.raises(ValueError, match="logistic_blend"):
        train_breach_model(frame, None, TrainingConfig(**{**FAST.to_dict(), "logistic_blend": 1.0}))


def test_default_configuration_blends_half_and_half():
    assert TrainingConfig.from_yaml().logistic_blend == 0.5


def test_model_card_says_the_model_is_blended(blended, booster_only):
    from models.model_card import render_model_card

    assert "Blended in log-odds with a logistic regression (0.50 logistic" in render_model_card(blended)
    assert "Blended" not in render_model_card(booster_only)


def test_logistic_contributions_are_each_features_centred_term(frame, blended):
    # every column at once gives each feature's own term, value for value (the published log-odds)
    linear = blended.model.linear
    design = blended.model.design_matrix(frame)
    contributions = linear.contributions(design)
    assert linear.heavy.any() and not linear.heavy.all()
    for j, name in enumerate(linear.names):
        if linear.categorical[j]:
            continue
        values = design[name].to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
        imputed = np.where(missing, linear.medians[j], values)
        if linear.heavy[j]:
            imputed = np.sign(imputed) * np.log1p(np.abs(imputed))
        term = linear.coefs[j] * ((imputed - linear.means[j]) / linear.scales[j])
        np.testing.assert_array_equal(contributions[:, j], term + linear.missing_coefs[j] * (missing - linear.missing_means[j]))


def test_a_design_matrix_category_reads_as_its_text(frame, blended):
    # the coded column of a design matrix and the same values as text give the same one-hot levels
    name = next(n for n, categorical in zip(blended.model.linear.names, blended.model.linear.categorical, strict=True)
                if categorical)
    levels = blended.model.linear.levels[name]
    coded = blended.model.design_matrix(frame)[name]
    as_text = coded.astype(object).where(coded.notna(), None)
    np.testing.assert_array_equal(_onehot(coded, levels), _onehot(as_text, levels))
    unseen = pd.Series(pd.Categorical(["unseen", levels[0], None], categories=["unseen", *levels]))
    np.testing.assert_array_equal(_onehot(unseen, levels)[:, 0], [0.0, 1.0, 0.0])


def test_the_fit_stops_well_before_a_tight_tolerance_at_the_same_log_odds(monkeypatch):
    """The production tolerances (FIT_GRADIENT_TOLERANCE, FIT_RELATIVE_TOLERANCE) reach the
    log-odds of a tightly converged fit to within a few hundredths in far fewer objective
    evaluations: the fit's cost grows with rows x evaluations."""
    import models.linear_score as linear_score

    rng = np.random.default_rng(3)
    n, p = 20_000, 12
    # correlated inputs, as a supplier's rates over nested windows are: an ill-conditioned fit
    common = rng.normal(size=(n, 3))
    values = common @ rng.normal(size=(3, p)) + 0.05 * rng.normal(size=(n, p))
    design = pd.DataFrame(values, columns=[f"x{j}" for j in range(p)])
    design.loc[rng.random(n) < 0.05, "x0"] = np.nan
    z = -2.5 + design.fillna(0).to_numpy() @ rng.normal(0, 0.3, p)
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    features = [ModelFeature(f"x{j}", 0, False) for j in range(p)]
    evaluations: list[int] = []
    real_minimize = linear_score.minimize

    def counting_minimize(*args, **kwargs):
        solution = real_minimize(*args, **kwargs)
        evaluations.append(solution.nfev)
        return solution

    monkeypatch.setattr(linear_score, "minimize", counting_minimize)
    production = LinearScore.fit(design, y, features, {})
    monkeypatch.setattr(linear_score, "FIT_GRADIENT_TOLERANCE", 1e-8)
    monkeypatch.setattr(linear_score, "FIT_RELATIVE_TOLERANCE", 1e-13)
    tight = LinearScore.fit(design, y, features, {})
    gap = np.abs(production.decision_function(design) - tight.decision_function(design))
    assert gap.max() < 0.05 and gap.mean() < 0.01
    assert evaluations[0] * 2 <= evaluations[1], evaluations
