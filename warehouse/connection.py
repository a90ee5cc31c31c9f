"""Opening the warehouse: the pipeline's private working file behind the published one.

Downstream services open `$ASSURANCE_HOME/warehouse.duckdb` read-only (docs/design.md §5). DuckDB
locks a file for its writer against every other process, readers included, so if the run
wrote that file, a service polling it could make a step fail to open it. The run therefore
writes a private working file, `$ASSURANCE_HOME/.work/warehouse.duckdb`, and the published
file is only ever *replaced* (`warehouse.snapshot.publish_snapshot`: checkpoint, copy to a
temporary file beside it, `os.replace`). A reader holding the old file keeps reading the old
inode; the next open sees the new one; neither ever takes a lock the writer needs.

`open_warehouse(path)` takes the published path (the one the settings and resources know)
and opens the working file behind it. A home from before the working file existed is
adopted: its published file becomes the first working file.

Every connection the pipeline opens gets a bounded buffer pool and a spill folder
(`WarehouseLimits`). DuckDB's own default is 80% of the machine's memory and no pressure to
spill, so a large stage kept up to that much in its buffers beside the pandas frames of the
same process; with a limit it spills to `temp_directory` instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from data_contracts.transaction import transaction  # noqa: F401 - re-exported: warehouse.transaction

WORKING_FOLDER = ".work"
# What a warehouse connection may hold in DuckDB's buffer pool before it spills to disk: the
# same as ingest's bound (data_contracts/ingest.py), so no stage's DuckDB part grows with the data.
DEFAULT_MEMORY_LIMIT = "2GB"


class WarehouseSettingError(ValueError):
    """A warehouse connection setting (memory limit, spill folder) DuckDB cannot use: bad usage."""


@dataclass(frozen=True)
class WarehouseLimits:
    """DuckDB's `memory_limit` (a size: "2GB", "1.5GiB", "800MB") and `temp_directory` (where
    it spills past the limit; empty: DuckDB's default, `<database file>.tmp` beside the file)
    for every connection `open_warehouse` returns."""

    memory_limit: str = DEFAULT_MEMORY_LIMIT
    temp_directory: str = ""

    def __post_init__(self) -> None:
        check_memory_limit(self.memory_limit)

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Set both on `con`'s database (DuckDB settings are per database instance)."""
        con.execute("SET memory_limit = ?", [self.memory_limit])
        # DuckDB refuses to move a spill folder it already used: set it only when it changes.
        current = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        if self.temp_directory and current != str(self.temp_directory):
            Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
            con.execute("SET temp_directory = ?", [str(self.temp_directory)])


def check_memory_limit(memory_limit: str) -> str:
    """`memory_limit` if DuckDB reads it as a size, else a `WarehouseSettingError` saying what to give."""
    try:
        with duckdb.connect() as con:
            con.execute("SET memory_limit = ?", [memory_limit])
    except duckdb.Error:
        raise WarehouseSettingError(
            f"warehouse memory limit {memory_limit!r} is not a size DuckDB understands: give a number and a unit, "
            "e.g. 2GB, 1.5GiB or 800MB (ASSURANCE_DUCKDB_MEMORY_LIMIT)"
        ) from None
    return memory_limit


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB write lock on the warehouse file."""


def working_file(published_file: Path | str) -> Path:
    """The private file the pipeline writes, behind the published `published_file`."""
    published_file = Path(published_file)
    return published_file.parent / WORKING_FOLDER / published_file.name


def _locked_error(path: Path) -> WarehouseLockedError:
    return WarehouseLockedError(
        f"the warehouse {path} is locked by another process (DuckDB allows one writer per "
        "file): wait for the other run to finish, or stop it (a `dagster dev` or notebook "
        "holding a connection), then run again"
    )


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise _locked_error(path) from None
        raise


def _adopt_published_file(published_file: Path, working: Path) -> None:
    """First open of a home written before the working file: copy the published file in.

    A file with a write-ahead log beside it is checkpointed first (which needs its write
    lock once); a checkpointed file is a complete database and is copied as it is.
    """
    if Path(f"{published_file}.wal").exists():
        _connect(published_file, read_only=False).close()  # closing checkpoints the log
    working.parent.mkdir(parents=True, exist_ok=True)
    partial = working.with_name(f".{working.name}.{uuid.uuid4().hex}.tmp")
    shutil.copyfile(published_file, partial)
    os.replace(partial, working)


def open_warehouse(path: Path | str, read_only: bool = False,
                   limits: WarehouseLimits | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the working file behind the published warehouse `path`,
    with `limits` (none: DuckDB's defaults) set on it.

    DuckDB allows one writing process per file; a second writer gets an IO error from deep
    inside the library, which we turn into a message that says what to do.
    """
    published_file = Path(path)
    working = working_file(published_file)
    if not working.exists() and published_file.exists():
        _adopt_published_file(published_file, working)
    if not read_only:
        working.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(working, read_only)
    if limits is not None:
        try:
            limits.apply(con)
        except (duckdb.Error, OSError) as error:
            con.close()
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise WarehouseSettingError(
                f"cannot use {limits.temp_directory!r} as the warehouse's spill folder ({first_line}): give a "
                "writable folder in ASSURANCE_DUCKDB_TEMP_DIRECTORY, or leave it empty for the default"
            ) from None
    return con

