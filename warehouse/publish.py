"""Publishing months of results: DuckDB tables and hive-partitioned Parquet, whole or not at all.

Readers must never see a half-written month (docs/design.md §5), and a run killed at any instant
must leave every published month readable and the two stores agreeing once the next run
starts. The order of work makes that hold:

1. each month of every published table is replaced in the (private) working DuckDB file in
   one transaction: the working file is the source of truth;
2. the published DuckDB file is replaced by a copy of the working file
   (`warehouse.snapshot.publish_snapshot`), atomically;
3. every Parquet month whose content differs from DuckDB's is rewritten: the file is
   written under `$ASSURANCE_HOME/.publish-staging/` (same filesystem, outside
   `published/`) and moved over `published/<table>/as_of_date=YYYY-MM-DD/part-0.parquet`
   with `os.replace`, which is atomic: a reader sees the old file or the new one, and the
   month is never absent. Nothing but `as_of_date=...` folders ever appears under
   `published/<table>/`.

Step 3 is also the start-up reconciliation (`sync_published_copies`): a kill between 1 and
2, or between 2 and 3, leaves months on which the copies lag the working file, and the next
publishing repairs them first. "Differs" is decided by a content fingerprint of the month
(row count and the sum of row hashes, computed by DuckDB) written into each Parquet file's
key-value metadata; a month the working file no longer holds is removed from Parquet.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.connection import transaction
from warehouse.snapshot import fsync, publish_snapshot

PUBLISHED_SCHEMA = "published"
PUBLISHED_TABLES = ("supplier_scores", "supplier_features", "storefront_metrics")
PARQUET_FILE = "part-0.parquet"
STAGING_FOLDER = ".publish-staging"
FINGERPRINT_KEY = b"assurance.month_fingerprint"
MONTH_FOLDER = re.compile(r"^as_of_date=(\d{4}-\d{2}-\d{2})$")

LATEST_SCORES_VIEW = f"""
CREATE OR REPLACE VIEW {PUBLISHED_SCHEMA}.supplier_scores_latest AS
SELECT * FROM {PUBLISHED_SCHEMA}.supplier_scores
QUALIFY row_number() OVER (PARTITION BY supplier_id ORDER BY as_of_date DESC) = 1
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def published_table(table: str) -> str:
    """`published."<table>"`: the quoted name of a published table."""
    return f"{PUBLISHED_SCHEMA}.{_quote(table)}"


def staging_root(parquet_root: Path) -> Path:
    """Where Parquet months are written before they are moved into place: beside `published/`
    (same filesystem, so the move is a rename) but outside it, so no reader globs it."""
    return Path(parquet_root).parent / STAGING_FOLDER


def month_file(parquet_root: Path, table: str, as_of_date: date) -> Path:
    return Path(parquet_root) / table / f"as_of_date={as_of_date.isoformat()}" / PARQUET_FILE


def _ensure_table(con: duckdb.DuckDBPyConnection, qualified: str, rows: pa.Table) -> None:
    """Create the table from the frame's schema, or add columns the frame brings.

    Published tables change only by adding columns (docs/design.md: contracts grow, never rename),
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
                [part.strip('"').replace('""', '"') for part in qualified.split(".", 1)],
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


def _check_months(as_of_dates: Sequence[date], name: str, rows: pa.Table) -> None:
    """A frame must hold only rows of the months given: a stray month would silently
    overwrite another month's data."""
    months = set(rows.column("as_of_date").to_pylist()) if rows.num_rows else set()
    if months - set(as_of_dates):
        stray = ", ".join(str(month) for month in sorted(months - set(as_of_dates)))
        raise ValueError(f"{name}: rows for {stray} given to publish {', '.join(map(str, sorted(set(as_of_dates))))}")


def _check_names(tables: Mapping[str, object]) -> None:
    unknown = set(tables) - set(PUBLISHED_TABLES)
    if unknown:
        raise ValueError(f"not published tables: {sorted(unknown)}; expected {PUBLISHED_TABLES}")


def _rows_per_month(rows: pa.Table) -> dict[date, int]:
    if not rows.num_rows:
        return {}
    return {entry["values"]: entry["counts"] for entry in pc.value_counts(rows.column("as_of_date")).to_pylist()}


