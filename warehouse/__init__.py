"""The DuckDB + Parquet store: opening the warehouse, atomic month publishing, views."""

from warehouse.connection import WarehouseLockedError, open_warehouse
from warehouse.publish import PUBLISHED_TABLES, publish_month, replace_months

__all__ = ["PUBLISHED_TABLES", "WarehouseLockedError", "open_warehouse", "publish_month", "replace_months"]
