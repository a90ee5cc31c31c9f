"""Which months a landing zone covers, read cheaply before a run (to choose its partitions).

A run needs its months before it starts, while the full validation happens inside it;
this reads only `orders.created_at`. Timestamps after the wall clock cannot be real and
are left out here (validation quarantines them later).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

from data_contracts.errors import LandingZoneError
from data_contracts.landing_zone import _read_relation_sql, discover_table_files, install_macros


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def landing_zone_month_span(landing_dir: Path) -> tuple[date, date]:
    """First month end with orders, and the last month end fully covered by the orders.

    The last month is the newest month that ended by the end of the day of the newest order:
    a landing zone cut mid-month is scored up to the previous month end.
    """
    files, _ignored = discover_table_files(Path(landing_dir), "orders")
    if not files:
        raise LandingZoneError(
            "orders", "no Parquet or CSV files", file=str(Path(landing_dir) / "orders"),
            expectation="a folder of order files (DESIGN §3)", next_step="check the --landing path")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con = duckdb.connect()
    try:
        install_macros(con)
        selects = " UNION ALL ".join(
            f"SELECT _lz_parse_ts(created_at::VARCHAR) AS created_at FROM {_read_relation_sql(file)}" for file in files
        )
        first, last = con.execute(
            f"SELECT min(created_at), max(created_at) FROM ({selects}) WHERE created_at <= ?", [now]
        ).fetchone()
    except duckdb.Error as error:
        raise LandingZoneError(
            "orders", f"created_at cannot be read ({str(error).splitlines()[0]})", column="created_at",
            expectation="a UTC timestamp column", next_step="run `assurance validate --landing DIR` for details") from None
    finally:
        con.close()
    if first is None:
        raise LandingZoneError("orders", "no order has a readable created_at", column="created_at",
                               expectation="at least one order", next_step="check the orders files")
    last_day = (last + timedelta(days=1)).date()
    last_month_end = _month_end(last_day) if _month_end(last_day) == last_day else _month_end(last_day.replace(day=1) - timedelta(days=1))
    return _month_end(first.date()), max(last_month_end, _month_end(first.date()))
