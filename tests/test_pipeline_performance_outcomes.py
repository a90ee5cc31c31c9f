"""A landing zone without claims trains on its declared performance outcomes and publishes.

A small synthetic world with its disputes removed and declared not collected, and a manifest
declaring performance outcomes: a fresh home (no champion to fall back on) must train all
three models on order failures, and the definition must be in every published row, in the
training set, on each registered version (tag and model card).
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from mlflow import MlflowClient

from data_contracts.manifest import MANIFEST_NAME
from pipelines.runner import run_months
from pipelines.settings import Settings
from synthetic import generate_landing_zone

OUTCOMES = {"definition": "performance", "late_shipment_grace_days": 5, "not_delivered_after_days": 25,
            "supplier_cancelled": True, "low_rating_at_most": 1}
CANONICAL = "performance(late>5d,undelivered>25d,cancelled,rating<=1)"
MODEL_NAMES = ("supplier_breach_risk", "supplier_loss_rate", "supplier_default_risk")


@pytest.fixture(scope="module")
def claims_free_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("performance")
    landing = root / "landing"
    generate_landing_zone(landing, n_suppliers=300, start="2024-01", months=16, seed=5)
    shutil.rmtree(landing / "disputes")
    (landing / MANIFEST_NAME).write_text(json.dumps({"not_collected": ["disputes"], "outcomes": OUTCOMES}))
    settings = Settings(home=root / "home", landing=landing)
    outcome = run_months(settings, "2025-03", "2025-04", log_level="WARNING")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield settings, con, outcome
    con.close()


def test_every_published_row_names_the_declared_definition(claims_free_run):
    _, con, outcome = claims_free_run
    assert outcome.failed_checks == []
    rows = con.execute(
        "SELECT outcome_definition, count(*) FROM published.supplier_scores GROUP BY 1"
    ).fetchall()
    assert len(rows) == 1 and rows[0][0] == CANONICAL and rows[0][1] > 0
    assert con.execute("SELECT count(loss_rate_6m), count(default_probability_6m) FROM published.supplier_scores"
                       ).fetchone()[0] == rows[0][1]


def test_the_training_set_learns_from_order_failures(claims_free_run):
    settings, _, _ = claims_free_run
    con = duckdb.connect(str(settings.home / ".work" / "warehouse.duckdb"), read_only=True)
    try:
        definitions, breaches, refunds = con.execute(
            "SELECT list(DISTINCT outcome_definition), sum(breach_6m::INT), sum(breach_refund_usd_6m) FROM models.training_set"
        ).fetchone()
    finally:
        con.close()
    assert definitions == [CANONICAL] and breaches > 0 and refunds > 0


def test_each_registered_model_carries_the_definition_in_tag_and_card(claims_free_run):
    settings, _, _ = claims_free_run
    uri = f"sqlite:///{settings.home.resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in MODEL_NAMES:
        version = client.get_model_version_by_alias(name, "champion")
        assert version.tags["outcome_definition"] == CANONICAL, name
        assert f"- outcome definition: `{CANONICAL}`" in version.description, name
        assert client.get_run(version.run_id).data.tags["outcome_definition"] == CANONICAL, name
