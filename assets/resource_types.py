"""What the assets need from the outside world, as protocols.

The concrete Dagster resources live in `pipelines/resources.py` (layers point down:
pipelines -> assets), so assets annotate their parameters with `dg.ResourceParam` over
these protocols instead of importing the resource classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import Protocol

import dagster as dg
import duckdb
import pyarrow as pa

# Every asset that writes the DuckDB file runs in this pool: DuckDB allows one writer per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class Warehouse(Protocol):
    path: str

    def connect(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


class FeatureEngine(Protocol):
    """Computes the feature tables from the warehouse's `validated.*` tables, on DuckDB or elsewhere;
    the rows come back as Arrow, the same whichever engine computed them."""

    @property
    def description(self) -> str: ...

    def supplier_features(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table: ...

    def storefront_metrics(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table: ...


class LandingZone(Protocol):
    path: str
    quarantine_parquet_dir: str


class ModelRegistry(Protocol):
    tracking_uri: str
    registered_model_name: str  # the breach model
    experiment_name: str
    loss_rate_model_name: str
    default_model_name: str
    vintage_config_file: str  # empty: models/vintages.yaml


class PublishedStore(Protocol):
    parquet_root: str
    reports_dir: str


class PolicySource(Protocol):
    policy_file: str
    overrides_file: str
    overrides_required: bool


WarehouseParam = dg.ResourceParam[Warehouse]
LandingZoneParam = dg.ResourceParam[LandingZone]
FeatureEngineParam = dg.ResourceParam[FeatureEngine]
ModelRegistryParam = dg.ResourceParam[ModelRegistry]
PublishedStoreParam = dg.ResourceParam[PublishedStore]
PolicySourceParam = dg.ResourceParam[PolicySource]
