"""`python -m models.evaluate_olist`: out-of-time metrics of the three models next to the rule
baseline on the same rows, for the newest and earlier evaluation windows, on a landing zone
without an oracle (here a small synthetic world stripped of its claims and truth)."""

from __future__ import annotations

import json
import shutil

import pytest

from data_contracts.manifest import MANIFEST_NAME
from models.evaluate_olist import evaluate_origins, main, rule_tier_loss_rates
from models.evaluate_synthetic import training_frame_from_landing
from synthetic import generate_landing_zone


@pytest.fixture(scope="module")
def claims_free_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("claims_free") / "landing"
    generate_landing_zone(landing, n_suppliers=200, start="2024-01", months=15, seed=9)
    shutil.rmtree(landing / "disputes")
    shutil.rmtree(landing / "_truth")
    (landing / MANIFEST_NAME).write_text(json.dumps({"not_collected": ["disputes"], "outcomes": {"definition": "performance"}}))
    return landing


def test_each_model_sits_next_to_its_baselines_on_two_windows(claims_free_landing):
    tables = evaluate_origins(training_frame_from_landing(claims_free_landing), origins=2)
    for name in ("breach", "loss_rate"):
        table = tables[name].reset_index()
        assert set(table["origin"]) == {0, 1}, name
        for _, window in table.groupby("origin"):
            assert {"model", "rule_baseline"} <= set(window["forecaster"])
            assert window["rows"].nunique() == 1, "model and baseline are measured on the same rows"
        assert table["evaluation"].nunique() == 2, "the second window is an earlier one"
    # the default model is either evaluated or its absence is explained
    assert "default" in tables or tables["skipped"]["what"].str.startswith("default").any()


def test_rule_tier_loss_rates_are_exposure_weighted():
    import pandas as pd

    rows = pd.DataFrame({
        "orders_6m": [5, 5], "tenure_months": [12, 12], "on_time_shipment_rate_6m": [1.0, 0.5],
        "completion_rate_6m": [1.0, 1.0], "forward_order_value_6m_usd": [100.0, 300.0],
        "breach_refund_usd_6m": [10.0, 30.0], "pre_shipment_refund_usd_6m": [10.0, 30.0],
        "post_delivery_refund_usd_6m": [0.0, 0.0],
    })
    _, rates, overall = rule_tier_loss_rates(rows)
    assert rates == {"fails_0": 0.1, "fails_1": 0.1} and overall == 0.1


def test_the_command_prints_markdown_tables(claims_free_landing, capsys):
    main(["--landing", str(claims_free_landing), "--origins", "1"])
    out = capsys.readouterr().out
    assert "performance(late>7d,undelivered>30d,cancelled,rating<=1)" in out
    assert "## Breach" in out and "## Loss rate" in out and "rule_baseline" in out
