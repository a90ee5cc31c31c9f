"""The SQL engine the feature definitions run on.

The feature SQL in ``features.window_aggregates`` and ``features.supplier_features`` is
written once, in DuckDB's dialect. It needs only four things from an engine: whether a
source table exists, a named intermediate relation made from a SELECT, a small Arrow
table registered under a name, and a final SELECT returned as Arrow. ``DuckDBFeatureEngine``
is the embedded default; ``features.spark_engine.SparkFeatureEngine`` runs the very same
statements on Spark (transpiled by SQLGlot), for data that outgrows one machine. An
engine in this process also streams results (``fetch_batches``), which the in-process
path of ``features.event_intervals`` reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
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
        reader = self.cursor.execute(select_sql).to_arrow_reader(rows_per_batch)
        yield from read_ahead(reader)


_END = object()


def read_ahead(batches: Iterable[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """``batches``, produced on a thread of their own up to ``depth`` ahead: DuckDB
    computes the next batch (without the GIL) while the caller works on this one, so a
    stream's wall time is close to the larger of the two, not their sum. An error in the
    producer is raised here; a caller that stops early stops the producer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stopped.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopped.is_set():
                    return
            ready.put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            ready.put(error)

    producer = threading.Thread(target=produce, name="feature-stream", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        while producer.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        producer.join()