# A published table's rows, or what reads them when asked (`commit_months` reads one at a time).
TableRows = pa.Table | Callable[[], pa.Table]


def commit_months(con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date], tables: Mapping[str, TableRows]
                  ) -> dict[date, dict[str, int]]:
    """Replace the given months of the given published tables in DuckDB, in one transaction:
    one delete and one insert per table, however many months (a month no frame has rows for
    is emptied). A table given as a function is read inside the transaction and let go before
    the next is read: only one table's months are in memory at a time. Returns rows per month
    and table."""
    _check_names(tables)
    for name, rows in tables.items():
        if isinstance(rows, pa.Table):
            _check_months(as_of_dates, name, rows)
    per_month: dict[str, dict[date, int]] = {}
    with transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {PUBLISHED_SCHEMA}")
        for name, source in tables.items():
            rows = source if isinstance(source, pa.Table) else source()
            _check_months(as_of_dates, name, rows)
            replace_months(con, published_table(name), as_of_dates, rows)
            per_month[name] = _rows_per_month(rows)
            del rows
        if "supplier_scores" in tables:
            con.execute(LATEST_SCORES_VIEW)
    return {month: {name: per_month[name].get(month, 0) for name in tables} for month in sorted(set(as_of_dates))}


def commit_month(con: duckdb.DuckDBPyConnection, as_of_date: date, tables: Mapping[str, TableRows]) -> dict[str, int]:
    """Replace one month of the given published tables in DuckDB, in one transaction."""
    return commit_months(con, [as_of_date], tables)[as_of_date]


def publish_months(
    con: duckdb.DuckDBPyConnection,
    months: Iterable[tuple[date, Mapping[str, pa.Table]]],
    parquet_root: Path,
    published_file: Path | None = None,
) -> dict[date, dict[str, int]]:
    """Publish months of the published tables, one transaction each; return rows per month and table.

    `con` writes the working DuckDB file; with `published_file`, that file is replaced by a
    copy of it once every month is committed (readers see all the months or none), then the
    Parquet copy is brought in line month file by month file.
    """
    counts = {as_of_date: commit_month(con, as_of_date, tables) for as_of_date, tables in months}
    sync_published_copies(con, parquet_root, published_file)
    return counts


def publish_month(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    tables: Mapping[str, pa.Table],
    parquet_root: Path,
    published_file: Path | None = None,
) -> dict[str, int]:
    """Publish one month of every published table atomically; return rows per table."""
    return publish_months(con, [(as_of_date, tables)], parquet_root, published_file)[as_of_date]


@dataclass
class SyncReport:
    """What `sync_published_copies` found and did."""

    snapshot_replaced: bool = False
    debris_removed: list[str] = field(default_factory=list)
    months_rewritten: list[str] = field(default_factory=list)  # "table/YYYY-MM-DD"
    months_removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"published copies in line with the warehouse: {len(self.months_rewritten)} Parquet month(s) "
            f"rewritten, {len(self.months_removed)} removed, {len(self.debris_removed)} leftover(s) cleared"
            + (f" ({', '.join(self.debris_removed[:5])}{', ...' if len(self.debris_removed) > 5 else ''})" if self.debris_removed else "")
        )


def remove_debris(parquet_root: Path) -> list[str]:
    """Delete what a killed or older publishing left: the staging folder, and any entry under
    `published/<table>/` or a month folder that is not a month folder or its Parquet file
    (older versions staged `.staging-*` / `.retired-*` folders there)."""
    parquet_root = Path(parquet_root)
    removed: list[str] = []

    def remove(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.relative_to(parquet_root.parent).as_posix())

    staging = staging_root(parquet_root)
    if staging.exists():
        remove(staging)
    for table in PUBLISHED_TABLES:
        folder = parquet_root / table
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if not (entry.is_dir() and MONTH_FOLDER.match(entry.name)):
                remove(entry)
                continue
            for inner in sorted(entry.iterdir()):
                if inner.name != PARQUET_FILE:
                    remove(inner)
            if not any(entry.iterdir()):
                remove(entry)
    return removed


