"""The one way the project opens a DuckDB transaction.

It lives in the lowest layer so that every package that writes (the ingest here, the models'
override audit, the warehouse and the assets, through `warehouse.transaction`) uses the same
one; `tests/test_transactions.py` finds any bare BEGIN left elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB transaction: committed when the block ends, rolled back if it raises, so a
    failed write never leaves the connection inside an open transaction or half a month."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
