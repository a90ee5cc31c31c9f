"""The realised outcomes of a run, computed once and kept in the warehouse.

The training set, the monitoring and the backtest all need the six-month outcomes that
followed each month end (``models.labels.compute_breach_labels``). Computing them is one of
the heavier reads of the validated orders and disputes, so a run computes them once, for
every month end it can label, into ``models.realised_outcomes`` (one row per month end and
supplier, the columns of ``LABEL_SCHEMA``), and records in ``models.realised_outcome_months``
which month ends that table holds, with the data horizon, the outcome definition and the
validated schema they were computed from. ``realised_outcomes`` answers like
``compute_breach_labels`` would: it reads the month ends the table holds for the same
horizon, definition and schema, and computes any other month end directly. So a caller
gets the same rows whether or not the table was written (a notebook without Dagster, a
stale or missing table), and a run's own calls read nothing from the validated tables.

Point in time: these are outcomes *after* each month end T. They are labels, never
features: only the training set (complete windows), the monitoring of outcomes complete by
the horizon and the backtest read them, as they read ``compute_breach_labels`` before. A
month whose window is not complete at the horizon is stored with ``label_complete`` false,
exactly as ``compute_breach_labels`` returns it.

The table is replaced whole each time (``store_realised_outcomes``, one transaction), and
``forget_realised_outcomes`` drops it when the validated tables are ingested again: outcomes
computed from an earlier ingest are never read as this one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import duckdb
import pyarrow as pa

from data_contracts.outcomes import OutcomeDefinition, read_outcome_definition
from data_contracts.transaction import transaction
from features.sql_engine import duckdb_table_exists
from models.labels import LABEL_SCHEMA, compute_breach_labels

REALISED_OUTCOMES_TABLE = "models.realised_outcomes"
# Which month ends the table holds and what they were computed from (a month end can hold
# no supplier, so the rows alone cannot say which months were computed).
REALISED_OUTCOME_MONTHS_TABLE = "models.realised_outcome_months"
_MONTHS_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("data_horizon", pa.timestamp("us")),
        ("outcome_definition", pa.string()),
        ("source_schema", pa.string()),
    ]
)


def store_realised_outcomes(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    data_horizon: datetime,
    schema: str = "validated",
) -> pa.Table:
    """Compute the outcomes of ``as_of_dates`` once and replace the stored table with them
    (whole, in one transaction: a rerun leaves exactly this run's months). Returns the rows."""
    months = sorted({_as_date(d) for d in as_of_dates})
    outcomes = read_outcome_definition(con, schema)
    rows = compute_breach_labels(con, months, schema=schema, data_horizon=data_horizon, outcomes=outcomes)
    coverage = pa.table(
        {
            "as_of_date": pa.array(months, pa.date32()),
            "data_horizon": pa.array([data_horizon] * len(months), pa.timestamp("us")),
            "outcome_definition": pa.array([outcomes.canonical()] * len(months), pa.string()),
            "source_schema": pa.array([schema] * len(months), pa.string()),
        },
        schema=_MONTHS_SCHEMA,
    )
    con.execute("CREATE SCHEMA IF NOT EXISTS models")
    con.register("_realised_outcomes", rows)
    con.register("_realised_outcome_months", coverage)
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {REALISED_OUTCOMES_TABLE} AS SELECT * FROM _realised_outcomes")
            con.execute(f"CREATE OR REPLACE TABLE {REALISED_OUTCOME_MONTHS_TABLE} AS SELECT * FROM _realised_outcome_months")
    finally:
        con.unregister("_realised_outcomes")
        con.unregister("_realised_outcome_months")
    return rows


def forget_realised_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the stored outcomes (the validated tables they came from are being replaced)."""
    con.execute(f"DROP TABLE IF EXISTS {REALISED_OUTCOMES_TABLE}")
    con.execute(f"DROP TABLE IF EXISTS {REALISED_OUTCOME_MONTHS_TABLE}")


def realised_outcomes(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    data_horizon: date | datetime | None,
    schema: str = "validated",
    *,
    outcomes: OutcomeDefinition | None = None,
) -> pa.Table:
    """``compute_breach_labels(con, as_of_dates, schema, data_horizon, outcomes=outcomes)``,
    read from the stored table for the month ends it holds at this horizon, definition and
    schema; any other month end is computed here (see the module docstring)."""
    months = sorted({_as_date(d) for d in as_of_dates})
    if not months:
        return LABEL_SCHEMA.empty_table()
    if outcomes is None:
        outcomes = read_outcome_definition(con, schema)
    stored = _stored_months(con, months, data_horizon, outcomes, schema)
    missing = [month for month in months if month not in stored]
    parts = []
    if stored:
        parts.append(
            con.execute(
                f"""SELECT * FROM {REALISED_OUTCOMES_TABLE}
                    WHERE as_of_date IN (SELECT unnest(?::DATE[]))
                    ORDER BY as_of_date, supplier_id""",
                [sorted(stored)],
            ).fetch_arrow_table().cast(LABEL_SCHEMA)
        )
    if missing:
        parts.append(compute_breach_labels(con, missing, schema=schema, data_horizon=data_horizon, outcomes=outcomes))
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts).sort_by([("as_of_date", "ascending"), ("supplier_id", "ascending")])


def _stored_months(
    con: duckdb.DuckDBPyConnection,
    months: list[date],
    data_horizon: date | datetime | None,
    outcomes: OutcomeDefinition,
    schema: str,
) -> set[date]:
    """The month ends of ``months`` the stored table holds for exactly this horizon,
    outcome definition and validated schema."""
    if not isinstance(data_horizon, datetime) or not duckdb_table_exists(con, "models", "realised_outcome_months"):
        return set()
    rows = con.execute(
        f"""SELECT as_of_date FROM {REALISED_OUTCOME_MONTHS_TABLE}
            WHERE as_of_date IN (SELECT unnest(?::DATE[]))
              AND data_horizon = ?::TIMESTAMP AND outcome_definition = ? AND source_schema = ?""",
        [months, data_horizon, outcomes.canonical(), schema],
    ).fetchall()
    return {row[0] for row in rows}


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
