"""The loss-rate model: exposure-aware, calibrated per dollar, and blind to size as risk."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from demo_frames import example_training_frame
from models.loss_rate import (
    COVERAGES,
    COVERAGE_RATE_COLUMNS,
    EXPOSURE_COLUMN,
    LOSS_RATE_COLUMN,
    coverage_refunds,
    exposure_rows,
    loss_config_from_yaml,
    train_loss_rate_model,
)
from models.metrics import loss_rate_metrics, weighted_gini
from models.model_features import SIZE_FEATURES
from models.model_files import load_model_files, save_model_files
from models.reason_codes import REASON_STEMS
from models.registry import PromotionGates, compare_loss_rate_on_rows
from models.training import TrainingConfig, train_breach_model
from models.tree_shap import ShallowTrees

FAST_LOSS = TrainingConfig(
    max_boost_rounds=300, early_stopping_rounds=50, min_data_in_leaf=50, learning_rate=0.05,
    lightgbm_overrides={"objective": "tweedie", "tweedie_variance_power": 1.5},
)
FAST = TrainingConfig(max_boost_rounds=200, early_stopping_rounds=40, min_data_in_leaf=50)
# Inputs with size features, so the size constraint has something to hold.
INPUTS = [
    "membership_tier", "tenure_months", "completion_rate_6m", "on_time_shipment_rate_6m", "dispute_ratio_6m",
    "response_rate_6m", "review_mean_6m", "orders_6m", "deal_count_12m", "deal_value_12m_usd", "review_count_6m",
]
SIZE_INPUTS = [name for name in INPUTS if name in SIZE_FEATURES]
# Codes that would say "trading a lot raises your risk".
SIZE_HIGH_CODES = {f"{REASON_STEMS.get(name, name.upper())}_HIGH" for name in SIZE_FEATURES}


@pytest.fixture(scope="module")
def frame():
    return example_training_frame(n_suppliers=600, months=14, seed=3, incomplete_months=2)


@pytest.fixture(scope="module")
def result(frame):
    return train_loss_rate_model(frame, INPUTS, FAST_LOSS)


def test_the_loss_rate_ranks_and_levels_like_the_truth_out_of_time(result):
    evaluation = result.evaluation_frame
    rank = spearmanr(evaluation[LOSS_RATE_COLUMN], evaluation["true_loss_rate_6m"]).statistic
    assert rank > 0.6
    # refund dollars predicted on the untouched months against those that happened
    assert result.metrics["evaluation_total_predicted_to_realised"] == pytest.approx(1.0, abs=0.15)
    assert result.metrics["evaluation_total_gini"] > 0.3


def test_training_logs_the_spread_the_collapse_check_judges_against(result):
    from models.metrics import log_spread
    from models.monitoring import MONITORED_SCORES

    spread_metric = {score.column: score.spread_metric for score in MONITORED_SCORES}[LOSS_RATE_COLUMN]
    assert result.metrics[spread_metric] == pytest.approx(log_spread(result.evaluation_frame[LOSS_RATE_COLUMN]))
    assert result.metrics[spread_metric] > 0
    ties_metric = {score.column: score.ties_metric for score in MONITORED_SCORES}[LOSS_RATE_COLUMN]
    assert 0 < result.metrics[ties_metric] < 0.5


def test_coverages_sum_to_at_most_the_total(result, frame):
    rates = result.model.predict_rates(frame.head(200))
    split = sum(rates[column] for column in COVERAGE_RATE_COLUMNS.values())
    assert (rates[LOSS_RATE_COLUMN] >= split - 1e-12).all()
    assert (rates >= 0).all().all()


def test_training_is_deterministic(frame, result):
    again = train_loss_rate_model(frame, INPUTS, FAST_LOSS)
    assert again.model.booster_models == result.model.booster_models
    assert again.model.scales == result.model.scales


def test_rows_without_exposure_or_complete_window_are_not_learned_from(frame):
    rows = exposure_rows(frame.assign(**{EXPOSURE_COLUMN: np.where(np.arange(len(frame)) % 2, 0.0, frame[EXPOSURE_COLUMN])}))
    assert (rows[EXPOSURE_COLUMN] > 0).all()
    assert rows["label_complete"].all()
    assert len(rows) < frame["label_complete"].sum()


def test_other_refunds_are_the_total_beyond_the_two_covers():
    frame = pd.DataFrame({
        "breach_refund_usd_6m": [10.0, 5.0, None],
        "pre_shipment_refund_usd_6m": [4.0, 5.0, None],
        "post_delivery_refund_usd_6m": [3.0, 0.0, None],
    })
    refunds = coverage_refunds(frame)
    np.testing.assert_allclose(refunds["other"], [3.0, 0.0, 0.0])


@pytest.mark.parametrize("size_feature", SIZE_INPUTS)
def test_more_trade_never_raises_the_loss_rate(result, frame, size_feature):
    rows = frame[frame["label_complete"]].head(300)
    low = result.model.predict_loss_rate(rows)
    high = result.model.predict_loss_rate(rows.assign(**{size_feature: rows[size_feature] * 10 + 100}))
    assert (high <= low + 1e-15).all()


def test_the_default_model_never_reads_size_as_risk(frame):
    default = train_breach_model(frame, INPUTS, FAST, label_column="default_6m", size_non_increasing=True)
    assert {f.name: f.risk_direction for f in default.features if f.name in SIZE_FEATURES} == dict.fromkeys(SIZE_INPUTS, -1)
    rows = frame.head(300)
    for name in SIZE_INPUTS:
        bigger = rows.assign(**{name: rows[name] * 10 + 100})
        assert (default.model.predict_proba(bigger) <= default.model.predict_proba(rows) + 1e-12).all()
    assert default.metrics["evaluation_auc"] > 0.65
    assert default.label_column == "default_6m"


def test_reason_codes_never_say_trading_a_lot_raises_risk(result, frame):
    codes = result.model.reason_codes(frame.head(500), k=3)
    assert any(codes)
    assert not {code for row in codes for code in row} & SIZE_HIGH_CODES


def test_one_pass_gives_the_rates_and_contributions_of_two(result, frame):
    model = result.model
    design = model.design_matrix(frame)
    components, contributions = model.component_rates_and_contributions(design)
    expected = model.component_rates(design)
    for coverage, rates in expected.items():
        np.testing.assert_array_equal(components[coverage], rates)  # the published rates, bit for bit
    np.testing.assert_array_equal(contributions, model.contributions_from_design(design, expected))
    empty, no_contributions = model.component_rates_and_contributions(design.iloc[:0])
    assert no_contributions.shape == (0, len(model.features) + 1) and all(len(r) == 0 for r in empty.values())


def test_a_loaded_loss_rate_model_reuses_the_boosters_of_the_same_text(result, frame, tmp_path, monkeypatch):
    """Loaded back from its files (as MLflow does right after logging it), the model shares the
    trained model's boosters: no booster is parsed or read into tables again, rates identical."""
    expected = result.model.predict_rates(frame)  # the trained model's boosters and tables exist
    built = []
    real_from_booster = ShallowTrees.from_booster.__func__
    monkeypatch.setattr(ShallowTrees, "from_booster",
                        classmethod(lambda cls, booster: built.append(booster) or real_from_booster(cls, booster)))
    loaded = load_model_files(save_model_files(result.model, tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.predict_rates(frame), expected)
    assert built == []


BLEND = 0.05
BLENDED_LOSS = TrainingConfig(**{**FAST_LOSS.to_dict(), "portfolio_blend": BLEND})


@pytest.fixture(scope="module")
def blended(frame):
    return train_loss_rate_model(frame, INPUTS, BLENDED_LOSS)


def test_the_pipeline_blends_the_loss_rate_toward_the_portfolio():
    """loss_rate.yaml's measured weight (bench/results/risk_oracle_gap.md, 2026-12-06): without
    it the published rates of the largest clean suppliers fall to half their true rate out of time."""
    assert loss_config_from_yaml().portfolio_blend == pytest.approx(0.05)


def test_each_cover_is_pulled_toward_its_own_portfolio_rate(blended, result, frame):
    rows = exposure_rows(frame)
    refunds = coverage_refunds(rows)
    exposure = rows[EXPOSURE_COLUMN].sum()
    # the portfolio: every complete-label month the model learnt from, per coverage
    assert blended.model.portfolio_rates == pytest.approx({c: refunds[c].sum() / exposure for c in COVERAGES})
    # the same boosters and scales; only the last step differs
    assert blended.model.booster_models == result.model.booster_models
    design = blended.model.design_matrix(frame)
    alone, pulled = result.model.component_rates(design), blended.model.component_rates(design)
    for coverage in COVERAGES:
        expected = (1 - BLEND) * alone[coverage] + BLEND * blended.model.portfolio_rates[coverage]
        np.testing.assert_allclose(pulled[coverage], expected, rtol=1e-12)
        # the floor the blend exists for: no rate below w x the portfolio's, however clean the record
        assert pulled[coverage].min() >= BLEND * blended.model.portfolio_rates[coverage] * (1 - 1e-12)
    rates = blended.model.predict_rates(frame)
    np.testing.assert_allclose(rates[LOSS_RATE_COLUMN], sum(pulled.values()), rtol=1e-12)
    # the published rates and the one-pass rates behind the reason codes stay the same numbers
    one_pass, _ = blended.model.component_rates_and_contributions(design)
    for coverage in COVERAGES:
        np.testing.assert_array_equal(one_pass[coverage], pulled[coverage])
    # a monotone map: the ranking, and so every reason code, is the boosters'
    assert spearmanr(rates[LOSS_RATE_COLUMN], result.model.predict_loss_rate(frame)).statistic == pytest.approx(1.0)
    assert blended.model.reason_codes(frame.head(50)) == result.model.reason_codes(frame.head(50))


def test_the_portfolio_rate_reads_only_outcomes_known_when_the_model_is_trained(blended, frame):
    """Refunds of rows whose six-month window has not closed (unknown at the vintage's month end)
    never reach the portfolio rate the published rates are pulled toward."""
    open_window = ~frame["label_complete"].fillna(False).astype(bool)
    assert open_window.any()
    inflated = frame.assign(**{column: frame[column].where(~open_window, frame[column] * 1000 + 1e6)
                               for column in ("breach_refund_usd_6m", "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m")})
    again = train_loss_rate_model(inflated, INPUTS, BLENDED_LOSS)
    assert again.model.portfolio_rates == blended.model.portfolio_rates


def test_a_model_from_before_the_blend_loads_as_the_scaled_boosters_alone(blended, result, frame, tmp_path):
    import json
    import pickle

    folder = save_model_files(blended.model, tmp_path / "model")
    document = json.loads((folder / "model.json").read_text())
    for key in ("portfolio_rates", "portfolio_blend"):  # what a folder saved before 2026-12-06 lacks
        del document[key]
    (folder / "model.json").write_text(json.dumps(document))
    pd.testing.assert_frame_equal(load_model_files(folder).predict_rates(frame), result.model.predict_rates(frame))
    state = result.model.__getstate__()
    for key in ("portfolio_rates", "portfolio_blend"):
        del state[key]
    old = pickle.loads(pickle.dumps(result.model))
    old.__dict__.clear()
    old.__setstate__(state)
    pd.testing.assert_frame_equal(old.predict_rates(frame), result.model.predict_rates(frame))


def test_a_blend_without_a_portfolio_rate_per_coverage_is_refused(blended):
    model = blended.model
    with pytest.raises(ValueError, match="needs a portfolio rate per coverage"):
        type(model)(model.booster_models, model.scales, model.features, model.categories, model.medians,
                    portfolio_rates={"pre_shipment": 0.01}, portfolio_blend=0.05)


def test_a_fingerprint_the_caller_took_is_recorded_without_hashing_the_rows_again(result, frame, monkeypatch):
    """models.vintages fingerprints a vintage's rows for its reuse key and hands the fingerprint on."""
    monkeypatch.setattr("models.loss_rate.training_data_fingerprint", lambda rows: pytest.fail("rows hashed again"))
    again = train_loss_rate_model(frame, INPUTS, FAST_LOSS, data_fingerprint=result.data_fingerprint)
    assert again.data_fingerprint == again.model.metadata["data_fingerprint"] == result.data_fingerprint
    assert again.model.booster_models == result.model.booster_models


# Loss metrics on hand-made rows; each case says what it pins down.
@pytest.mark.parametrize(
    ("refund", "exposure", "predicted", "expected_ratio"),
    [
        ([0, 10, 0, 30], [100, 100, 100, 100], [0.1, 0.1, 0.1, 0.1], 1.0),  # right level, flat ranking
        ([0, 10, 0, 30], [100, 100, 100, 100], [0.2, 0.2, 0.2, 0.2], 2.0),  # twice the refunds predicted
        ([5, 5], [1000, 10], [0.005, 0.5], 1.0),  # exposure weights: each row's dollars, not its rate
    ],
)
def test_loss_rate_metrics_weigh_by_exposure(refund, exposure, predicted, expected_ratio):
    metrics = loss_rate_metrics(np.array(refund, float), np.array(exposure, float), np.array(predicted, float))
    assert metrics["predicted_to_realised"] == pytest.approx(expected_ratio)


def test_weighted_gini_is_one_for_the_perfect_order_and_nan_without_refunds():
    refund, exposure = np.array([0.0, 1.0, 5.0]), np.array([10.0, 10.0, 10.0])
    assert weighted_gini(refund, exposure, refund / exposure) == pytest.approx(1.0)
    assert weighted_gini(refund, exposure, -refund) < 0
    assert np.isnan(weighted_gini(np.zeros(3), exposure, np.ones(3)))


# The loss-rate promotion gates; each case says why it passes or fails.
@pytest.mark.parametrize(
    ("champion", "challenger", "promoted"),
    [
        ({"gini": 0.50, "tweedie_deviance": 1.00}, {"gini": 0.50, "tweedie_deviance": 1.00}, True),  # equal
        ({"gini": 0.50, "tweedie_deviance": 1.00}, {"gini": 0.48, "tweedie_deviance": 0.99}, False),  # ranks worse
        ({"gini": 0.50, "tweedie_deviance": 1.00}, {"gini": 0.51, "tweedie_deviance": 1.05}, False),  # fits worse
        ({"gini": 0.50, "tweedie_deviance": 1.00}, {"gini": 0.495, "tweedie_deviance": 1.005}, True),  # within noise
    ],
)
def test_loss_rate_gates(champion, challenger, promoted):
    passed, reasons = compare_loss_rate_on_rows(champion, challenger, PromotionGates())
    assert passed is promoted
    assert len(reasons) == 2


def test_each_window_is_binned_once_and_every_coverage_learns_what_its_own_dataset_would_give(frame, monkeypatch):
    """The coverages share one binned Dataset per window (relabelled per coverage); binning
    never reads the target, so the boosters are those of a fresh Dataset per coverage."""
    built = []
    real_init, real_train = lgb.Dataset.__init__, lgb.train

    def counting_init(self, *args, **kwargs):
        built.append(kwargs.get("reference") is not None)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(lgb.Dataset, "__init__", counting_init)
    shared = train_loss_rate_model(frame, INPUTS, FAST_LOSS)
    # one training and one calibration Dataset for the three coverages
    assert built == [False, True]

    def train_on_fresh_datasets(params, train_set, valid_sets, **kwargs):
        fresh = lgb.Dataset(train_set.data, train_set.get_label(), weight=train_set.get_weight(),
                            categorical_feature=train_set.categorical_feature, free_raw_data=False)
        valid = [lgb.Dataset(v.data, v.get_label(), weight=v.get_weight(), reference=fresh) for v in valid_sets]
        return real_train(params, fresh, valid_sets=valid, **kwargs)

    monkeypatch.setattr(lgb, "train", train_on_fresh_datasets)
    separate = train_loss_rate_model(frame, INPUTS, FAST_LOSS)
    assert shared.model.booster_models == separate.model.booster_models
    assert shared.model.scales == separate.model.scales
    pd.testing.assert_frame_equal(shared.evaluation_frame, separate.evaluation_frame)
