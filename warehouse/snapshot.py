"""Replacing the published warehouse file with a consistent copy of the working file.

The copy is made from a checkpointed file (no write-ahead log left, nothing in flight: the
one writing connection is between transactions), written to a temporary file in the
published file's folder and moved over it with `os.replace`, which is atomic on POSIX: a
reader opening the published path gets the old file or the new one, never a mix, and a
reader already holding the old one keeps it (the old inode lives until it is closed).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to the disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def database_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file behind the connection's current database (None in memory)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] else None


def partial_snapshots(published_file: Path) -> list[Path]:
    """Temporary copies a killed snapshot left beside the published file."""
    return sorted(published_file.parent.glob(f".{published_file.name}.*.tmp"))


def publish_snapshot(con: duckdb.DuckDBPyConnection, published_file: Path | str) -> bool:
    """Replace `published_file` by a copy of the connection's database; False if it is that file.

    Must be called between transactions on the only writing connection.
    """
    published_file = Path(published_file)
    source = database_file(con)
    if source is None:
        raise ValueError("an in-memory warehouse has no file to publish")
    if published_file.exists() and source.resolve() == published_file.resolve():
        return False
    for leftover in partial_snapshots(published_file):
        leftover.unlink(missing_ok=True)
    con.execute("CHECKPOINT")
    published_file.parent.mkdir(parents=True, exist_ok=True)
    partial = published_file.with_name(f".{published_file.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(source, partial)
        fsync(partial)
        # Nothing writes the published file, so a log beside it can only be a stale one
        # (from before the working file) that a reader would replay onto the new file.
        Path(f"{published_file}.wal").unlink(missing_ok=True)
        os.replace(partial, published_file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync(published_file.parent)
    return True
