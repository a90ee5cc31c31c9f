"""Publishing a month of results: DuckDB tables and hive-partitioned Parquet, whole or not at all.

Readers must never see a half-written month (DESIGN §5). In DuckDB every published table
of a month is replaced inside one transaction. The Parquet copy of each table is first
written to a hidden staging folder inside that same transaction, and only swapped into
`as_of_date=YYYY-MM-DD/` after the commit, by directory renames: a Parquet reader sees the
old month, briefly no month, or the new month, never a mix.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

PUBLISHED_SCHEMA = "published"
PUBLISHED_TABLES = ("supplier_scores", "supplier_features", "storefront_metrics")

LATEST_SCORES_VIEW = f"""
CREATE OR REPLACE VIEW {PUBLISHED_SCHEMA}.supplier_scores_latest AS
SELECT * FROM {PUBLISHED_SCHEMA}.supplier_scores
QUALIFY row_number() OVER (PARTITION BY supplier_id ORDER BY as_of_date DESC) = 1
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ensure_table(con: duckdb.DuckDBPyConnection, qualified: str, rows: pa.Table) -> None:
    """Create the table from the frame's schema, or add columns the frame brings.

    Published tables change only by adding columns (DESIGN: contracts grow, never rename),
    so a new feature becomes a new nullable column and older months read NULL there.
    """
    con.register("_schema_probe", rows.slice(0, 0))
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {qualified} AS SELECT * FROM _schema_probe")
        existing = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                qualified.split(".", 1),
            ).fetchall()
        }
        described = con.execute("DESCRIBE SELECT * FROM _schema_probe").fetchall()
        for column_name, column_type, *_ in described:
            if column_name not in existing:
                con.execute(f"ALTER TABLE {qualified} ADD COLUMN {_quote(column_name)} {column_type}")
    finally:
        con.unregister("_schema_probe")


def replace_months(
    con: duckdb.DuckDBPyConnection,
    qualified_table: str,
    as_of_dates: Sequence[date],
    rows: pa.Table,
) -> int:
    """Replace the given months of a working table with `rows`, in the caller's transaction.

    Used for the internal working tables (features, scores); idempotent by construction:
    the months are deleted before the insert, so a rerun leaves exactly one copy.
    """
    schema = qualified_table.split(".", 1)[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    _ensure_table(con, qualified_table, rows)
    con.execute(
        f"DELETE FROM {qualified_table} WHERE as_of_date IN (SELECT unnest(?::DATE[]))",
        [list(as_of_dates)],
    )
    con.register("_incoming_rows", rows)
    try:
        con.execute(f"INSERT INTO {qualified_table} BY NAME SELECT * FROM _incoming_rows")
    finally:
        con.unregister("_incoming_rows")
    return rows.num_rows


def publish_month(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    tables: Mapping[str, pa.Table],
    parquet_root: Path,
) -> dict[str, int]:
    """Publish one month of every published table atomically; return rows per table.

    Every frame must hold only rows of `as_of_date`; the check is here rather than in
    callers because a stray month would silently overwrite another month's data.
    """
    unknown = set(tables) - set(PUBLISHED_TABLES)
    if unknown:
        raise ValueError(f"not published tables: {sorted(unknown)}; expected {PUBLISHED_TABLES}")
    for name, rows in tables.items():
        months = set(rows.column("as_of_date").to_pylist()) if rows.num_rows else set()
        if months - {as_of_date}:
            stray = ", ".join(str(month) for month in sorted(months - {as_of_date}))
            raise ValueError(f"{name}: rows for {stray} given to publish {as_of_date}")

    parquet_root = Path(parquet_root)
    partition = f"as_of_date={as_of_date.isoformat()}"
    staging = {name: parquet_root / name / f".staging-{partition}-{uuid.uuid4().hex}" for name in tables}
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {PUBLISHED_SCHEMA}")
        for name, rows in tables.items():
            qualified = f"{PUBLISHED_SCHEMA}.{name}"
            counts[name] = replace_months(con, qualified, [as_of_date], rows)
            staging[name].mkdir(parents=True, exist_ok=True)
            target = staging[name] / "part-0.parquet"
            # Sorted output makes the Parquet bytes a function of the data alone (reruns
            # produce identical files apart from run metadata columns).
            con.execute(
                f"COPY (SELECT * EXCLUDE (as_of_date) FROM {qualified} WHERE as_of_date = ? "
                f"ORDER BY supplier_id) TO '{target.as_posix()}' (FORMAT parquet, COMPRESSION zstd)",
                [as_of_date],
            )
        if "supplier_scores" in tables:
            con.execute(LATEST_SCORES_VIEW)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        raise
    for name, folder in staging.items():
        _swap_into_place(folder, parquet_root / name / partition)
    return counts


def _swap_into_place(staged: Path, final: Path) -> None:
    retired = final.with_name(f".retired-{final.name}-{uuid.uuid4().hex}")
    if final.exists():
        final.rename(retired)
    staged.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
