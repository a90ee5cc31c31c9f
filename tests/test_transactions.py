"""Every DuckDB transaction goes through one context manager, which commits or rolls back whole."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from data_contracts.transaction import transaction

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "assets", "importers", "synthetic", "warehouse", "features", "models", "data_contracts")
TRANSACTION_MODULE = ROOT / "data_contracts" / "transaction.py"
BARE_TRANSACTION = re.compile(r"""["'](BEGIN|COMMIT|ROLLBACK)\b""", re.IGNORECASE)


def test_no_transaction_is_opened_outside_the_context_manager():
    bare = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != TRANSACTION_MODULE
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BARE_TRANSACTION.search(line)
    ]
    assert not bare, "use data_contracts.transaction.transaction (warehouse.transaction):\n" + "\n".join(bare)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE TABLE months (month DATE, value INTEGER)")
    con.execute("INSERT INTO months VALUES ('2025-05-31', 1)")
    return con


def test_a_block_that_ends_is_committed(con):
    with transaction(con):
        con.execute("DELETE FROM months")
        con.execute("INSERT INTO months VALUES ('2025-06-30', 2)")
    assert con.execute("SELECT * FROM months").fetchall() == [(date(2025, 6, 30), 2)]


def test_a_block_that_raises_leaves_nothing_half_written_and_no_transaction_open(con):
    with pytest.raises(ValueError, match="month failed"):
        with transaction(con):
            con.execute("DELETE FROM months")
            raise ValueError("month failed")
    assert con.execute("SELECT count(*) FROM months").fetchone() == (1,)
    with transaction(con):  # a new transaction opens: the failed one was rolled back, not left open
        con.execute("INSERT INTO months VALUES ('2025-06-30', 2)")
    assert con.execute("SELECT count(*) FROM months").fetchone() == (2,)
