"""The feature engine is a setting of the pipeline: DuckDB by default, Spark by configuration.

The Dagster feature assets run on whichever engine the settings name and land the same
rows in the DuckDB warehouse; a Spark that cannot start says so in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from assets.features import STOREFRONT_METRICS_TABLE, SUPPLIER_FEATURES_TABLE, storefront_metrics, supplier_features
from assets.landing import landing_zone
from assets.partitions import month_keys, register_months
from data_contracts.span import landing_zone_month_span
from feature_reference import as_comparable_frame
from features.spark_engine import JAVA_MISSING
from pipelines.cli import EXIT_UNUSABLE_INPUT, main
from pipelines.definitions import build_resources
from pipelines.resources import (
    SPARK_EXTRA_MISSING,
    DuckDBFeatureEngineResource,
    FeatureEngineUnavailableError,
    LandingZoneResource,
    SparkFeatureEngineResource,
    WarehouseResource,
    feature_engine_resource,
)
from pipelines.settings import Settings, SettingsError
from synthetic import generate_landing_zone
from test_features_equivalence import assert_frames_match
from warehouse import open_warehouse

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
ENGINE_VARIABLES = ("ASSURANCE_FEATURE_ENGINE", "ASSURANCE_SPARK_MASTER", "ASSURANCE_SPARK_REMOTE", "ASSURANCE_SPARK_STAGING")


@pytest.fixture
def clean_engine_environment(monkeypatch):
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- the setting ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("environment", "kind", "description"),
    [
        ({}, DuckDBFeatureEngineResource, "duckdb (in process)"),  # nothing set: DuckDB in process
        ({"ASSURANCE_FEATURE_ENGINE": "spark"}, SparkFeatureEngineResource, "spark (local[*])"),  # every local core
        ({"ASSURANCE_FEATURE_ENGINE": " Spark "}, SparkFeatureEngineResource, "spark (local[*])"),  # spelling forgiven
        ({"ASSURANCE_FEATURE_ENGINE": "spark", "ASSURANCE_SPARK_MASTER": "spark://head:7077"},
         SparkFeatureEngineResource, "spark (spark://head:7077)"),  # a standalone cluster
        ({"ASSURANCE_FEATURE_ENGINE": "spark", "ASSURANCE_SPARK_MASTER": "yarn", "ASSURANCE_SPARK_REMOTE": "sc://head:15002"},
         SparkFeatureEngineResource, "spark (sc://head:15002)"),  # Spark Connect wins over a master
        ({"ASSURANCE_SPARK_REMOTE": "sc://head:15002"}, DuckDBFeatureEngineResource, "duckdb (in process)"),  # the engine is chosen, never implied
    ],
)
def test_the_environment_chooses_the_feature_engine(clean_engine_environment, tmp_path, environment, kind, description):
    clean_engine_environment.setenv("ASSURANCE_HOME", str(tmp_path))
    for name, value in environment.items():
        clean_engine_environment.setenv(name, value)
    resource = build_resources(Settings.from_env())["feature_engine"]
    assert type(resource) is kind and resource.description == description


def test_spark_stages_under_the_home_unless_told_otherwise(clean_engine_environment, tmp_path):
    clean_engine_environment.setenv("ASSURANCE_HOME", str(tmp_path / "home"))
    clean_engine_environment.setenv("ASSURANCE_FEATURE_ENGINE", "spark")
    assert feature_engine_resource(Settings.from_env()).staging_dir == str(tmp_path / "home" / ".work" / "spark-staging")
    clean_engine_environment.setenv("ASSURANCE_SPARK_STAGING", str(tmp_path / "shared"))
    assert feature_engine_resource(Settings.from_env()).staging_dir == str(tmp_path / "shared")


def test_an_unknown_engine_is_refused_in_one_line(clean_engine_environment, tmp_path):
    clean_engine_environment.setenv("ASSURANCE_HOME", str(tmp_path))
    clean_engine_environment.setenv("ASSURANCE_FEATURE_ENGINE", "polars")
    with pytest.raises(SettingsError, match=r"^feature engine 'polars' is unknown: set ASSURANCE_FEATURE_ENGINE \(or --engine\) to one of duckdb, spark$"):
        Settings.from_env()


# --- Spark that cannot start -------------------------------------------------------------------------

def test_spark_without_pyspark_says_to_install_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(FeatureEngineUnavailableError) as raised:
        SparkFeatureEngineResource(staging_dir=str(tmp_path)).check_available()
    assert str(raised.value) == f"feature engine spark (local[*]): {SPARK_EXTRA_MISSING}"
    assert "uv sync --extra spark" in str(raised.value)


def test_spark_without_java_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk-here"))
    with pytest.raises(FeatureEngineUnavailableError, match="has no bin/java") as raised:
        SparkFeatureEngineResource(staging_dir=str(tmp_path)).check_available()
    assert str(raised.value).endswith(JAVA_MISSING) and "\n" not in str(raised.value)


def test_assurance_run_on_spark_without_pyspark_exits_2_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    landing = tmp_path / "landing"
    landing.mkdir()  # empty: had the run started, the landing zone would be the error
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["run", "--landing", str(landing), "--home", str(home), "--engine", "spark"])
    assert result.exit_code == EXIT_UNUSABLE_INPUT, result.output
    assert result.output.strip() == f"error: feature engine spark (local[*]): {SPARK_EXTRA_MISSING}"
    assert not (home / "dagster").exists() and not (home / ".work").exists()


# --- the feature assets on Spark ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("engine") / "landing"
    generate_landing_zone(landing, n_suppliers=60, start="2024-01", months=14, seed=11)
    return landing


def _materialize(assets, instance, warehouse: Path, landing: Path, engine, months: list[str]) -> dg.ExecuteInProcessResult:
    resources = {
        "warehouse": WarehouseResource(path=str(warehouse)),
        "landing": LandingZoneResource(path=str(landing), quarantine_parquet_dir=str(warehouse.parent / "quarantine")),
        "feature_engine": engine,
    }
    return dg.materialize(assets, instance=instance, resources=resources, tags={RANGE_START: months[0], RANGE_END: months[-1]})


def _feature_tables(warehouse: Path):
    with open_warehouse(warehouse, read_only=True) as con:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY as_of_date, supplier_id").to_arrow_table()
                for table in (SUPPLIER_FEATURES_TABLE, STOREFRONT_METRICS_TABLE)}


@pytest.mark.spark
@pytest.mark.slow  # about three minutes on a shared 2-core machine: a JVM, then Spark planning each statement
def test_feature_assets_on_local_spark_land_the_duckdb_rows(landing, tmp_path):
    """Materialised on DuckDB, then again on local Spark over the same warehouse (a rerun replaces
    the months): the same columns, types and rows; counts, flags and strings exact, doubles to
    a relative 1e-9, NULLs in the same places (the tolerances of tests/test_features_spark.py)."""
    months = month_keys(*landing_zone_month_span(landing))
    warehouse = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        register_months(instance, months)
        _materialize([landing_zone, supplier_features, storefront_metrics], instance, warehouse, landing,
                     DuckDBFeatureEngineResource(), months)
        on_duckdb = _feature_tables(warehouse)
        staging = tmp_path / "spark-staging"
        result = _materialize([supplier_features, storefront_metrics], instance, warehouse, landing,
                              SparkFeatureEngineResource(master="local[2]", staging_dir=str(staging), driver_memory="1g"),
                              months)
    on_spark = _feature_tables(warehouse)
    for table, rows in on_duckdb.items():
        assert rows.num_rows > 500, table  # the comparison is only as good as the rows it sees
        assert on_spark[table].num_rows == rows.num_rows, table
        assert on_spark[table].schema == rows.schema, table
        assert_frames_match(as_comparable_frame(on_spark[table]), as_comparable_frame(rows))
    materialized = [event.step_materialization_data.materialization for event in result.get_asset_materialization_events()]
    assert {m.asset_key.to_user_string() for m in materialized} == {"supplier_features", "storefront_metrics"}
    assert {m.metadata["feature_engine"].value for m in materialized} == {"spark (local[2])"}
    assert list(staging.iterdir()) == []  # the staged validated tables are removed once read
