"""MLflow registry flow on a temporary SQLite store: champion, challenger, gated promotion."""

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from demo_frames import example_training_frame
from models.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    REGISTERED_MODEL_NAME,
    ModelAliasNotFound,
    alias_data_fingerprint,
    gate_challenger,
    load_model_by_alias,
    log_and_register,
    promote_if_better,
    tracking_uri_for_home,
)
from models.scoring import BreachRiskModel
from models.training import PROBABILITY_COLUMN, TrainingConfig, train_breach_model

FAST = TrainingConfig(max_boost_rounds=80, early_stopping_rounds=20, min_data_in_leaf=40, feature_warmup_months=0)


@pytest.fixture(scope="module")
def frame():
    return example_training_frame(n_suppliers=400, months=9, seed=21)


def test_alias_flow_and_gating_both_ways(tmp_path, frame):
    uri = tracking_uri_for_home(tmp_path)
    assert uri.startswith("sqlite:////")
    with pytest.raises(ModelAliasNotFound):
        load_model_by_alias(uri)

    good = train_breach_model(frame, None, FAST)
    assert alias_data_fingerprint(uri) is None
    first = log_and_register(good, uri)
    assert alias_data_fingerprint(uri) == good.data_fingerprint
    assert first == f"{REGISTERED_MODEL_NAME}/1"
    champion, version = load_model_by_alias(uri, CHAMPION)
    assert version == first == champion.version
    np.testing.assert_allclose(champion.predict_proba(frame), good.model.predict_proba(frame))
    assert (tmp_path / "mlartifacts").is_dir()

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(good.model.metadata["mlflow_run_id"])
    assert run.data.tags["data_fingerprint_sha256"] == good.data_fingerprint
    assert "evaluation_auc" in run.data.metrics and "evaluation_ece" in run.data.metrics
    # the collapse check's reference spread, under the name monitoring reads (models.monitoring)
    assert run.data.metrics["evaluation_log_spread"] > 0 and 0 < run.data.metrics["evaluation_top_value_share"] <= 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_card.md", "plots", "training_data.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc_evaluation.png", "plots/reliability_evaluation.png", "plots/feature_importance.png"} <= plots

    # A model that only knows the product category is much worse on the same rows: refused.
    weak = train_breach_model(frame, ["category"], FAST)
    second = log_and_register(weak, uri)
    assert load_model_by_alias(uri, CHALLENGER)[1] == second
    refused = promote_if_better(uri, good.evaluation_frame)
    assert not refused.promoted
    assert any("AUC worse" in reason for reason in refused.reasons)
    assert load_model_by_alias(uri, CHAMPION)[1] == first
    assert client.get_model_version(REGISTERED_MODEL_NAME, "2").tags["promotion_decision"] == "refused"

    # An equally good model (a retrain: same data, same config) passes the gates: promoted.
    peer = train_breach_model(frame, None, FAST)
    third = log_and_register(peer, uri)
    promoted = promote_if_better(uri, good.evaluation_frame)
    assert promoted.promoted, promoted.reasons
    assert promoted.validation_rows == len(good.evaluation_frame)
    assert load_model_by_alias(uri, CHAMPION)[1] == third
    assert load_model_by_alias(uri, PREVIOUS_CHAMPION)[1] == first
    with pytest.raises(ModelAliasNotFound):
        load_model_by_alias(uri, CHALLENGER)
    decisions = client.search_runs(
        [run.info.experiment_id], filter_string="tags.kind = 'promotion_decision'"
    )
    assert sorted(r.data.tags["decision"] for r in decisions) == ["promoted", "refused"]


def test_a_tracking_store_is_created_whole_or_not_at_all(tmp_path, monkeypatch):
    """A process killed while MLflow creates its tables must not leave a store every later
    run fails on: the store is made aside and moved into place only when complete."""
    from models import registry

    uri = registry.tracking_uri_for_home(tmp_path)
    db = tmp_path / "mlflow.db"
    # A killed first attempt: a half-made staging file, no store.
    (tmp_path / ".mlflow.db.creating").write_bytes(b"not a database")
    calls = []
    real_client = registry.MlflowClient

    def killed_mid_creation(*args, **kwargs):
        calls.append(kwargs.get("tracking_uri"))
        raise KeyboardInterrupt  # the kill, during the migrations
    monkeypatch.setattr(registry, "MlflowClient", killed_mid_creation)
    with pytest.raises(KeyboardInterrupt):
        registry.ensure_tracking_store(uri)
    assert not db.exists()  # nothing half-made at the store's path
    assert calls and calls[0].endswith(".mlflow.db.creating")

    monkeypatch.setattr(registry, "MlflowClient", real_client)
    registry.ensure_tracking_store(uri)  # the next run makes it whole
    assert db.exists() and not (tmp_path / ".mlflow.db.creating").exists()
    assert registry.alias_data_fingerprint(uri, "champion") is None  # usable: no such alias yet


def test_the_gate_reads_a_vintages_own_probabilities_instead_of_scoring_it_again(frame, monkeypatch):
    """A new vintage's evaluation rows carry its calibrated probabilities: the gate's challenger
    metrics read from them equal those of scoring the rows, and the challenger is not scored."""
    champion = train_breach_model(frame, ["dispute_ratio_6m", "category"], FAST)
    challenger = train_breach_model(frame, None, FAST)
    scored = gate_challenger(champion.model, challenger.model, challenger.evaluation_frame)
    calls = []
    real_predict = BreachRiskModel.predict_proba
    monkeypatch.setattr(BreachRiskModel, "predict_proba", lambda self, rows: calls.append(self) or real_predict(self, rows))
    read = gate_challenger(champion.model, challenger.model, challenger.evaluation_frame,
                           challenger_proba_column=PROBABILITY_COLUMN)
    assert calls == [champion.model]  # only the champion is scored
    assert read.challenger_metrics == scored.challenger_metrics  # bit for bit
    assert (read.promoted, read.reasons) == (scored.promoted, scored.reasons)


def test_a_vintage_is_registered_with_its_tags_in_one_write_and_its_metrics_in_one_batch(tmp_path, frame, monkeypatch):
    """The version's tags go in with its registration (no write per tag) and the run's metrics
    in one batch; the registry shows the same tags and metrics as before."""
    uri = tracking_uri_for_home(tmp_path)
    result = train_breach_model(frame, None, FAST)
    tag_writes, metric_batches = [], []
    real_tag, real_metrics = MlflowClient.set_model_version_tag, mlflow.log_metrics
    monkeypatch.setattr(MlflowClient, "set_model_version_tag", lambda self, *a, **k: tag_writes.append(a) or real_tag(self, *a, **k))
    monkeypatch.setattr(mlflow, "log_metrics", lambda metrics, *a, **k: metric_batches.append(metrics) or real_metrics(metrics, *a, **k))
    version = log_and_register(result, uri, set_alias=False, tags={"vintage_as_of_date": "2025-03-31"})
    assert tag_writes == [] and len(metric_batches) == 1
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    number = version.rsplit("/", 1)[1]
    assert client.get_model_version(REGISTERED_MODEL_NAME, number).tags == {
        "data_fingerprint_sha256": result.data_fingerprint, "outcome_definition": result.outcome_definition,
        "vintage_as_of_date": "2025-03-31",
    }
    logged = client.get_run(result.model.metadata["mlflow_run_id"]).data.metrics
    assert logged["rows_train"] == result.row_counts["train"]
    assert logged["evaluation_auc"] == pytest.approx(result.metrics["evaluation_auc"])
