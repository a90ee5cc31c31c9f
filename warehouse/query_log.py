"""Counting what a piece of code asks DuckDB: statements, and the tables each one scans.

A diagnostic for the benchmarks (`bench/bench_checks.py`) and for the tests that keep a stage's
reads in proportion to its work: run the stage inside `counting_connections()` and every DuckDB
connection it opens (through `duckdb.connect`) records each statement it executes, with the
data sources its plan scans (from `EXPLAIN (FORMAT JSON)`, planned before the statement runs):
a table scanned twice, or one statement repeated once per month, shows in the log.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

# Statements whose plan reads data; others (SET, PRAGMA, CHECKPOINT, DDL) are only counted.
_EXPLAINABLE = re.compile(r"^\s*(SELECT|WITH|INSERT|DELETE|UPDATE|COPY|FROM|CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+)?TABLE)\b",
                          re.IGNORECASE)
# Plan operators that read rows from somewhere (a stored table, Parquet files, an in-memory frame).
_SOURCE_FUNCTIONS = {"READ_PARQUET", "PARQUET_SCAN", "ARROW_SCAN", "ARROW_SCAN_DUMB", "PANDAS_SCAN"}


@dataclass(frozen=True)
class Scan:
    source: str  # "<db>.<schema>.<table>", or the scanning function (READ_PARQUET, ARROW_SCAN)
    filtered: bool  # the plan pushed a filter into the scan (e.g. only some months)


@dataclass
class Statement:
    sql: str
    scans: tuple[Scan, ...]

    @property
    def shape(self) -> str:
        """The statement with its whitespace folded: equal shapes are the same statement rerun."""
        return " ".join(self.sql.split())


@dataclass
class QueryLog:
    statements: list[Statement] = field(default_factory=list)

    @property
    def queries(self) -> int:
        return len(self.statements)

    def scans(self, source: str | None = None, *, unfiltered_only: bool = False) -> int:
        """How many times the statements scanned `source` (any source when None); with
        `unfiltered_only`, only whole-table scans (no filter pushed into the scan)."""
        return sum(1 for s in self.statements for scan in s.scans
                   if (source is None or source in scan.source) and not (unfiltered_only and scan.filtered))

    def most_repeated(self) -> tuple[int, str]:
        """The statement that reads or writes data run most often, and how often: a loop over
        months shows here. Settings (each connection sets its memory limit) are left out."""
        shapes = Counter(s.shape for s in self.statements if _EXPLAINABLE.match(s.sql))
        if not shapes:
            return 0, ""
        shape, n = shapes.most_common(1)[0]
        return n, shape

    def scans_by_source(self) -> dict[str, int]:
        return dict(Counter(scan.source for s in self.statements for scan in s.scans))


def _scans(plan: Any) -> Iterator[Scan]:
    nodes = plan if isinstance(plan, list) else [plan]
    for node in nodes:
        info = node.get("extra_info") or {}
        name = node.get("name", "")
        function = str(info.get("Function", "")).upper()
        if "Table" in info and name.endswith("SCAN"):
            yield Scan(str(info["Table"]), bool(info.get("Filters")))
        elif function in _SOURCE_FUNCTIONS or name in _SOURCE_FUNCTIONS:
            yield Scan(function or name, bool(info.get("Filters") or info.get("File Filters")))
        yield from _scans(node.get("children", []))


class CountingConnection:
    """A DuckDB connection that records its statements in a `QueryLog`; everything else is the
    connection's own."""

    def __init__(self, con: duckdb.DuckDBPyConnection, log: QueryLog) -> None:
        self._con = con
        self._log = log

    def _record(self, query: str, parameters: Any) -> None:
        scans: tuple[Scan, ...] = ()
        if isinstance(query, str) and _EXPLAINABLE.match(query):
            # A statement that cannot be planned raises here the error it would raise when run.
            rows = self._con.execute(f"EXPLAIN (FORMAT JSON) {query}", parameters).fetchall()
            scans = tuple(scan for _, plan in rows for scan in _scans(json.loads(plan)))
        self._log.statements.append(Statement(str(query), scans))

    def execute(self, query, parameters=None):
        self._record(query, parameters)
        return self._con.execute(query, parameters)

    def sql(self, query, *args, **kwargs):
        self._record(query, kwargs.get("params"))
        return self._con.sql(query, *args, **kwargs)

    def __enter__(self) -> "CountingConnection":
        return self

    def __exit__(self, *exc) -> None:
        self._con.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@contextmanager
def counting_connections() -> Iterator[QueryLog]:
    """Every `duckdb.connect` inside the block returns a `CountingConnection` on one shared log."""
    log = QueryLog()
    connect = duckdb.connect

    def counted(*args, **kwargs):
        return CountingConnection(connect(*args, **kwargs), log)

    duckdb.connect = counted
    try:
        yield log
    finally:
        duckdb.connect = connect
