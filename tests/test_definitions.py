"""The one Definitions loads, holds the graph DESIGN §2 describes, and its partitions are monthly."""

from __future__ import annotations

from datetime import date

import dagster as dg

from assets.partitions import month_end_of, month_end_partitions, partition_key_of
from pipelines.definitions import build_definitions
from pipelines.jobs import MONTHLY_JOB_NAME
from pipelines.settings import Settings


def test_definitions_load_and_hold_the_whole_graph(tmp_path):
    defs = build_definitions(Settings(home=tmp_path, landing=tmp_path / "landing"))
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {
        "landing_zone",
        "supplier_features",
        "storefront_metrics",
        "training_set",
        "breach_model",
        "loss_rate_model",
        "default_model",
        "supplier_scores",
        "published/supplier_scores",
        "published/supplier_features",
        "published/storefront_metrics",
        "policy_backtest",
    }
    job = defs.resolve_job_def(MONTHLY_JOB_NAME)
    assert job.partitions_def == month_end_partitions
    assert defs.resolve_schedule_def(f"{MONTHLY_JOB_NAME}_schedule") is not None


def test_every_asset_runs_a_month_range_as_one_run(tmp_path):
    """`dagster asset materialize --partition-range` needs a single-run policy on every asset."""
    defs = build_definitions(Settings(home=tmp_path, landing=tmp_path / "landing"))
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None, key


def test_partition_keys_map_to_month_ends():
    assert month_end_of("2024-02") == date(2024, 2, 29)
    assert month_end_of("2025-12") == date(2025, 12, 31)
    assert partition_key_of(date(2025, 6, 30)) == "2025-06"
    assert month_end_partitions.get_first_partition_key() == "2016-01"
