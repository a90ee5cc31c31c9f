"""What the warehouse knows about the landing zone it was last loaded from."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

LANDING_METADATA_TABLE = "validated._landing_zone"


class WarehouseNotLoadedError(RuntimeError):
    """Downstream work asked for validated data before any landing zone was ingested."""


def record_landing_zone(con: duckdb.DuckDBPyConnection, landing_dir: Path, data_horizon: datetime) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS validated")
    con.execute(
        f"CREATE OR REPLACE TABLE {LANDING_METADATA_TABLE} AS "
        "SELECT ?::VARCHAR AS landing_dir, ?::TIMESTAMP AS data_horizon",
        [str(landing_dir), data_horizon],
    )


def read_data_horizon(con: duckdb.DuckDBPyConnection) -> datetime:
    """The last instant the landing zone has data for; labels and training stop there."""
    try:
        row = con.execute(f"SELECT data_horizon FROM {LANDING_METADATA_TABLE}").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is None:
        raise WarehouseNotLoadedError(
            "the warehouse has no validated landing zone yet: materialise `landing_zone` first "
            "(`assurance run --landing DIR` does it for you)"
        )
    return row[0]
