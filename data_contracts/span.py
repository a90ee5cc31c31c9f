"""Which months a landing zone covers, read cheaply before a run (to choose and check its months).

A run needs its months before it starts, while the full validation happens inside it; this
reads only `orders.created_at`, and picks the months the way the ingest will judge the rows:

* timestamps before the orders contract's `plausible_from` (default
  `EARLIEST_PLAUSIBLE_TIMESTAMP`, 2000-01-01; an order dated 1900) are left out, as the
  contracts quarantine them as implausible;
* the end is the data horizon the ingest will use: the manifest's `snapshot_at`, else the
  last order day before an implausible gap in order activity (`_horizon_from_orders`, the
  ingest's own rule), so an order typed as 2099 does not stretch the months either.

Typed Parquet columns (TIMESTAMP, TIMESTAMPTZ, DATE) are read as they are, in one scan of
the one column; only text (CSV, or a text Parquet column) goes through the lenient parser.
Parquet min/max statistics alone cannot tell where a gap in activity sits inside a row
group, so the horizon rule needs the scan; it reads one column and costs little.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from data_contracts.contracts import EARLIEST_PLAUSIBLE_TIMESTAMP, load_landing_contracts  # noqa: F401 (re-exported)
from data_contracts.errors import LandingZoneError
from data_contracts.ingest import _horizon_from_orders
from data_contracts.landing_zone import (
    _TIMESTAMP_TYPES,
    _TIMESTAMPTZ_TYPES,
    _file_columns,
    discover_table_files,
    install_macros,
)
from data_contracts.manifest import MANIFEST_NAME, read_snapshot_at

def plausible_floor() -> datetime:
    """Order timestamps before this (naive UTC) are implausible and never pick a run's months:
    the orders contract's ``plausible_from``, so the span leaves out exactly the rows the
    ingest quarantines (rule ``before_plausible_era``)."""
    return load_landing_contracts()["orders"].plausible_from or datetime.min

_SPAN_TABLE = "_span_orders"


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _created_at_sql(source_type: str | None) -> str:
    """`created_at` of one file as a naive UTC TIMESTAMP (NULL where text does not parse)."""
    if source_type in _TIMESTAMP_TYPES:
        return "CAST(created_at AS TIMESTAMP)"
    if source_type in _TIMESTAMPTZ_TYPES:
        return "make_timestamp(epoch_us(created_at))"
    return "_lz_parse_ts(CAST(created_at AS VARCHAR))"


def _load_order_times(con: duckdb.DuckDBPyConnection, landing_dir: Path, files: list) -> None:
    if not files:
        raise LandingZoneError(
            "orders", "no Parquet or CSV files", file=str(landing_dir / "orders"),
            expectation="a folder of order files (docs/design.md §3)", next_step="check the --landing path")
    floor = plausible_floor().isoformat(sep=" ")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SPAN_TABLE} (created_at TIMESTAMP, _rule VARCHAR)")
    by_expression: dict[str, list[str]] = {}
    for file in files:
        types, relation = _file_columns(con, file, "orders")
        if "created_at" not in types:
            raise LandingZoneError("orders", "required column(s) created_at missing", file=file.relative,
                                   column="created_at", expectation="a created_at column",
                                   next_step="run `assurance validate --landing DIR` for details")
        if file.format == "parquet" and types["created_at"] in _TIMESTAMP_TYPES | _TIMESTAMPTZ_TYPES:
            # typed files of the same type go through one read_parquet: one scan of one column
            by_expression.setdefault(_created_at_sql(types["created_at"]), []).append(str(file.path))
        else:
            con.execute(f"INSERT INTO {_SPAN_TABLE} SELECT ts, NULL FROM (SELECT {_created_at_sql(None)} AS ts "
                        f"FROM {relation}) WHERE ts >= TIMESTAMP '{floor}'")
    for expression, paths in by_expression.items():
        con.execute(f"INSERT INTO {_SPAN_TABLE} SELECT ts, NULL FROM (SELECT {expression} AS ts "
                    f"FROM read_parquet(?)) WHERE ts >= TIMESTAMP '{floor}'", [paths])


def landing_zone_month_span(landing_dir: Path) -> tuple[date, date]:
    """First month end with plausible orders, and the last month end complete by the data horizon.

    A landing zone cut mid-month is scored up to the previous month end. Raises
    `LandingZoneError` when the orders cannot be read or none has a plausible `created_at`.
    """
    landing_dir = Path(landing_dir)
    files, _ignored = discover_table_files(landing_dir, "orders")
    # One run asks several times (the CLI, then each feature asset): the span is read once per
    # state of the orders files and the manifest, identified by their sizes and modification times.
    state = (landing_dir.resolve(), *(_file_state(path) for path in (landing_dir / MANIFEST_NAME, *(f.path for f in files))))
    if state not in _spans:
        _spans.clear()  # one landing zone at a time is the common case: keep the cache small
        _spans[state] = _read_month_span(landing_dir, files)
    return _spans[state]


_spans: dict[tuple, tuple[date, date]] = {}


def _file_state(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return str(path), stat.st_mtime_ns, stat.st_size


def _read_month_span(landing_dir: Path, files: list) -> tuple[date, date]:
    snapshot_at = read_snapshot_at(landing_dir)
    con = duckdb.connect()
    try:
        install_macros(con)
        _load_order_times(con, landing_dir, files)
        horizon = snapshot_at or _horizon_from_orders(con, _SPAN_TABLE)
        first = None
        if horizon is not None:
            (first,) = con.execute(f"SELECT min(created_at) FROM {_SPAN_TABLE} WHERE created_at <= ?", [horizon]).fetchone()
    except duckdb.Error as error:
        raise LandingZoneError(
            "orders", f"created_at cannot be read ({str(error).splitlines()[0]})", column="created_at",
            expectation="a UTC timestamp column", next_step="run `assurance validate --landing DIR` for details") from None
    finally:
        con.close()
    if first is None:
        raise LandingZoneError(
            "orders", f"no order has a readable created_at on or after {plausible_floor():%Y-%m-%d}"
            + (f" and by the manifest's snapshot_at {snapshot_at:%Y-%m-%d %H:%M}" if snapshot_at else ""),
            column="created_at", expectation="at least one order with a plausible timestamp",
            next_step="check the orders files")
    horizon_day = horizon.date()
    # The newest month that ended by the end of the horizon's day.
    last_month_end = horizon_day if _month_end(horizon_day) == horizon_day else horizon_day.replace(day=1) - timedelta(days=1)
    return _month_end(first.date()), max(last_month_end, _month_end(first.date()))
