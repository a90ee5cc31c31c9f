"""`ingest_landing_zone`: landing zone -> `validated.*` + `quarantine.*` + `validated._ingest_report`.

Steps: stage every table (reading + rules that need only the row), fix the data horizon from
the orders, then, table by table in dependency order, apply the horizon, duplicate, reference
and cross-table rules, and finally replace the warehouse tables in one transaction so a reader
never sees a half-ingested landing zone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path

import duckdb

from data_contracts.contracts import TableContract, _q, load_landing_contracts
from data_contracts.errors import LandingZoneError
from data_contracts.landing_zone import (
    ROW_ID_FILE_SHIFT,
    StagedTable,
    discover_table_files,
    install_macros,
    raw_name,
    stage_table,
    unknown_entries,
)
from data_contracts.manifest import MANIFEST_NAME, read_declared_outcomes, read_not_collected, read_snapshot_at
from data_contracts.outcomes import write_outcome_definition
from data_contracts.quarantine import apply_table_rules, single_row_rule_sql
from data_contracts.report import IngestReport, TableIngestStats, load_tolerances
from data_contracts.transaction import transaction

VALIDATED_SCHEMA = "validated"
QUARANTINE_SCHEMA = "quarantine"
INGEST_REPORT_TABLE = f"{VALIDATED_SCHEMA}._ingest_report"

# The staging tables hold every landing row at once (DuckDB temporary tables, in memory up to
# the connection's memory limit, 80% of RAM by default): with this cap DuckDB spills them to the
# warehouse file's temporary folder, so ingest's peak memory stays flat as the landing zone grows.
INGEST_MEMORY_LIMIT = "2GB"

# A gap of more than this many days without any order, after the median order date, means the
# orders beyond it are stray timestamps (e.g. a year typo), not the end of the data.
HORIZON_MAX_GAP_DAYS = 31


def _horizon_from_orders(con: duckdb.DuckDBPyConnection, stage: str) -> datetime | None:
    """End of day of the last order date before any implausible gap in order activity.

    The naive "max created_at" would let one order typed as 2099 push the horizon out and hide
    every other future timestamp. Instead: walk the distinct order dates from the median order
    date forward and stop at the first gap of more than HORIZON_MAX_GAP_DAYS days.
    """
    row = con.execute(f"""
        WITH ok AS (SELECT CAST(created_at AS DATE) AS day FROM {stage} WHERE _rule IS NULL),
        days AS (SELECT DISTINCT day FROM ok WHERE day >= (SELECT quantile_disc(day, 0.5) FROM ok)),
        gaps AS (SELECT day, day - lag(day) OVER (ORDER BY day) AS gap FROM days)
        SELECT max(day) FROM days
        WHERE day < coalesce((SELECT min(day) FROM gaps WHERE gap > {HORIZON_MAX_GAP_DAYS}),
                             DATE '9999-12-31')""").fetchone()
    last_day: date | None = row[0] if row else None
    if last_day is None:
        return None
    return datetime.combine(last_day, time.max)  # 23:59:59.999999, inclusive


def _write_tables(con: duckdb.DuckDBPyConnection, staged: dict[str, StagedTable],
                  absent: list[str], report: IngestReport) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {VALIDATED_SCHEMA}")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {QUARANTINE_SCHEMA}")
    for name in absent:
        # Re-running replaces everything: a table that disappeared from the landing zone
        # must not survive from an earlier ingest.
        con.execute(f"DROP TABLE IF EXISTS {VALIDATED_SCHEMA}.{_q(name)}")
        con.execute(f"DROP TABLE IF EXISTS {QUARANTINE_SCHEMA}.{_q(name)}")
    for name, st in staged.items():
        contract = st.contract
        typed = ", ".join(f"CAST({_q(c.name)} AS {c.type}) AS {_q(c.name)}" for c in contract.columns)
        con.execute(f"CREATE OR REPLACE TABLE {VALIDATED_SCHEMA}.{_q(name)} AS "
                    f"SELECT {typed} FROM {st.stage_name} WHERE _rule IS NULL")
        original = ", ".join(
            f"CAST({_q(c.name)} AS VARCHAR) AS {_q(c.name)}" if c.type == "VARCHAR" else
            f"coalesce({_q(raw_name(c.name))}, CAST({_q(c.name)} AS VARCHAR)) AS {_q(c.name)}"
            for c in contract.columns)
        con.execute(f"""
            CREATE OR REPLACE TABLE {QUARANTINE_SCHEMA}.{_q(name)} AS
            SELECT {original}, _rule AS rule, _rule_detail AS rule_detail, _source_file AS source_file,
                   _row_id & {(1 << ROW_ID_FILE_SHIFT) - 1} AS source_row
            FROM {st.stage_name} WHERE _rule IS NOT NULL ORDER BY _row_id""")
    con.execute(f"""CREATE OR REPLACE TABLE {INGEST_REPORT_TABLE} (
        "table" VARCHAR, outcome VARCHAR, rule VARCHAR, "rows" BIGINT, data_horizon TIMESTAMP)""")
    rows = []
    for name, s in report.tables.items():
        rows.append((name, "read", None, s.rows_read, report.data_horizon))
        rows.append((name, "accepted", None, s.rows_accepted, report.data_horizon))
        for rule, n in s.quarantined_by_rule.items():
            rows.append((name, "quarantined", rule, n, report.data_horizon))
    if rows:
        con.executemany(f"INSERT INTO {INGEST_REPORT_TABLE} VALUES (?, ?, ?, ?, ?)", rows)
    write_outcome_definition(con, VALIDATED_SCHEMA, report.outcome_definition)


def _write_quarantine_parquet(con: duckdb.DuckDBPyConnection, tables: list[str], absent: list[str],
                              out_dir: Path) -> None:
    for name in [*tables, *absent]:
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target)
    for name in tables:
        target = out_dir / name
        target.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY (SELECT * FROM {QUARANTINE_SCHEMA}.{_q(name)}) TO ? (FORMAT parquet)",
                    [str(target / "quarantine.parquet")])


def ingest_landing_zone(
    landing_dir: Path,
    con: duckdb.DuckDBPyConnection,
    quarantine_parquet_dir: Path | None = None,
    horizon: datetime | None = None,
) -> IngestReport:
    """Read and validate a landing zone (docs/design.md §3) into `con`.

    Creates `validated.<table>` (accepted rows, typed exactly per docs/architecture.md),
    `quarantine.<table>` (rejected rows: original columns as VARCHAR + `rule`, `rule_detail`,
    `source_file`, `source_row`) and `validated._ingest_report`, replacing earlier ones; an
    optional table absent from the landing zone is not created (and dropped if it existed).
    With `quarantine_parquet_dir`, quarantined rows are also written to
    `<dir>/<table>/quarantine.parquet`. `horizon` (naive UTC, inclusive) overrides the data
    horizon derived from the orders.

    Raises `LandingZoneError` for unusable input; nothing is written to the warehouse then.
    """
    landing_dir = Path(landing_dir)
    contracts = load_landing_contracts()
    if not landing_dir.is_dir():
        raise LandingZoneError("*", f"landing zone folder {str(landing_dir)!r} does not exist",
                               expectation="a folder with one sub-folder per table",
                               next_step="pass the folder that contains suppliers/, orders/, disputes/")
    try:
        with _bounded_memory(con):
            return _ingest(landing_dir, con, contracts, quarantine_parquet_dir, horizon)
    except LandingZoneError:
        raise
    except (duckdb.Error, OSError) as exc:
        # Anything the checks above did not anticipate still leaves as one clear line.
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LandingZoneError("*", f"could not ingest the landing zone: {first_line}",
                               next_step="check the files against docs/data_contracts.md") from None
    finally:
        for name in contracts:
            try:
                con.execute(f"DROP TABLE IF EXISTS _lz_stage_{name}")
            except duckdb.Error:
                pass


@contextmanager
def _bounded_memory(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``INGEST_MEMORY_LIMIT`` on a file-backed connection while ingesting (its earlier limit
    after); an in-memory database, which has no file to spill beside, keeps its limit."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not path or not path[0]:
        yield
        return
    limit = "SELECT current_setting('memory_limit')"
    before = con.execute(limit).fetchone()[0]
    con.execute("RESET memory_limit")
    restore = "RESET memory_limit" if con.execute(limit).fetchone()[0] == before else f"SET memory_limit = '{before}'"
    con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        con.execute(restore)


def _ingest(landing_dir: Path, con: duckdb.DuckDBPyConnection, contracts: dict[str, TableContract],
            quarantine_parquet_dir: Path | None, horizon: datetime | None) -> IngestReport:
    install_macros(con)
    staged: dict[str, StagedTable] = {}
    ignored: dict[str, list[str]] = {}
    absent: list[str] = []
    not_collected = read_not_collected(landing_dir)
    outcomes = read_declared_outcomes(landing_dir)
    for name, contract in contracts.items():
        files, ignored_files = discover_table_files(landing_dir, name) if (landing_dir / name).is_dir() else ([], [])
        if name in not_collected:
            if files:
                raise LandingZoneError(
                    name, f"has files although {MANIFEST_NAME} declares it not collected", file=files[0].relative,
                    expectation="no files for a table the source does not record",
                    next_step=f"remove the files or take {name} out of not_collected")
            absent.append(name)
            continue
        if not files:
            if contract.optional:
                absent.append(name)
                continue
            present = sorted(p.name for p in landing_dir.iterdir() if p.is_dir())
            raise LandingZoneError(
                name, "required table is missing (no .parquet or .csv files in "
                f"{(landing_dir / name).as_posix()}/)",
                expectation=f"a folder {name}/ with Parquet or CSV files (found folders: {', '.join(present) or 'none'})",
                next_step=f"deliver the {name} table; see docs/data_contracts.md")
        ignored[name] = ignored_files
        staged[name] = stage_table(con, contract, files, single_row_rule_sql(contract))
    if outcomes.needs_reviews and "reviews" in absent:
        raise LandingZoneError(
            "reviews", f"is absent but the outcomes of {MANIFEST_NAME} count low ratings as failures",
            file=MANIFEST_NAME, column="outcomes", expectation="a reviews/ folder for a rating rule",
            next_step="deliver reviews or set low_rating_at_most to null in the manifest")

    if horizon is not None:
        data_horizon, horizon_source = horizon.replace(tzinfo=None), "argument"
    elif (snapshot_at := read_snapshot_at(landing_dir)) is not None:
        data_horizon, horizon_source = snapshot_at, f"{MANIFEST_NAME} snapshot_at"
    else:
        data_horizon = _horizon_from_orders(con, staged["orders"].stage_name)
        horizon_source = "orders.created_at" if data_horizon else "none (no valid orders)"

    stages = {name: st.stage_name for name, st in staged.items()}
    for name, st in staged.items():  # dependency order: references are final before use
        apply_table_rules(con, st.stage_name, st.contract, data_horizon, stages, contracts)

    tables: dict[str, TableIngestStats] = {}
    for name, st in staged.items():
        by_rule = dict(con.execute(
            f"SELECT _rule, count(*) FROM {st.stage_name} WHERE _rule IS NOT NULL GROUP BY _rule ORDER BY _rule"
        ).fetchall())
        accepted = con.execute(f"SELECT count(*) FROM {st.stage_name} WHERE _rule IS NULL").fetchone()[0]
        tables[name] = TableIngestStats(
            table=name, files=[f.relative for f in st.files], rows_read=st.rows_read,
            rows_accepted=accepted, quarantined_by_rule=by_rule, ignored_files=ignored[name])
    unknown_tables, top_level_files = unknown_entries(landing_dir, contracts, MANIFEST_NAME)
    report = IngestReport(tables=tables, data_horizon=data_horizon, horizon_source=horizon_source,
                          absent_optional_tables=absent, unknown_tables=unknown_tables,
                          ignored_files=top_level_files, outcome_definition=outcomes)

    with transaction(con):
        _write_tables(con, staged, absent, report)
        for name, s in tables.items():
            accepted = con.execute(f"SELECT count(*) FROM {VALIDATED_SCHEMA}.{_q(name)}").fetchone()[0]
            quarantined = con.execute(f"SELECT count(*) FROM {QUARANTINE_SCHEMA}.{_q(name)}").fetchone()[0]
            # The promise of docs/design.md §3: every row read is either accepted or quarantined.
            if not (s.rows_read == accepted + quarantined == s.rows_accepted + s.rows_quarantined):
                raise AssertionError(
                    f"{name}: read {s.rows_read} != accepted {accepted} + quarantined {quarantined}")
    if quarantine_parquet_dir is not None:
        _write_quarantine_parquet(con, list(staged), absent, Path(quarantine_parquet_dir))
    return report


def validate_landing_zone(landing_dir: Path, tolerances: dict[str, float] | None = None
                          ) -> tuple[IngestReport | None, int, str]:
    """`assurance validate`: ingest into a throw-away in-memory DuckDB and report.

    Returns (report or None, exit code 0/1/2, text to print).
    """
    tolerances = load_tolerances() if tolerances is None else tolerances
    con = duckdb.connect(":memory:")
    try:
        report = ingest_landing_zone(Path(landing_dir), con)
    except LandingZoneError as exc:
        return None, 2, f"unusable input: {exc}\nresult: unusable input -> exit 2"
    finally:
        con.close()
    return report, report.exit_code(tolerances), report.to_text(tolerances)



def _file_records(path: Path, file_format: str) -> int:
    """Data rows in one landing file, counted without the reader ingest uses: the Parquet
    footer's row count, or the CSV records after the header (quoted newlines included)."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    import csv

    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        records = sum(1 for record in csv.reader(handle) if record)
    return max(records - 1, 0)


def reconcile_row_counts(landing_dir: Path, con: duckdb.DuckDBPyConnection, report: IngestReport) -> dict[str, tuple[int, int, int]]:
    """Per table: (rows in the landing files, rows in `validated.*`, rows in `quarantine.*`).

    Counted independently of ingest's own bookkeeping (the files' footers or records against
    the tables as stored), so a row a reader skipped or a write lost shows up as a difference.
    """
    counts = {}
    for name, stats in report.tables.items():
        in_files = sum(
            _file_records(Path(landing_dir) / relative, "csv" if relative.lower().endswith(".csv") else "parquet")
            for relative in stats.files
        )
        accepted = con.execute(f"SELECT count(*) FROM {VALIDATED_SCHEMA}.{_q(name)}").fetchone()[0]
        quarantined = con.execute(f"SELECT count(*) FROM {QUARANTINE_SCHEMA}.{_q(name)}").fetchone()[0]
        counts[name] = (in_files, accepted, quarantined)
    return counts
