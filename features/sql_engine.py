"""The SQL engine the feature definitions run on.

The feature SQL in ``features.window_aggregates`` and ``features.supplier_features`` is
written once, in DuckDB's dialect. It needs only four things from an engine: whether a
source table exists, a named intermediate relation made from a SELECT, a small Arrow
table registered under a name, and a final SELECT returned as Arrow. ``DuckDBFeatureEngine``
is the embedded default; ``features.spark_engine.SparkFeatureEngine`` runs the very same
statements on Spark (transpiled by SQLGlot), for data that outgrows one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import duckdb
import pyarrow as pa


class FeatureEngine(Protocol):
    """What the feature SQL needs from an engine (see the module docstring).

    ``in_process``: fetched rows are already in this process (an embedded engine), so a
    step may fetch its input and run a numpy kernel where that beats the engine's own
    aggregate (``features.window_quantiles``). A distributed engine says False and keeps
    every step in SQL, so nothing large is collected to its driver. Only an in-process
    engine needs ``fetch_batches``.
    """

    in_process: bool

    def has_table(self, schema: str, table: str) -> bool: ...

    def create_temp_table(self, name: str, select_sql: str) -> None: ...

    def register_arrow(self, name: str, table: pa.Table) -> None: ...

    def fetch_arrow(self, select_sql: str) -> pa.Table: ...

    def fetch_batches(self, select_sql: str, rows_per_batch: int) -> Iterator[pa.RecordBatch]: ...


def duckdb_table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


class DuckDBFeatureEngine:
    """Runs the feature SQL on a DuckDB cursor; its temp tables die with the cursor."""

    in_process = True

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor

    def has_table(self, schema: str, table: str) -> bool:
        return duckdb_table_exists(self.cursor, schema, table)

    def create_temp_table(self, name: str, select_sql: str) -> None:
        self.cursor.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self.cursor.register(name, table)

    def fetch_arrow(self, select_sql: str) -> pa.Table:
        return self.cursor.execute(select_sql).to_arrow_table()

    def fetch_batches(self, select_sql: str, rows_per_batch: int) -> Iterator[pa.RecordBatch]:
        """The result streamed in batches: memory stays one batch, however large the
        result. The cursor runs nothing else until the stream is consumed (the temp
        tables the query reads live on this cursor, so it cannot use another)."""
        yield from self.cursor.execute(select_sql).to_arrow_reader(rows_per_batch)
