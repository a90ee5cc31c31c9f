"""The one Definitions loads, holds the graph docs/design.md §2 describes, and its partitions are monthly."""

from __future__ import annotations

from datetime import date

import dagster as dg

from assets.catalogue import CODE_VERSION, MONTHLY_PUBLICATION, OWNERS
from assets.partitions import MONTH_END_PARTITIONS, month_end_of, month_end_partitions, partition_key_of
from data_contracts import load_published_contracts
from features import FEATURES
from pipelines.definitions import build_definitions
from pipelines.jobs import LANDING_MONTHS_SENSOR_NAME, MONTHLY_JOB_NAME, MONTHLY_SENSOR_NAME
from pipelines.settings import Settings


def test_definitions_load_and_hold_the_whole_graph(tmp_path):
    defs = build_definitions(Settings(home=tmp_path, landing=tmp_path / "landing"))
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {
        "landing_zone",
        "supplier_features",
        "storefront_metrics",
        "realised_outcomes",
        "training_set",
        "breach_model",
        "loss_rate_model",
        "default_model",
        "supplier_scores",
        "model_monitoring",
        "published/supplier_scores",
        "published/supplier_features",
        "published/storefront_metrics",
        "policy_backtest",
        "monitoring_report",
    }
    job = defs.resolve_job_def(MONTHLY_JOB_NAME)
    assert job.partitions_def == month_end_partitions
    # Publishing on its own is switched on by hand; keeping the UI's months in step is not.
    assert defs.resolve_sensor_def(MONTHLY_SENSOR_NAME).default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_sensor_def(MONTHLY_SENSOR_NAME).job_name == MONTHLY_JOB_NAME
    assert defs.resolve_sensor_def(LANDING_MONTHS_SENSOR_NAME).default_status == dg.DefaultSensorStatus.RUNNING


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
    assert month_end_of("2006-01") == date(2006, 1, 31) and month_end_of("1999-02") == date(1999, 2, 28)
    # The months are the data's (registered per landing zone), not a calendar from a fixed year.
    assert isinstance(month_end_partitions, dg.DynamicPartitionsDefinition)
    assert month_end_partitions.name == MONTH_END_PARTITIONS


PUBLISHED = {
    dg.AssetKey(["published", "supplier_scores"]): dg.AssetKey("supplier_scores"),
    dg.AssetKey(["published", "supplier_features"]): dg.AssetKey("supplier_features"),
    dg.AssetKey(["published", "storefront_metrics"]): dg.AssetKey("storefront_metrics"),
}


def _graph(tmp_path):
    return build_definitions(Settings(home=tmp_path, landing=tmp_path / "landing")).resolve_asset_graph()


def test_the_asset_checks_are_all_there(tmp_path):
    defs = build_definitions(Settings(home=tmp_path, landing=tmp_path / "landing"))
    checks = {(key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {
        ("landing_zone", "rows_reconcile"),
        ("landing_zone", "quarantine_within_tolerance"),
        ("landing_zone", "validated_tables_meet_contract"),
        ("published/supplier_scores", "supplier_scores_meet_contract"),
        ("published/supplier_scores", "parquet_matches_warehouse"),
        ("published/supplier_features", "supplier_features_meet_contract"),
        ("published/storefront_metrics", "storefront_metrics_meet_contract"),
        ("model_monitoring", "model_inputs_stable"),
        ("model_monitoring", "scores_stable"),
        ("model_monitoring", "scores_not_collapsed"),
        ("model_monitoring", "models_calibrated_on_completed_outcomes"),
    }


def test_published_assets_carry_their_contract_columns(tmp_path):
    graph = _graph(tmp_path)
    contracts = load_published_contracts()
    for key in PUBLISHED:
        table = key.path[-1]
        schema = graph.get(key).metadata["dagster/column_schema"]
        by_name = {column.name: column for column in schema.columns}
        for column in contracts[table].columns:
            assert by_name[column.name].type == column.type, (key, column.name)
            assert by_name[column.name].description == column.description, (key, column.name)
            assert by_name[column.name].constraints.nullable == column.nullable, (key, column.name)
        assert graph.get(key).metadata["dagster/table_name"] == f"published.{table}"
    features_schema = graph.get(dg.AssetKey(["published", "supplier_features"])).metadata["dagster/column_schema"]
    features = {column.name for column in features_schema.columns}
    assert {spec.name for spec in FEATURES} <= features


def test_every_asset_has_an_owner_and_a_code_version(tmp_path):
    graph = _graph(tmp_path)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == OWNERS, key
        assert node.code_version == CODE_VERSION and CODE_VERSION, key


def test_only_the_published_tables_have_a_monthly_freshness_policy(tmp_path):
    graph = _graph(tmp_path)
    for key in graph.get_all_asset_keys():
        expected = MONTHLY_PUBLICATION if key in PUBLISHED else None
        assert graph.get(key).freshness_policy == expected, key


def test_published_assets_are_told_apart_from_their_internal_twins(tmp_path):
    """Same last key part, so the descriptions and groups say which one services read."""
    graph = _graph(tmp_path)
    for published, internal in PUBLISHED.items():
        assert graph.get(published).group_name == "published" != graph.get(internal).group_name
        assert graph.get(published).description.startswith(f"PUBLISHED `published.{published.path[-1]}`")
        assert graph.get(internal).description.startswith("INTERNAL working table")
        assert f"published/{published.path[-1]}" in graph.get(internal).description


def test_publishing_waits_for_the_blocking_monitoring_checks(tmp_path):
    """Only a collapsed score and a model off by more than the blocking factor stop publishing:
    those two checks block, and the published scores depend on the monitored asset."""
    graph = _graph(tmp_path)
    blocking = {key.name for key in graph.asset_check_keys
                if key.asset_key == dg.AssetKey("model_monitoring") and graph.get_check_spec(key).blocking}
    assert blocking == {"scores_not_collapsed", "models_calibrated_on_completed_outcomes"}
    assert dg.AssetKey("model_monitoring") in graph.get(dg.AssetKey(["published", "supplier_scores"])).parent_keys
