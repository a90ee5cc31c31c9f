"""The DuckDB + Parquet store: opening the warehouse, atomic month publishing, views."""

from warehouse.connection import (
    WarehouseLimits,
    WarehouseLockedError,
    WarehouseSettingError,
    open_warehouse,
    transaction,
    working_file,
)
from warehouse.publish import PUBLISHED_TABLES, publish_month, publish_months, replace_months, sync_published_copies
from warehouse.snapshot import publish_snapshot

__all__ = [
    "PUBLISHED_TABLES",
    "WarehouseLimits",
    "WarehouseLockedError",
    "WarehouseSettingError",
    "open_warehouse",
    "publish_month",
    "publish_months",
    "publish_snapshot",
    "replace_months",
    "sync_published_copies",
    "transaction",
    "working_file",
]