def month_fingerprints(con: duckdb.DuckDBPyConnection, table: str) -> dict[date, str]:
    """Content fingerprint of every month of a published table: row count and the sum of
    DuckDB's row hashes (order-free, so it does not depend on how rows are stored)."""
    rows = con.execute(
        f"SELECT as_of_date, count(*), sum(hash(t)::HUGEINT) FROM {published_table(table)} t GROUP BY 1"
    ).fetchall()
    return {as_of_date: f"{n}:{total}" for as_of_date, n, total in rows}


def parquet_fingerprint(path: Path) -> str | None:
    """The fingerprint a Parquet month file was written with (None: missing or unreadable)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    value = metadata.get(FINGERPRINT_KEY)
    return value.decode() if value is not None else None


def parquet_differences(
    con: duckdb.DuckDBPyConnection, table: str, as_of_dates: Sequence[date], parquet_root: Path
) -> dict[date, str | None]:
    """Per month, how the Parquet copy differs from the warehouse's rows, or None when it holds
    exactly the same rows (compared as multisets on every column, not just counted), for all
    the months in one statement that reads each side once."""
    months = sorted(as_of_dates)
    files = {month: month_file(parquet_root, table, month) for month in months}
    missing_files = [month for month, file in files.items() if not file.exists()]
    in_warehouse = dict(con.execute(
        f"SELECT as_of_date, count(*) FROM {published_table(table)} WHERE as_of_date IN (SELECT unnest(?::DATE[])) GROUP BY 1",
        [missing_files]).fetchall()) if missing_files else {}
    result: dict[date, str | None] = {
        month: (f"no Parquet file for {in_warehouse[month]:,} warehouse rows" if in_warehouse.get(month) else None)
        for month, file in files.items() if not file.exists()
    }
    present = [str(file) for month, file in files.items() if file.exists()]
    if not present:
        return result
    read = f"read_parquet($files, hive_partitioning = true, hive_types = {{'as_of_date': DATE}}, union_by_name = true)"
    columns = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name <> 'as_of_date' ORDER BY ordinal_position", [PUBLISHED_SCHEMA, table]).fetchall()]
    in_files = {name for (name, *_) in con.execute(f"DESCRIBE SELECT * FROM {read}", {"files": present}).fetchall()}
    if missing := [name for name in columns if name not in in_files]:
        return {**result, **{month: f"Parquet lacks columns {', '.join(missing)}" for month, file in files.items() if file.exists()}}
    select = "as_of_date, " + ", ".join(f'"{name}"' for name in columns)
    warehouse_rows = f"SELECT {select} FROM {published_table(table)} WHERE as_of_date IN (SELECT unnest($months::DATE[]))"
    parquet_rows = f"SELECT {select} FROM {read}"
    # One read of each side: every distinct row counted +1 per warehouse copy and -1 per Parquet
    # copy; a row whose copies do not cancel is what EXCEPT ALL would return from one side or
    # the other (NULLs and NaNs group as equal, as in EXCEPT).
    differing = con.execute(
        f"""SELECT as_of_date, sum(greatest(_copies, 0)), sum(greatest(-_copies, 0)) FROM (
                SELECT {select}, sum(_copy) AS _copies FROM (
                    SELECT {select}, 1 AS _copy FROM ({warehouse_rows})
                    UNION ALL SELECT {select}, -1 FROM ({parquet_rows})
                ) GROUP BY ALL HAVING sum(_copy) <> 0
            ) GROUP BY 1""",
        {"months": months, "files": present},
    ).fetchall()
    by_month = {month: (only_warehouse, only_parquet) for month, only_warehouse, only_parquet in differing}
    for month, file in files.items():
        if file.exists():
            only_warehouse, only_parquet = by_month.get(month, (0, 0))
            result[month] = (f"{only_warehouse:,} warehouse rows not in Parquet, {only_parquet:,} Parquet rows not in the warehouse"
                             if only_warehouse or only_parquet else None)
    return result


def write_month_parquet(con: duckdb.DuckDBPyConnection, table: str, as_of_date: date, fingerprint: str, parquet_root: Path,
                        rows: pa.Table | None = None) -> None:
    """Write one month of a published table and move it into place atomically.

    `rows` are the month's rows without `as_of_date`, sorted by supplier (`stale_months_rows`);
    without them they are read from DuckDB. Rows are sorted, so the bytes are a function of the
    data (reruns with equal values produce equal files apart from the run metadata columns).
    """
    if rows is None:
        rows = con.execute(
            f"SELECT * EXCLUDE (as_of_date) FROM {published_table(table)} WHERE as_of_date = ? ORDER BY supplier_id",
            [as_of_date],
        ).fetch_arrow_table()
    rows = rows.replace_schema_metadata({**(rows.schema.metadata or {}), FINGERPRINT_KEY: fingerprint.encode()})
    final = month_file(parquet_root, table, as_of_date)
    staged = staging_root(parquet_root) / table / f"{final.parent.name}-{uuid.uuid4().hex}.parquet"
    staged.parent.mkdir(parents=True, exist_ok=True)
    try:
        pq.write_table(rows, staged, compression="zstd")
        fsync(staged)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def stale_months_rows(con: duckdb.DuckDBPyConnection, table: str, months: Sequence[date],
                      rows_per_batch: int = 100_000) -> Iterator[tuple[date, pa.Table]]:
    """The rows of `months` of a published table, one month at a time (without `as_of_date`,
    sorted by supplier), from one statement streamed in batches: memory holds about a month."""
    if not months:
        return
    reader = con.execute(
        f"SELECT * FROM {published_table(table)} WHERE as_of_date IN (SELECT unnest(?::DATE[])) "
        "ORDER BY as_of_date, supplier_id",
        [sorted(months)],
    ).fetch_record_batch(rows_per_batch)
    month, pieces = None, []
    for batch in reader:
        batch = pa.Table.from_batches([batch])
        dates = batch.column("as_of_date")
        start = 0
        while start < batch.num_rows:
            current = dates[start].as_py()
            # rows are sorted by month: the month runs until the first row of a later one
            later = pc.indices_nonzero(pc.not_equal(dates.slice(start), dates[start])).to_pylist()
            end = start + later[0] if later else batch.num_rows
            if current != month and pieces:
                yield month, pa.concat_tables(pieces).drop_columns(["as_of_date"])
                pieces = []
            month = current
            pieces.append(batch.slice(start, end - start))
            start = end
    if pieces:
        yield month, pa.concat_tables(pieces).drop_columns(["as_of_date"])


def _published_tables_present(con: duckdb.DuckDBPyConnection) -> list[str]:
    present = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
            [PUBLISHED_SCHEMA],
        ).fetchall()
    }
    return [table for table in PUBLISHED_TABLES if table in present]


def sync_published_copies(
    con: duckdb.DuckDBPyConnection, parquet_root: Path, published_file: Path | None = None
) -> SyncReport:
    """Make the published DuckDB file and the Parquet copy equal to the working file.

    The start-up reconciliation and the last step of every publishing: clears leftovers,
    replaces the published file (with `published_file`), rewrites every Parquet month whose
    fingerprint differs from DuckDB's or that is missing, removes Parquet months DuckDB no
    longer holds. Idempotent; cheap when nothing differs (one hash pass per table).
    """
    parquet_root = Path(parquet_root)
    report = SyncReport(debris_removed=remove_debris(parquet_root))
    if published_file is not None:
        report.snapshot_replaced = publish_snapshot(con, published_file)
    for table in PUBLISHED_TABLES:
        fingerprints = month_fingerprints(con, table) if table in _published_tables_present(con) else {}
        stale = [as_of_date for as_of_date, fingerprint in sorted(fingerprints.items())
                 if parquet_fingerprint(month_file(parquet_root, table, as_of_date)) != fingerprint]
        for as_of_date, rows in stale_months_rows(con, table, stale):
            write_month_parquet(con, table, as_of_date, fingerprints[as_of_date], parquet_root, rows)
            report.months_rewritten.append(f"{table}/{as_of_date.isoformat()}")
        folder = parquet_root / table
        for month_folder in sorted(folder.iterdir()) if folder.is_dir() else []:
            month = date.fromisoformat(MONTH_FOLDER.match(month_folder.name).group(1))
            if month not in fingerprints:
                shutil.rmtree(month_folder)
                report.months_removed.append(f"{table}/{month.isoformat()}")
    shutil.rmtree(staging_root(parquet_root), ignore_errors=True)
    return report
