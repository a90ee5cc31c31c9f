"""The monitoring statistics: drift with sample-size-aware critical values, score collapse,
calibration and ranking on completed outcomes, per segment."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from models import monitoring as m


def _normal(seed: int, n: int, shift: float = 0.0) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(shift, 1.0, n))


def test_a_known_shift_is_flagged():
    result = m.drift_test("x", _normal(1, 20_000), _normal(2, 5_000, shift=0.5))
    assert result.drifted and result.psi > result.critical_psi


def test_a_shift_below_the_tolerated_psi_is_not_flagged_however_large_the_samples():
    # A 0.05-sd shift has a true PSI of about 0.0025: real, but too small to act on.
    result = m.drift_test("x", _normal(1, 200_000), _normal(2, 200_000, shift=0.05))
    assert not result.drifted
    # Yurdakul's test alone (tolerance 0) would flag it: the tolerance is what keeps it quiet.
    assert m.drift_test("x", _normal(1, 200_000), _normal(2, 200_000, shift=0.05), tolerated_psi=0.0).drifted


@pytest.mark.parametrize(
    "n_reference, n_current",
    [
        (60, 60),  # tiny: PSI of pure noise is often above 0.1 here
        (1_000, 200),  # a segment against a month
        (10_000, 2_000),  # a month against a training window
    ],
)
def test_same_distribution_alarms_at_the_documented_rate(n_reference, n_current):
    """Yurdakul's approximation holds: with no tolerance the false-alarm rate is alpha; with
    the default tolerance it is far below."""
    alpha, repetitions = 0.05, 400
    rng = np.random.default_rng(n_reference + n_current)
    exact = tolerant = 0
    for _ in range(repetitions):
        reference, current = pd.Series(rng.normal(size=n_reference)), pd.Series(rng.normal(size=n_current))
        exact += m.drift_test("x", reference, current, alpha=alpha, tolerated_psi=0.0).drifted
        tolerant += m.drift_test("x", reference, current, alpha=alpha).drifted
    bound = alpha + 3 * math.sqrt(alpha * (1 - alpha) / repetitions)
    assert exact / repetitions <= bound, exact
    assert tolerant / repetitions <= alpha, tolerant


def test_noise_above_the_folklore_threshold_is_not_an_alarm_in_a_small_sample():
    rng = np.random.default_rng(5)
    psis = [m.drift_test("x", pd.Series(rng.normal(size=60)), pd.Series(rng.normal(size=60))) for _ in range(50)]
    assert any(r.psi > 0.1 for r in psis)  # the 0.1 rule of thumb would alarm on noise
    assert not any(r.drifted for r in psis)


def test_tiny_samples_never_alarm():
    result = m.drift_test("x", _normal(1, 5_000), _normal(2, m.MIN_DRIFT_ROWS - 1, shift=3.0))
    assert result.psi > 1 and not result.drifted and math.isinf(result.critical_psi)


def test_critical_psi_shrinks_with_sample_size_to_the_tolerance():
    values = [m.critical_psi(n, n, 10) for n in (100, 1_000, 10_000, 1_000_000)]
    assert values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(m.TOLERATED_PSI, rel=0.1)
    assert m.critical_psi(100, 100, 10) > 0.1


def test_missing_values_are_a_bin_of_their_own():
    reference = _normal(1, 5_000)
    current = _normal(2, 5_000)
    current[:1_500] = np.nan  # a feed starts sending NULLs
    result = m.drift_test("x", reference, current)
    assert result.drifted and result.most_changed_bin == m.MISSING_BIN
    assert result.missing_share_current == pytest.approx(0.3)


@pytest.mark.parametrize(
    "reference, current, drifted",
    [
        # same category mix
        (["a"] * 500 + ["b"] * 500, ["a"] * 250 + ["b"] * 250, False),
        # a category unseen in the reference takes half the month: pooled as <other>, drifts
        (["a"] * 500 + ["b"] * 500, ["a"] * 100 + ["b"] * 150 + ["new"] * 250, True),
        # booleans are categories too
        ([True] * 900 + [False] * 100, [True] * 250 + [False] * 250, True),
    ],
)
def test_categorical_drift(reference, current, drifted):
    assert m.drift_test("c", pd.Series(reference), pd.Series(current)).drifted is drifted


def test_mass_points_keep_their_bin():
    # 70% zeros (no disputes): equal quantiles merge into one bin instead of empty ones.
    values = pd.Series(np.r_[np.zeros(700), np.arange(1, 301)])
    bins = m.reference_bins(values)
    counts = m.bin_counts(values, bins)
    assert counts[0] == 700 and counts.sum() == 1_000 and (counts[:-1] > 0).all()


def test_drift_table_shares_alpha_over_columns_and_sorts_worst_first():
    reference = pd.DataFrame({"a": _normal(1, 5_000), "b": _normal(2, 5_000)})
    current = pd.DataFrame({"a": _normal(3, 5_000), "b": _normal(4, 5_000, shift=1.0)})
    table = m.drift_table(m.profile(reference, ["a", "b"]), current)
    assert list(table["column"]) == ["b", "a"] and list(table["drifted"]) == [True, False]
    single = m.drift_test("b", reference["b"], current["b"])
    assert table.loc[0, "critical_psi"] > single.critical_psi  # alpha / 2 each


@pytest.mark.parametrize(
    "current, collapsed",
    [
        (np.random.default_rng(2).lognormal(-5, 1, 5_000), False),  # a normal month
        (np.full(5_000, 0.01), True),  # a constant score
        (np.random.default_rng(2).lognormal(-5, 0.1, 5_000), True),  # spread shrunk to a tenth
        (np.r_[np.random.default_rng(2).lognormal(-5, 1, 4_990), [np.nan] * 10], True),  # NaN scores
        (np.array([]), True),  # no scores at all
    ],
)
def test_score_collapse(current, collapsed):
    reference = np.random.default_rng(1).lognormal(-5, 1, 20_000)
    assert m.score_collapse(reference, current).collapsed is collapsed


@pytest.mark.parametrize(
    "own_spread, collapsed",
    [
        (0.04, False),  # the model always scored this narrowly out of time: a weak signal, honestly shown
        (1.0, True),  # the model spread its scores out of time and lost it now: a collapse
        (None, True),  # its run logged no spread: the reference months' scores decide (wide: collapsed)
        (float("nan"), True),  # likewise for a spread that could not be computed
        (0.0, True),  # likewise for a model that scored everyone alike out of time
    ],
)
def test_the_collapse_spread_is_judged_against_the_scoring_models_own(own_spread, collapsed):
    # Earlier vintages published widely spread scores; this month's model scores narrowly.
    rng = np.random.default_rng(3)
    reference, current = rng.lognormal(-5, 1, 20_000), rng.lognormal(-2.3, 0.04, 2_000)
    result = m.score_collapse(reference, current, own_spread)
    assert result.collapsed is collapsed
    if collapsed:
        whose = "the model's own out of time" if own_spread == 1.0 else "the reference months'"
        assert whose in result.reason


@pytest.mark.parametrize(
    "own_top_share, collapsed",
    [
        (0.5, False),  # the model always put half the suppliers on its lowest step: its nature, no collapse
        (0.1, True),  # out of time it hardly tied; half on one score now is a collapse
        (None, True),  # its run logged no ties: the reference months' scores (no ties) decide
    ],
)
def test_ties_are_judged_against_the_scoring_models_own(own_top_share, collapsed):
    rng = np.random.default_rng(4)
    reference = rng.lognormal(-5, 1, 20_000)  # an earlier vintage's scores: no ties
    current = np.r_[np.full(1_030, 0.002), rng.lognormal(-4, 1, 970)]  # 51.5% on an isotonic lowest step
    result = m.score_collapse(reference, current, reference_spread=None, reference_top_share=own_top_share)
    assert result.collapsed is collapsed
    assert ("share one score" in result.reason) is collapsed


def test_the_logged_spread_is_that_of_the_scores_as_published():
    # A calibrator may publish exact zeros; the spread leaves them out, in training's metrics as in
    # the check, rather than counting them at the log loss's clipping floor.
    from models.metrics import classification_metrics, log_spread

    p = np.array([0.0, 0.0, 0.2, 0.4, 0.8, 0.9])
    assert classification_metrics(np.array([0, 0, 0, 1, 1, 1]), p)["log_spread"] == pytest.approx(
        np.std(np.log(p[2:])))
    assert log_spread(p) == pytest.approx(np.std(np.log(p[2:])))
    assert classification_metrics(np.array([0, 0, 0, 1, 1, 1]), p)["top_value_share"] == pytest.approx(2 / 6)


def test_alike_suppliers_are_no_collapse_when_they_always_were():
    always_alike = np.r_[np.full(600, 0.01), np.random.default_rng(1).lognormal(-5, 1, 400)]
    assert not m.score_collapse(always_alike, always_alike).collapsed
    assert not m.score_collapse([], always_alike).collapsed  # no reference: only missing values count
    assert m.score_collapse([], [np.nan, 0.1]).collapsed


def _bernoulli(seed: int, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 8, n)
    return (rng.random(n) < np.clip(p * scale, 0, 1)).astype(int), p


@pytest.mark.parametrize(
    "scale, miscalibrated, blocking",
    [
        (1.0, False, False),  # calibrated
        (1.1, False, False),  # 10% off: within the tolerance
        (1.6, True, False),  # 60% more events than predicted: a warning
        (3.0, True, True),  # three times the predicted events: beyond the blocking factor
    ],
)
def test_probability_calibration(scale, miscalibrated, blocking):
    y, p = _bernoulli(3, 5_000, scale)
    result = m.probability_calibration(y, p)
    assert (result.miscalibrated, result.beyond_blocking_bound) == (miscalibrated, blocking)


def test_calibration_of_a_small_sample_is_not_significant():
    y, p = _bernoulli(3, 40, 1.6)
    assert not m.probability_calibration(y, p).miscalibrated


def test_loss_rate_calibration_uses_refund_dollars():
    rng = np.random.default_rng(4)
    exposure = rng.lognormal(9, 1, 5_000)
    rate = rng.lognormal(-6, 0.5, 5_000)
    refund = rng.poisson(exposure * rate / 50) * 50.0  # refunds in lumps of $50
    assert not m.loss_rate_calibration(refund, exposure, rate).miscalibrated
    halved = m.loss_rate_calibration(refund, exposure, rate / 2.5)
    assert halved.miscalibrated and halved.beyond_blocking_bound and halved.ratio > 2


def test_ranking_degradation_needs_significance():
    rng = np.random.default_rng(6)
    p = rng.random(5_000)
    y = (rng.random(5_000) < p).astype(int)
    auc, se = m.auc_with_standard_error(y, p)
    assert 0.7 < auc < 0.9 and 0 < se < 0.02
    assert not m.ranking_degraded(auc, se, auc)
    assert m.ranking_degraded(auc, se, auc + 0.1)
    assert not m.ranking_degraded(auc, 0.2, auc + 0.1)  # a tiny segment's AUC says little
    assert math.isnan(m.auc_with_standard_error(np.zeros(10, int), p[:10])[0])


def test_performance_by_segment_reports_small_segments_without_alarming():
    rng = np.random.default_rng(7)
    n = 4_000
    p = rng.beta(1, 8, n)
    frame = pd.DataFrame({
        "as_of_date": date(2025, 1, 31), "supplier_id": [f"S{i}" for i in range(n)],
        "country": np.where(np.arange(n) < 3_900, "CN", "VN"),  # VN: 100 suppliers
        "category": "tools", "tenure_months": 30, "orders_6m": 10,
        "default_probability_6m": p,
    })
    y = rng.random(n) < p
    y[3_900:] = rng.random(100) < np.clip(p[3_900:] * 4, 0, 1)  # the small segment is badly off
    frame["default_6m"] = y
    table = m.performance_by_segment(frame, m.MONITORED_SCORES[1])
    vn = table[(table["segment"] == "country") & (table["value"] == "VN")].iloc[0]
    assert vn["rows"] == 100 and not vn["alarmable"] and not vn["miscalibrated"]
    overall = table[table["segment"] == "all"].iloc[0]
    assert overall["alarmable"] and overall["rows"] == n
    assert set(table["segment"]) == {"all", "country", "tenure_band", "volume_band", "category"}


def test_the_reference_window_is_the_versions_fitted_months(tmp_path):
    """`model_reference` reads the months a registered version was fitted on (train and
    calibration windows of its training run) and its out-of-time metrics from MLflow."""
    from mlflow import MlflowClient

    from models.monitoring_data import model_reference, months_of_span

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri()))
    client.log_param(run.info.run_id, "window.train", "2024-01-31..2024-03-31 (3 months)")
    client.log_param(run.info.run_id, "window.calibration", "2024-04-30..2024-04-30 (1 months)")
    client.log_param(run.info.run_id, "window.evaluation", "2024-05-31..2024-07-31 (3 months)")
    client.log_metric(run.info.run_id, "evaluation_auc", 0.81)
    client.log_metric(run.info.run_id, "evaluation_log_spread", 0.42)
    client.log_metric(run.info.run_id, "evaluation_top_value_share", 0.3)
    client.create_registered_model("supplier_default_risk")
    client.create_model_version("supplier_default_risk", (tmp_path / "a").as_uri(), run_id=run.info.run_id)

    reference = model_reference(uri, "supplier_default_risk/1")
    assert reference.months == (date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30))
    assert reference.metrics["evaluation_auc"] == pytest.approx(0.81)
    assert model_reference(uri, "supplier_default_risk/9").months == ()  # unknown: the caller falls back
    with pytest.raises(ValueError, match="not a month span"):
        months_of_span("Jan..Mar")

    # A month scored by two versions (vintages): the reference joins both versions' months.
    import duckdb

    from features import month_ends
    from models.monitoring_data import load_monitoring_run

    second = client.create_run(client.get_experiment_by_name("e").experiment_id)
    client.log_param(second.info.run_id, "window.train", "2024-05-31..2024-06-30 (2 months)")
    client.create_model_version("supplier_default_risk", (tmp_path / "a").as_uri(), run_id=second.info.run_id)
    months = month_ends(date(2024, 1, 1), date(2024, 8, 31))
    _, features, scores = _monthly_frames({}, n=100)
    features = features.rename(columns={"x": "completion_rate_6m"})  # a model input of the catalogue
    scores = scores.assign(model_version="supplier_breach_risk/1", loss_rate_model_version="supplier_loss_rate/1",
                           default_model_version="supplier_default_risk/1")
    last = scores["as_of_date"] == months[-1]
    scores.loc[last & (scores["supplier_id"] < "S5"), "default_model_version"] = "supplier_default_risk/2"
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features; CREATE SCHEMA models")
    con.execute("CREATE TABLE features.supplier_features AS SELECT * FROM features")
    con.execute("CREATE TABLE models.scores AS SELECT * FROM scores")
    run = load_monitoring_run(con, months[-2:], features_table="features.supplier_features", scores_table="models.scores",
                              tracking_uri=uri, data_horizon=datetime(2024, 7, 1))
    assert run.references[months[-2]] == tuple(months[:4])
    assert run.references[months[-1]] == tuple(months[:6])
    # the collapse check's spread reference: the scoring version's own, where its run logged one
    assert run.own_metrics(months[-2], "spread_metric") == {"default_probability_6m": pytest.approx(0.42)}
    assert run.own_metrics(months[-2], "ties_metric") == {"default_probability_6m": pytest.approx(0.3)}


def _monthly_frames(shifts: dict[int, float], n: int = 2_000):
    """Eight months of one input and the three scores; ``shifts`` moves the input's mean in
    the months given (by index)."""
    from features import month_ends

    months = month_ends(date(2024, 1, 1), date(2024, 8, 31))
    rng = np.random.default_rng(11)
    features, scores = [], []
    for i, month in enumerate(months):
        ids = [f"S{k}" for k in range(n)]
        features.append(pd.DataFrame({"as_of_date": month, "supplier_id": ids, "x": rng.normal(shifts.get(i, 0.0), 1, n)}))
        scores.append(pd.DataFrame({"as_of_date": month, "supplier_id": ids, **{
            column: rng.lognormal(-4, 1, n) for column in m.SCORE_COLUMNS}}))
    return months, pd.concat(features, ignore_index=True), pd.concat(scores, ignore_index=True)


def test_an_input_alarms_when_it_changes_now_into_something_the_model_never_saw():
    months, features, scores = _monthly_frames({1: 1.0, 7: -1.5})
    monitor = m.Monitor(features, scores, ["x"])
    reference = months[:6]
    alarms = {month: m.monitoring_tables(monitor.month(month, reference))["drift"] for month in months[1:]}
    assert alarms[months[7]].set_index("column").loc["x", "alarm"]  # out of the window, sudden, new
    assert not alarms[months[6]].set_index("column").loc["x", "alarm"]  # an ordinary month
    assert not alarms[months[1]]["alarm"].any()  # shifted, but a month the model learned from


def test_a_month_like_a_season_of_the_training_window_does_not_alarm():
    # Month 2 of the window was already shifted (a season): month 7 repeats it.
    months, features, scores = _monthly_frames({2: 1.0, 7: 1.0})
    drift = m.monitoring_tables(m.Monitor(features, scores, ["x"]).month(months[7], months[:6]))["drift"]
    row = drift.set_index("column").loc["x"]
    assert row["psi_previous"] > row["critical_previous"]  # it did change from last month
    assert row["nearest_month"] == months[2] and not row["alarm"]


@pytest.mark.parametrize(
    "month_index, scale, blocking, warned",
    [
        (7, 1.0, False, False),  # out of the window, calibrated
        (7, 3.0, True, True),  # out of the window, three times the predicted defaults: blocks
        (3, 3.0, False, False),  # the same inside the training window: reported, not alarmed
    ],
)
def test_calibration_verdicts_per_month(month_index, scale, blocking, warned):
    months, features, scores = _monthly_frames({})
    rng = np.random.default_rng(month_index)
    month = months[month_index]
    rows = scores[scores["as_of_date"] == month].copy()
    rows["default_probability_6m"] = rng.beta(1, 30, len(rows))
    rows["breach_probability_6m"] = rng.beta(2, 10, len(rows))
    scores.loc[rows.index, ["default_probability_6m", "breach_probability_6m"]] = rows[
        ["default_probability_6m", "breach_probability_6m"]]
    exposure = rng.lognormal(8, 1, len(rows))
    outcomes = pd.DataFrame({
        "as_of_date": month, "supplier_id": rows["supplier_id"].to_numpy(),
        "default_6m": rng.random(len(rows)) < np.clip(rows["default_probability_6m"].to_numpy() * scale, 0, 1),
        "breach_6m": rng.random(len(rows)) < rows["breach_probability_6m"].to_numpy(),
        "forward_order_value_6m_usd": exposure,
        "breach_refund_usd_6m": rng.poisson(exposure * rows["loss_rate_6m"].to_numpy() / 20) * 20.0,
    })
    monitored = m.Monitor(features, scores, ["x"]).month(month, months[:6], outcomes)
    performance = m.monitoring_tables(monitored)["performance"]
    default = performance[(performance["score"] == "default_probability_6m") & (performance["segment"] == "all")].iloc[0]
    assert bool(default["blocking"]) is blocking
    assert bool(default["alarm"]) is warned
    assert bool(m.performance_alarm_lines(performance, blocking=True)) is blocking


def test_scores_without_the_current_columns_get_a_clear_error(tmp_path):
    import duckdb

    from models.monitoring_data import load_monitoring_run

    con = duckdb.connect()
    con.execute("CREATE SCHEMA models")
    con.execute("CREATE TABLE models.scores AS SELECT DATE '2025-01-31' AS as_of_date, 'S1' AS supplier_id, "
                "0.1 AS breach_probability_6m, 'supplier_breach_risk/1' AS model_version")
    with pytest.raises(ValueError, match="no column loss_rate_6m.*rescore the months"):
        load_monitoring_run(con, [date(2025, 1, 31)], features_table="features.supplier_features",
                            scores_table="models.scores", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                            data_horizon=datetime(2025, 2, 1))


def test_without_the_training_months_drift_is_reported_not_alarmed():
    # The models were trained on another source: none of their months is in this warehouse.
    months, features, scores = _monthly_frames({7: -1.5})
    drift = m.monitoring_tables(m.Monitor(features, scores, ["x"]).month(months[7], [date(2020, 1, 31)]))["drift"]
    row = drift.set_index("column").loc["x"]
    assert row["psi_previous"] > row["critical_previous"] and not row["alarm"]
