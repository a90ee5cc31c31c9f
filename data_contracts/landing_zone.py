"""Reading a landing zone (docs/design.md §3) into per-table DuckDB staging tables.

Job of this module: find each table's files, refuse files that cannot be used at all
(raising `LandingZoneError`), and load every row into a temporary staging table with

* one typed column per contract column (`INTEGER`/`BIGINT` staged as `DOUBLE`, so a rating of
  4.5 can be quarantined instead of silently rounded),
* `__raw_<column>`: the original text when the value came from text (CSV, a text Parquet
  timestamp, a hive path segment) so quarantine can show what was delivered,
* `_source_file` (path relative to the landing root) and `_row_id` (file index and row
  number in the file: a deterministic order for "first" and for reports),
* `_rule` / `_rule_detail`, left null here and filled by `quarantine`.

Text is parsed leniently only where the meaning is unambiguous (ISO-8601 timestamps with an
optional `T`, `Z` or a numeric offset; numbers; true/false). What does not parse is left for
quarantine (`unparseable_*`); a column whose every value fails is a wrong type and raises.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import duckdb

from data_contracts.contracts import ColumnContract, TableContract, _q
from data_contracts.errors import LandingZoneError

STAGE_PREFIX = "_lz_stage_"
RAW_PREFIX = "__raw_"
ROW_ID_FILE_SHIFT = 40  # _row_id = file_index << 40 | row number in file

# Column types in a Parquet file, as DuckDB names them, grouped by what they can become.
_INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"}
_TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE"}

FILES_PER_INSERT = 64

# Smallest number of non-empty text values in a file column, all unparseable, that makes the
# column a wrong type (raise) rather than a few dirty rows (quarantine).
WRONG_TYPE_MIN_VALUES = 10

# A timestamp with an explicit offset: group 1 the local part (must end in a time), group 2
# the offset (Z, UTC, +HH, +HHMM, +HH:MM).
_TZ_RE = r"^(.*\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(Z|z|UTC|[+-]\d\d(?::?\d\d)?)$"

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO _lz_tz_text(x) AS regexp_extract(trim(x), '{_TZ_RE}', 2);
CREATE OR REPLACE TEMP MACRO _lz_tz_minutes(x) AS (
    CASE WHEN _lz_tz_text(x) IN ('', 'Z', 'z', 'UTC') THEN 0
         ELSE (CASE WHEN _lz_tz_text(x)[1] = '-' THEN -1 ELSE 1 END)
              * (CAST(_lz_tz_text(x)[2:3] AS INTEGER) * 60
                 + coalesce(TRY_CAST(nullif(replace(_lz_tz_text(x)[4:], ':', ''), '') AS INTEGER), 0))
    END);
CREATE OR REPLACE TEMP MACRO _lz_parse_ts(x) AS (
    CASE WHEN x IS NULL OR trim(x) = '' THEN NULL
         WHEN _lz_tz_text(x) = '' THEN TRY_CAST(trim(x) AS TIMESTAMP)
         ELSE TRY_CAST(regexp_extract(trim(x), '{_TZ_RE}', 1) AS TIMESTAMP)
              - to_minutes(_lz_tz_minutes(x))
    END);
CREATE OR REPLACE TEMP MACRO _lz_parse_double(x) AS TRY_CAST(nullif(trim(x), '') AS DOUBLE);
CREATE OR REPLACE TEMP MACRO _lz_parse_bool(x) AS TRY_CAST(nullif(trim(x), '') AS BOOLEAN);
"""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    relative: str  # relative to the landing root, e.g. "orders/month=2024-01/part-0.parquet"
    format: str  # "parquet" or "csv"
    hive_values: dict[str, str] = field(default_factory=dict)


@dataclass
class StagedTable:
    contract: TableContract
    stage_name: str
    files: list[LandingFile]
    rows_read: int
    text_columns: set[str]  # columns that came from text in at least one file


def stage_type(column: ColumnContract) -> str:
    return "DOUBLE" if column.type in ("INTEGER", "BIGINT") else column.type


def raw_name(column: str) -> str:
    return RAW_PREFIX + column


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_MACROS)


def _file_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    return None


def _is_bookkeeping(name: str) -> bool:
    """Files and folders of the writer (`_SUCCESS`, `.crc`, `_delta_log`), not data."""
    return name.startswith((".", "_"))


