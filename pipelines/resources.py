"""Dagster resources: everything outside the process (warehouse file, landing zone, MLflow, policy file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from warehouse import open_warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; one writing connection per run step."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = open_warehouse(Path(self.path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


class LandingZoneResource(dg.ConfigurableResource):
    """The landing-zone folder of docs/design.md §3 the run ingests."""

    path: str
    quarantine_parquet_dir: str


class MLflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry."""

    tracking_uri: str
    registered_model_name: str
    experiment_name: str = "supplier_breach_risk"
    # The models the amount rests on (docs/design.md §4); the breach model above is information.
    loss_rate_model_name: str = "supplier_loss_rate"
    default_model_name: str = "supplier_default_risk"
    # The refit cadence and minimum outcome months of the model vintages (models/vintages.py,
    # ASSURANCE_VINTAGES); empty means the packaged models/vintages.yaml.
    vintage_config_file: str = ""


class PublishedStoreResource(dg.ConfigurableResource):
    """Where the hive-partitioned Parquet copy of the published tables lands."""

    parquet_root: str
    reports_dir: str


class PolicyResource(dg.ConfigurableResource):
    """The analyst's decision inputs: the limit-policy file and the overrides file."""

    policy_file: str = Field(default="", description="Limit-policy YAML; empty: the packaged default policy.")
    overrides_file: str = Field(
        default="", description="Analyst overrides YAML (models/overrides.py); empty or absent file: no overrides."
    )
    overrides_required: bool = Field(
        default=False, description="The overrides file was named explicitly (ASSURANCE_OVERRIDES): it must exist."
    )
