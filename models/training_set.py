"""The training set: features at each month end joined with the labels that followed it.

Only month ends whose whole six-month outcome window lies before the data horizon get a
label that can be trained on (docs/design.md §4); the rest are scored, never trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import duckdb
import pyarrow as pa

from data_contracts.outcomes import OUTCOME_DEFINITION_COLUMN, OutcomeDefinition, read_outcome_definition
from features import compute_supplier_features, month_ends
from features.windows import month_end
from models.labels import is_label_complete
from models.realised_outcomes import realised_outcomes

LABEL_COLUMNS = (
    "breach_6m", "breach_count_6m", "breach_refund_usd_6m", "pre_shipment_breach_6m", "post_delivery_breach_6m",
    # loss rate (refunds per dollar of order value in the window) and default (models.labels)
    "forward_order_value_6m_usd", "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m",
    "realised_loss_rate_6m", "realised_loss_rate_pre_shipment_6m", "realised_loss_rate_post_delivery_6m",
    "orders_due_6m", "failed_orders_due_6m", "default_6m",
)


class NotEnoughHistoryError(RuntimeError):
    """The landing zone is too short to have any month with a complete outcome window."""


def first_activity_month_end(con: duckdb.DuckDBPyConnection, schema: str = "validated") -> date:
    first = con.execute(f"SELECT min(created_at) FROM {schema}.orders").fetchone()[0]
    if first is None:
        raise NotEnoughHistoryError("there are no accepted orders to learn from")
    return month_end(first.year, first.month)


def outcome_month_ends(con: duckdb.DuckDBPyConnection, data_horizon: datetime, schema: str = "validated") -> list[date]:
    """Month ends from the first month with orders to the data horizon: every month end a run
    labels (``models.realised_outcomes``), complete windows or not."""
    return month_ends(first_activity_month_end(con, schema), data_horizon.date())


def trainable_month_ends(con: duckdb.DuckDBPyConnection, data_horizon: datetime, schema: str = "validated") -> list[date]:
    """Month ends from the first month with orders whose outcome window is fully observed."""
    months = [month for month in outcome_month_ends(con, data_horizon, schema) if is_label_complete(month, data_horizon)]
    if not months:
        raise NotEnoughHistoryError(
            f"no month has a complete six-month outcome window before the data horizon {data_horizon:%Y-%m-%d}: "
            "a model needs at least 7 months of history (more for an out-of-time evaluation)"
        )
    return months


def build_training_set(
    con: duckdb.DuckDBPyConnection,
    data_horizon: datetime,
    schema: str = "validated",
    *,
    outcomes: OutcomeDefinition | None = None,
) -> pa.Table:
    """Features joined with labels for every trainable month end, sorted by (as_of_date, supplier_id).

    The labels follow ``outcomes`` (by default the definition the landing zone declared), and
    each row names it in ``outcome_definition``: so the training-data fingerprint, and every
    model trained on the rows, changes with the definition even where the labels happen not to.
    """
    with _training_rows(con, data_horizon, schema, outcomes) as (query, parameters):
        return con.execute(query, parameters).fetch_arrow_table()


def store_training_set(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data_horizon: datetime,
    schema: str = "validated",
    *,
    outcomes: OutcomeDefinition | None = None,
) -> int:
    """``build_training_set``'s rows written to ``table`` (replaced) inside DuckDB, never fetched
    into the process: the joined rows would be a second copy of every trainable month's
    features beside the features themselves. The number of rows."""
    with _training_rows(con, data_horizon, schema, outcomes) as (query, parameters):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}", parameters)
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@contextmanager
def _training_rows(con: duckdb.DuckDBPyConnection, data_horizon: datetime, schema: str,
                   outcomes: OutcomeDefinition | None) -> Iterator[tuple[str, list]]:
    """The training set's query and its parameters, over the features and labels registered
    for the time of the block."""
    if outcomes is None:
        outcomes = read_outcome_definition(con, schema)
    months = trainable_month_ends(con, data_horizon, schema)
    features = compute_supplier_features(con, months, schema=schema)
    # the run's stored outcomes when they match (models/realised_outcomes.py), else computed here
    labels = realised_outcomes(con, months, data_horizon, schema, outcomes=outcomes)
    con.register("_training_features", features)
    con.register("_training_labels", labels)
    try:
        label_list = ", ".join(f"l.{column}" for column in LABEL_COLUMNS)
        yield (
            f"""
            SELECT f.*, {label_list}, ?::VARCHAR AS {OUTCOME_DEFINITION_COLUMN}
            FROM _training_features f
            JOIN _training_labels l USING (as_of_date, supplier_id)
            WHERE l.label_complete
            ORDER BY as_of_date, supplier_id
            """,
            [outcomes.canonical()],
        )
    finally:
        con.unregister("_training_features")
        con.unregister("_training_labels")


# Fewer events than this leave too little signal to learn from or to calibrate on.
MIN_BREACHES_TO_TRAIN = 20
MIN_MONTHS_TO_TRAIN = 3
DEFAULT_LABEL_COLUMN = "default_6m"
# Defaults are rarer than breaches (about 1% of supplier-months against 15% on the
# synthetic worlds) and the default model is a calibrated, sign-constrained blend that
# degrades gracefully on few events; below this many there is nothing to calibrate on.
MIN_DEFAULTS_TO_TRAIN = 10


def untrainable_reason(
    training, label_column: str = "breach_6m", event: str = "breach", min_events: int = MIN_BREACHES_TO_TRAIN
) -> str | None:
    """Why this training set cannot give an honest model of ``label_column``, or None when it can.

    Real data may lack what labels need (Olist has no disputes, so every label is negative):
    a model fitted on one class would publish invented risk, so the pipeline says so instead.
    """
    complete = training[training["label_complete"]] if "label_complete" in training else training
    if label_column in complete:
        complete = complete[complete[label_column].notna()]
    if complete.empty:
        return (
            f"no supplier-month has a known six-month {event} outcome (does the landing zone record disputes? "
            'a source without claims can declare "outcomes": {"definition": "performance"} in _landing_zone.json)'
        )
    months = complete["as_of_date"].nunique()
    events = int(complete[label_column].astype(bool).sum())
    if months < MIN_MONTHS_TO_TRAIN:
        return f"only {months} month(s) with a complete six-month outcome window (need {MIN_MONTHS_TO_TRAIN})"
    if events < min_events:
        return (
            f"only {events} {event}(es) in {len(complete):,} supplier-months with complete labels "
            f"(need {min_events}); the landing zone may have no disputes"
            if event == "breach" else
            f"only {events} {event}(s) in {len(complete):,} supplier-months with complete labels "
            f"(need {min_events})"
        )
    if events == len(complete):
        return f"every supplier-month is a {event}: labels carry no signal"
    return None


def untrainable_default_reason(training) -> str | None:
    """``untrainable_reason`` for the default label."""
    return untrainable_reason(training, DEFAULT_LABEL_COLUMN, "default", MIN_DEFAULTS_TO_TRAIN)