def _table_folder_files(landing_dir: Path, table: str) -> list[Path]:
    """Files under a table folder but for bookkeeping, sorted, following symbolic links.

    A link is followed when it resolves inside the landing zone (or the table folder, if
    that is itself a link); any other link, a broken one, a loop, or two links to the same
    data raise a `LandingZoneError` naming the link: silently skipping it (Python's
    `rglob` does not follow linked folders) once lost 3,251 of 7,859 reviews.
    """
    root = landing_dir / table
    if not root.is_dir():
        return []
    inside = (landing_dir.resolve(), root.resolve())
    files: list[Path] = []
    seen: set[Path] = {root.resolve()}

    def refuse(entry: Path, problem: str, expectation: str) -> LandingZoneError:
        return LandingZoneError(
            table, problem, file=entry.relative_to(landing_dir).as_posix(), expectation=expectation,
            next_step="copy the data into the landing zone, or fix or remove the link")

    def visit(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if _is_bookkeeping(entry.name):
                continue
            real = entry.resolve()
            if entry.is_symlink():
                if not entry.exists():
                    raise refuse(entry, f"the symbolic link is broken (it points to {real})",
                                 "links to existing files or folders")
                if not any(real == base or real.is_relative_to(base) for base in inside):
                    raise refuse(entry, f"the symbolic link points outside the landing zone, to {real}",
                                 f"links that resolve inside {landing_dir.resolve()}")
            if real in seen:
                raise refuse(entry, f"reaches {real} a second time (a link loop or two links to the same data)",
                             "each file read once")
            seen.add(real)
            if entry.is_dir():
                visit(entry)
            elif entry.is_file():
                files.append(entry)

    visit(root)
    return sorted(files)


def discover_table_files(landing_dir: Path, table: str) -> tuple[list[LandingFile], list[str]]:
    """Data files of one table folder (recursively, sorted, links followed within the zone),
    and the paths of the other files, which are ignored.

    Files and folders starting with `.` or `_` (e.g. `_SUCCESS`, `.crc`) are bookkeeping of
    the writer, not data. `key=value` folder names are hive partitions.
    """
    root = landing_dir / table
    files: list[LandingFile] = []
    ignored: list[str] = []
    for path in _table_folder_files(landing_dir, table):
        rel_parts = path.relative_to(root).parts
        relative = path.relative_to(landing_dir).as_posix()
        fmt = _file_format(path)
        if fmt is None:
            ignored.append(relative)
            continue
        hive = {}
        for part in rel_parts[:-1]:
            if "=" in part:
                key, value = part.split("=", 1)
                hive[key] = unquote(value)
        files.append(LandingFile(path=path, relative=relative, format=fmt, hive_values=hive))
    return files, ignored


def unknown_entries(landing_dir: Path, tables: Iterable[str], manifest: str) -> tuple[dict[str, int], list[str]]:
    """What the landing zone holds beside its tables, all of it ignored: sub-folders that are
    no contract table (folder -> files in it) and files at the top level (but `manifest`).
    `_truth/` and other `_`/`.` entries are bookkeeping."""
    known = set(tables)
    folders: dict[str, int] = {}
    files: list[str] = []
    for entry in sorted(Path(landing_dir).iterdir()):
        if _is_bookkeeping(entry.name) or entry.name in known or entry.name == manifest:
            continue
        if entry.is_dir():
            folders[entry.name] = sum(1 for p in entry.rglob("*") if p.is_file())
        else:
            files.append(entry.name)
    return folders, files


def _engine_message(exc: Exception) -> str:
    """First meaningful line of a DuckDB error, without its multi-line diagnostics."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _csv_header(file: LandingFile, table: str) -> str:
    opener = gzip.open if file.path.name.lower().endswith(".gz") else open
    try:
        with opener(file.path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise LandingZoneError(table, f"cannot read the file ({exc})", file=file.relative,
                               next_step="check the file is readable and not truncated") from None
    if not head.strip():
        raise LandingZoneError(table, "the file is empty", file=file.relative,
                               expectation="a CSV file with a header row",
                               next_step="re-export the file or remove it") from None
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LandingZoneError(table, "the file is UTF-16 encoded", file=file.relative,
                               expectation="UTF-8 encoded CSV", next_step="re-export the file as UTF-8")
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = first_line.decode("utf-8")
    except UnicodeDecodeError:
        raise LandingZoneError(table, "the header is not valid UTF-8 (e.g. latin-1)", file=file.relative,
                               expectation="UTF-8 encoded CSV",
                               next_step="re-export the file as UTF-8") from None
    if "," not in header:
        for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delimiter in header:
                raise LandingZoneError(
                    table, f"the header is delimited by {label}", file=file.relative,
                    expectation="comma-separated values with a header row",
                    next_step="re-export the file with ',' as the delimiter")
    return header


def _header_names(header: str, file: LandingFile, table: str) -> list[str]:
    names = next(csv.reader([header]))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LandingZoneError(table, f"the header repeats column(s) {', '.join(duplicates)}",
                               file=file.relative, column=duplicates[0],
                               expectation="each column named once", next_step="fix the export")
    return names


def _read_relation_sql(file: LandingFile, csv_columns: list[str] | None = None) -> str:
    path = str(file.path).replace("'", "''")
    if file.format == "parquet":
        return f"read_parquet('{path}', binary_as_string = true, file_row_number = true)"
    if csv_columns is None:
        table = file.relative.split("/", 1)[0]
        csv_columns = _header_names(_csv_header(file, table), file, table)
    # Everything as text and no sniffing: the header we parsed names the columns, types come
    # from the contract, and a row with the wrong number of fields is an error, not a hint
    # that the "real" header is somewhere else.
    columns = "{" + ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for n in csv_columns) + "}"
    return (
        f"read_csv('{path}', columns = {columns}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', encoding = 'utf-8', strict_mode = true, null_padding = false)"
    )


def _file_columns(con: duckdb.DuckDBPyConnection, file: LandingFile, table: str) -> tuple[dict[str, str], str]:
    """(column name -> DuckDB type, relation SQL) of one file (all VARCHAR for CSV)."""
    if file.path.stat().st_size == 0:
        raise LandingZoneError(table, "the file is empty (0 bytes)", file=file.relative,
                               next_step="re-export the file or remove it")
    if file.format == "csv":
        relation = _read_relation_sql(file, _header_names(_csv_header(file, table), file, table))
    else:
        relation = _read_relation_sql(file)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except (duckdb.Error, OSError) as exc:
        what = "Parquet" if file.format == "parquet" else "CSV"
        hint = ("the file is not valid UTF-8; re-export it as UTF-8"
                if "unicode" in str(exc).lower() else
                f"check it is a complete, readable {what} file")
        raise LandingZoneError(table, f"cannot read the file as {what}: {_engine_message(exc)}",
                               file=file.relative, next_step=hint) from None
    return {name: dtype for name, dtype, *_ in described if name != "file_row_number"}, relation


def _missing_column_error(table: str, file: LandingFile, missing: list[str], present: list[str]) -> LandingZoneError:
    lowered = {p.strip().lower(): p for p in present}
    near = [f"{lowered[m]!r} for {m!r}" for m in missing if m in lowered]
    hint = ("column names are case-sensitive and exact: found " + ", ".join(near)) if near else \
        "add the column(s) or fix the export; see docs/data_contracts.md"
    return LandingZoneError(table, f"required column(s) {', '.join(missing)} missing",
                            file=file.relative, column=missing[0],
                            expectation=f"columns {', '.join(missing)} present (found: {', '.join(present)})",
                            next_step=hint)


def _typed_source_expr(column: ColumnContract, source_type: str, ident: str) -> str | None:
    """SQL turning a typed Parquet column into the staged type, or None if incompatible."""
    base = re.sub(r"\(.*\)$", "", source_type)  # DECIMAL(18,2) -> DECIMAL
    target = column.type
    if target == "VARCHAR":
        if source_type == "VARCHAR":
            return ident
        if source_type in _INTEGER_TYPES:
            return f"CAST({ident} AS VARCHAR)"
        return None
    if target in ("DOUBLE", "INTEGER", "BIGINT"):
        if source_type in _INTEGER_TYPES or source_type in _FLOAT_TYPES or base == "DECIMAL":
            return f"CAST({ident} AS DOUBLE)"
        return None
    if target == "BOOLEAN":
        return ident if source_type == "BOOLEAN" else None
    if target == "TIMESTAMP":
        if source_type in _TIMESTAMP_TYPES:
            return f"CAST({ident} AS TIMESTAMP)"
        if source_type in _TIMESTAMPTZ_TYPES:
            # epoch arithmetic, not timezone('UTC', …): the ICU conversion is ~10x slower
            return f"make_timestamp(epoch_us({ident}))"
        return None
    return None


def _text_parse_expr(column: ColumnContract, text_expr: str) -> str:
    if column.type == "TIMESTAMP":
        return f"_lz_parse_ts({text_expr})"
    if column.type in ("DOUBLE", "INTEGER", "BIGINT"):
        return f"_lz_parse_double({text_expr})"
    if column.type == "BOOLEAN":
        return f"_lz_parse_bool({text_expr})"
    return text_expr


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _insert_sql(stage: str, source_sql: str, rule_sql: str, detail_sql: str) -> str:
    # The detail is only rendered for rejected rows: a CASE only evaluates the branch of the
    # rows that reach it, so the (string-building) detail costs nothing for accepted rows.
    return (f"INSERT INTO {stage} SELECT * EXCLUDE (_rule), _rule, "
            f"CASE WHEN _rule IS NULL THEN NULL ELSE {detail_sql} END "
            f"FROM (SELECT *, {rule_sql} AS _rule FROM ({source_sql}))")


def _create_stage(con: duckdb.DuckDBPyConnection, contract: TableContract) -> str:
    name = STAGE_PREFIX + contract.name
    cols = []
    for c in contract.columns:
        cols.append(f"{_q(c.name)} {stage_type(c)}")
        cols.append(f"{_q(raw_name(c.name))} VARCHAR")
    cols += ["_source_file VARCHAR", "_row_id BIGINT", "_rule VARCHAR", "_rule_detail VARCHAR"]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({', '.join(cols)})")
    return name


def stage_table(
    con: duckdb.DuckDBPyConnection,
    contract: TableContract,
    files: list[LandingFile],
    single_row_rules: tuple[str, str] = ("NULL", "NULL"),
) -> StagedTable:
    """Load every file of one table into its staging table; raise on unusable files.

    `single_row_rules` are SQL expressions over the staged columns giving `_rule` and
    `_rule_detail`: the rules that need only the row itself are evaluated in the same pass as
    the read (one scan of the data instead of two).
    """
    stage = _create_stage(con, contract)
    text_columns: set[str] = set()
    file_selects: list[tuple[LandingFile, str]] = []
    for index, file in enumerate(files):
        file_cols, relation = _file_columns(con, file, contract.name)
        available = set(file_cols) | set(file.hive_values)
        missing = [c.name for c in contract.required_columns if c.name not in available]
        if missing:
            raise _missing_column_error(contract.name, file, missing, list(file_cols))
        select = []
        for c in contract.columns:
            ident = _q(c.name)
            if c.name in file_cols:
                source_is_text = file.format == "csv" or file_cols[c.name] == "VARCHAR"
                if source_is_text and c.type == "VARCHAR":
                    typed, raw = ident, "NULL"  # the typed value is the original
                elif file.format == "csv" or (source_is_text and c.is_timestamp):
                    # Text timestamps are accepted from Parquet too (ISO strings are common);
                    # text numbers/booleans in Parquet are a wrong type (below).
                    typed, raw = _text_parse_expr(c, ident), ident
                    text_columns.add(c.name)
                else:
                    typed = _typed_source_expr(c, file_cols[c.name], ident)
                    raw = "NULL"
                    if typed is None:
                        non_null = con.execute(
                            f"SELECT count({ident}) FROM {relation}").fetchone()[0]
                        if non_null:
                            raise LandingZoneError(
                                contract.name, f"column has type {file_cols[c.name]}",
                                file=file.relative, column=c.name,
                                expectation=f"a type castable to {c.type}",
                                next_step=f"write {c.name} as {c.type} in the Parquet file")
                        typed = "NULL"  # an all-null column of any type is just nulls
            elif c.name in file.hive_values:
                literal = _sql_literal(file.hive_values[c.name])
                if c.type == "VARCHAR":
                    typed, raw = literal, "NULL"
                else:
                    typed, raw = _text_parse_expr(c, literal), literal
                    text_columns.add(c.name)
            else:
                typed, raw = "NULL", "NULL"
            select.append(f"CAST({typed} AS {stage_type(c)}) AS {ident}")
            select.append(f"CAST({raw} AS VARCHAR) AS {_q(raw_name(c.name))}")
        row_number = "file_row_number" if file.format == "parquet" else "row_number() OVER () - 1"
        select += [
            f"{_sql_literal(file.relative)} AS _source_file",
            f"({index}::BIGINT << {ROW_ID_FILE_SHIFT}) + {row_number} AS _row_id",
        ]
        file_selects.append((file, f"SELECT {', '.join(select)} FROM {relation}"))
    rule_sql, detail_sql = single_row_rules
    # One INSERT per batch of files: DuckDB has a fixed cost of ~15-40 ms per INSERT, which
    # dominated small landing zones with one file per month and table.
    for start in range(0, len(file_selects), FILES_PER_INSERT):
        batch = file_selects[start:start + FILES_PER_INSERT]
        union = " UNION ALL ".join(f"({sql})" for _, sql in batch)
        try:
            con.execute(_insert_sql(stage, union, rule_sql, detail_sql))
        except (duckdb.Error, OSError):
            # The batch failed as a whole (nothing was inserted): retry file by file so the
            # error names the file that caused it.
            for file, sql in batch:
                try:
                    con.execute(_insert_sql(stage, sql, rule_sql, detail_sql))
                except (duckdb.Error, OSError) as exc:
                    message = _engine_message(exc)
                    hint = ("the file is not valid UTF-8 (e.g. latin-1); re-export it as UTF-8"
                            if "unicode" in str(exc).lower() else
                            "check the file is complete and every row has the header's number of fields")
                    raise LandingZoneError(contract.name, f"cannot read the file: {message}",
                                           file=file.relative, next_step=hint) from None
            raise LandingZoneError(contract.name, "cannot read the files together",
                                   file=", ".join(f.relative for f, _ in batch),
                                   next_step="check the files are consistent") from None
    rows_read = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    staged = StagedTable(contract=contract, stage_name=stage, files=files, rows_read=rows_read,
                         text_columns=text_columns)
    _check_text_columns(con, staged)
    return staged


def _check_text_columns(con: duckdb.DuckDBPyConnection, staged: StagedTable) -> None:
    """Table-level checks only visible after parsing text: wrong type, mixed offsets."""
    contract = staged.contract
    for name in sorted(staged.text_columns, key=contract.column_names.index):
        column = contract.column(name)
        ident, raw = _q(name), _q(raw_name(name))
        failed = con.execute(
            f"""SELECT _source_file, count(*) AS n, any_value({raw}) AS example
                FROM {staged.stage_name}
                WHERE {raw} IS NOT NULL AND trim({raw}) <> ''
                GROUP BY _source_file
                HAVING n >= {WRONG_TYPE_MIN_VALUES} AND count({ident}) = 0
                ORDER BY _source_file LIMIT 1"""
        ).fetchone()
        if failed:
            raise LandingZoneError(
                contract.name, f"none of its {failed[1]} values parse as {column.type} (e.g. {failed[2]!r})",
                file=failed[0], column=name, expectation=f"{column.type} values"
                + (" in ISO 8601 (YYYY-MM-DD[ HH:MM:SS][Z|+HH:MM])" if column.is_timestamp else ""),
                next_step=f"fix the export of {name}")
        if not column.is_timestamp:
            continue
        offsets = con.execute(
            f"""SELECT _source_file, list(DISTINCT _lz_tz_minutes({raw}) ORDER BY _lz_tz_minutes({raw}))
                FROM {staged.stage_name}
                WHERE {raw} IS NOT NULL AND {ident} IS NOT NULL
                GROUP BY _source_file ORDER BY _source_file"""
        ).fetchall()
        mixed_in_file = [(f, o) for f, o in offsets if len(o) > 1]
        all_offsets = sorted({m for _, o in offsets for m in o})
        if mixed_in_file or len(all_offsets) > 1:
            file = mixed_in_file[0][0] if mixed_in_file else ", ".join(f for f, _ in offsets)
            found = mixed_in_file[0][1] if mixed_in_file else all_offsets
            shown = ", ".join(_format_offset(m) for m in found)
            raise LandingZoneError(
                contract.name, f"mixed timezone offsets ({shown})", file=file, column=name,
                expectation="UTC timestamps (one offset throughout: none, Z or +00:00)",
                next_step=f"convert {name} to UTC before delivery")


def _format_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
