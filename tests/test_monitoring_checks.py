"""The monitoring checks in Dagster on a small warehouse: quiet on ordinary months, WARN on a
deliberately shifted month, ERROR on a collapsed score, which stops what depends on the
monitoring (publishing) in the same run."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets import monitoring
from assets.partitions import month_end_partitions, partition_key_of, register_months
from features import month_ends
from pipelines.resources import MLflowResource, PublishedStoreResource, WarehouseResource
from warehouse import open_warehouse
from warehouse.landing_metadata import LANDING_METADATA_TABLE

MONTHS = month_ends(date(2024, 1, 1), date(2025, 2, 28))
TRAINING_MONTHS = MONTHS[:10]  # 2024-01 .. 2024-10: later months are out of the training window
SUPPLIERS = 600


def _features(as_of_date: date, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "as_of_date": as_of_date,
        "supplier_id": [f"S{i:04d}" for i in range(SUPPLIERS)],
        "tenure_months": rng.integers(1, 40, SUPPLIERS),
        "completion_rate_6m": rng.beta(9, 1, SUPPLIERS),
        "dispute_ratio_6m": rng.beta(1, 30, SUPPLIERS),
        "orders_6m": rng.poisson(20, SUPPLIERS),
        "membership_tier": rng.choice(["free", "gold", "verified"], SUPPLIERS),
        "country": rng.choice(["CN", "IN", "VN"], SUPPLIERS),
        "category": rng.choice(["tools", "apparel"], SUPPLIERS),
    })


def _scores(as_of_date: date, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "as_of_date": as_of_date,
        "supplier_id": [f"S{i:04d}" for i in range(SUPPLIERS)],
        "loss_rate_6m": rng.lognormal(-6, 0.8, SUPPLIERS),
        "default_probability_6m": rng.beta(1, 60, SUPPLIERS),
        "breach_probability_6m": rng.beta(2, 10, SUPPLIERS),
        "model_version": "supplier_breach_risk/1",
        "loss_rate_model_version": "supplier_loss_rate/1",
        "default_model_version": "supplier_default_risk/1",
    })


def _home(tmp_path, shift_last_month=None) -> dict:
    """A warehouse with 14 scored months whose outcomes are all pending: the data horizon is
    set before the first month's six-month window closes, so no labels (no validated tables)
    are needed."""
    rng = np.random.default_rng(42)
    features = pd.concat([_features(m, rng) for m in MONTHS], ignore_index=True)
    scores = pd.concat([_scores(m, rng) for m in MONTHS], ignore_index=True)
    if shift_last_month:
        shift_last_month(features, scores, features["as_of_date"] == MONTHS[-1], scores["as_of_date"] == MONTHS[-1])
    path = tmp_path / "warehouse.duckdb"
    con = open_warehouse(path)
    for schema in ("features", "models", "validated"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.register("_f", features)
    con.execute("CREATE TABLE features.supplier_features AS SELECT * FROM _f")
    con.register("_s", scores)
    con.execute("CREATE TABLE models.scores AS SELECT * FROM _s")
    con.register("_t", features[features["as_of_date"].isin(TRAINING_MONTHS)][["as_of_date", "supplier_id"]])
    con.execute("CREATE TABLE models.training_set AS SELECT * FROM _t")
    con.execute(f"CREATE TABLE {LANDING_METADATA_TABLE} AS SELECT ?::VARCHAR AS landing_dir, ?::TIMESTAMP AS data_horizon",
                ["landing", datetime(2024, 7, 1)])
    con.close()
    return {
        "warehouse": WarehouseResource(path=str(path)),
        # An empty registry: the reference window falls back on the training set's months.
        "model_registry": MLflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                         registered_model_name="supplier_breach_risk"),
        "published_store": PublishedStoreResource(parquet_root=str(tmp_path / "published"),
                                                  reports_dir=str(tmp_path / "reports")),
    }


@dg.asset(deps=[monitoring.model_monitoring], partitions_def=month_end_partitions, backfill_policy=dg.BackfillPolicy.single_run())
def stands_for_publishing() -> None:
    """Downstream of the monitoring like the published scores: a blocking failure must stop it."""


def _run(resources: dict) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    # the months are dynamic partitions: the runner registers the data's months before a run
    register_months(instance, [partition_key_of(month) for month in MONTHS])
    return dg.materialize(
        [monitoring.model_monitoring, monitoring.model_inputs_stable, monitoring.scores_stable,
         monitoring.scores_not_collapsed, monitoring.models_calibrated_on_completed_outcomes, stands_for_publishing],
        resources=resources,
        instance=instance,
        tags={"dagster/asset_partition_range_start": partition_key_of(MONTHS[1]),
              "dagster/asset_partition_range_end": partition_key_of(MONTHS[-1])},
        raise_on_error=False,
    )


def _evaluations(result: dg.ExecuteInProcessResult, check: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == check}


def _nulls_in_completion(features, scores, month, score_month):
    features.loc[month & (np.arange(len(features)) % 3 == 0), "completion_rate_6m"] = np.nan  # a third goes NULL


def _constant_default(features, scores, month, score_month):
    scores.loc[score_month, "default_probability_6m"] = 0.01


@pytest.fixture(scope="module")
def shifted_home(tmp_path_factory):
    path = tmp_path_factory.mktemp("shifted")
    resources = _home(path, _nulls_in_completion)
    return path, resources, _run(resources)


@pytest.fixture(scope="module")
def shifted(shifted_home):
    return shifted_home[2]


def test_ordinary_months_raise_no_alarm(shifted):
    for check in (monitoring.MODEL_INPUTS_STABLE, monitoring.SCORES_STABLE, monitoring.SCORES_NOT_COLLAPSED,
                  monitoring.MODELS_CALIBRATED):
        evaluations = _evaluations(shifted, check)
        assert len(evaluations) == len(MONTHS) - 1, check
        assert all(e.passed for key, e in evaluations.items() if key != partition_key_of(MONTHS[-1])), check


def test_a_shifted_month_warns_and_names_the_input(shifted):
    evaluation = _evaluations(shifted, monitoring.MODEL_INPUTS_STABLE)[partition_key_of(MONTHS[-1])]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "completion_rate_6m" in evaluation.metadata["alarms"].value
    assert evaluation.metadata["drifted"].value == 1
    # Drift never blocks: what depends on the monitoring still ran.
    assert shifted.success
    assert stands_for_publishing.key in {m.asset_key for m in shifted.get_asset_materialization_events()
                                         for m in [m.event_specific_data.materialization]}


def test_pending_outcomes_pass_and_say_so(shifted):
    evaluation = _evaluations(shifted, monitoring.MODELS_CALIBRATED)[partition_key_of(MONTHS[-1])]
    assert evaluation.passed and "pending" in evaluation.metadata["outcomes"].value


def test_a_collapsed_score_is_an_error_that_stops_publishing(tmp_path):
    result = _run(_home(tmp_path, _constant_default))
    evaluation = _evaluations(result, monitoring.SCORES_NOT_COLLAPSED)[partition_key_of(MONTHS[-1])]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "default_probability_6m" in evaluation.metadata["summary"].value
    materialized = {e.event_specific_data.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert monitoring.model_monitoring.key in materialized
    assert stands_for_publishing.key not in materialized


def test_the_report_opens_with_the_alarms(shifted_home):
    path, resources, _ = shifted_home
    dg.materialize([monitoring.monitoring_report], resources=resources)
    report = (path / "reports" / monitoring.MONITORING_REPORT).read_text()
    alarms, drift, performance = (report.index(h) for h in ("<h2>Alarms", "<h2>Drift per input", "<h2>Performance"))
    assert alarms < drift < performance
    assert "completion_rate_6m" in report[alarms:drift]
