"""Opening the warehouse file with a message a person can act on when it is locked."""

from __future__ import annotations

from pathlib import Path

import duckdb


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB write lock on the warehouse file."""


def open_warehouse(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse DuckDB file.

    DuckDB allows one writing process per file; a second writer gets an IO error from deep
    inside the library, which we turn into a message that says what to do.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseLockedError(
                f"the warehouse {path} is locked by another process (DuckDB allows one writer per "
                "file): wait for the other run to finish, or stop it (a `dagster dev` or notebook "
                "holding a connection), then run again"
            ) from None
        raise
