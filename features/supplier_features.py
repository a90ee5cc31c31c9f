"""Point-in-time supplier features: one row per (as_of_date, supplier) joined by T.

The windowed counts are declared in ``features.declarations`` and computed by
``features.event_intervals`` (in process) or ``features.window_aggregates`` (SQL); this
module turns them into the catalogue's columns: rates (each with the counts behind it), empirically shrunk rates
and a few derived figures. Column meanings are documented in ``features.catalogue``
(and ``docs/feature_catalogue.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from features import window_aggregates as wa
from features.declarations import RATIOS, SHRINKAGE_PRIOR_STRENGTH, STATISTICS, Ratio, statistics_of
from features.event_intervals import IN_PROCESS_FAMILIES, in_process_rolled_table
from features.sql_engine import DuckDBFeatureEngine, FeatureEngine
from features.windows import as_of_calendar_table

Rate = Ratio  # a rate k / n over a window, declared in ``features.declarations``

# One entry per rate column; the SQL, the reference and the catalogue all use these
# numerator/denominator pairs, so a rate means the same everywhere.
RATES: tuple[Ratio, ...] = RATIOS
RATE_BY_NAME = {rate.name: rate for rate in RATES}


@dataclass(frozen=True)
class EventFamily:
    """One group of rolled tables built together: the family's declared statistics
    (``features.declarations``) and, for the few columns that are not interval sums,
    hand-written SQL (``build_bespoke``, making ``bespoke_tables`` from ``bespoke_streams``)."""

    optional_source: str | None = None  # validated table that may be absent
    build_bespoke: Callable[[FeatureEngine, str], None] | None = None
    bespoke_tables: tuple[str, ...] = ()
    bespoke_streams: tuple[str, ...] = ()

    def streams(self, name: str) -> set[str]:
        return {s.stream for s in statistics_of(name)} | set(self.bespoke_streams)


EVENT_FAMILIES: dict[str, EventFamily] = {
    "order_cohorts": EventFamily(),
    "promised_shipments": EventFamily(),
    "deliveries": EventFamily(),
    "dispute_resolutions": EventFamily(optional_source="disputes"),
    "buyers": EventFamily(build_bespoke=lambda engine, schema: wa.create_rolled_buyers(engine),
                          bespoke_tables=("rolled_buyers",), bespoke_streams=("orders",)),
    "inquiries": EventFamily(optional_source="inquiries",
                             build_bespoke=lambda engine, schema: wa.create_rolled_response_times_sql(engine),
                             bespoke_tables=("rolled_response_times",)),
    "reviews": EventFamily(optional_source="reviews"),
    "open_disputes": EventFamily(optional_source="disputes"),
    "overdue_orders": EventFamily(),
    "in_transit_orders": EventFamily(),
    "trading_months": EventFamily(build_bespoke=wa.create_trading_months, bespoke_tables=("trading_months",)),
}

# Columns read from the rolled tables: name -> (event family, SQL type, is a count).
# Counts and sums are 0 for a supplier without events; other statistics stay NULL. Every
# column of a family whose optional source table is absent is NULL, and so is every
# statistic whose stream's source is absent (``STATISTIC_SOURCES``).
BESPOKE_ROLLED_COLUMNS: dict[str, tuple[str, str, bool]] = {
    "buyers_6m": ("buyers", "BIGINT", True),
    "first_orders_6m": ("buyers", "BIGINT", True),
    "buyer_value_sq_6m": ("buyers", "DOUBLE", False),
    "median_response_hours_6m": ("inquiries", "DOUBLE", False),
    "p90_response_hours_6m": ("inquiries", "DOUBLE", False),
    "trading_months_6m": ("trading_months", "BIGINT", True),
    "trading_months_12m": ("trading_months", "BIGINT", True),
}
ROLLED_COLUMNS: dict[str, tuple[str, str, bool]] = {
    **{s.name: (s.family, s.sql_type, True) for s in STATISTICS},
    **BESPOKE_ROLLED_COLUMNS,
}
STATISTIC_SOURCES: dict[str, str] = {s.name: s.source for s in STATISTICS if s.source is not None}

# Volumes per month the supplier could trade in the window (``trading_months_*``): a
# capacity that means the same in an extract's first months as later on.
PER_TRADING_MONTH: dict[str, tuple[str, str]] = {
    "orders_per_month_6m": ("orders_6m", "trading_months_6m"),
    "order_value_per_month_6m_usd": ("order_value_6m_usd", "trading_months_6m"),
    "buyers_per_month_6m": ("buyers_6m", "trading_months_6m"),
    "reviews_per_month_6m": ("review_count_6m", "trading_months_6m"),
    "deals_per_month_12m": ("deal_count_12m", "trading_months_12m"),
    "deal_value_per_month_12m_usd": ("deal_value_12m_usd", "trading_months_12m"),
    "assured_deal_value_per_month_12m_usd": ("assured_deal_value_12m_usd", "trading_months_12m"),
}

ATTRIBUTE_COLUMNS = ("country", "membership_tier", "category", "tenure_months", "opted_in")


def _ratio(numerator: str, denominator: str) -> str:
    # NULLIF: a rate over nothing is unknown, not 0 (and DuckDB's x / 0.0 is inf).
    return f"CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0)"


def population_rate_column(rate: Rate) -> str:
    return f"population_{rate.name}"


def _shrunk_ratio(rate: Rate) -> str:
    a = SHRINKAGE_PRIOR_STRENGTH
    return (
        f"(CAST({rate.numerator} AS DOUBLE) + {a} * {population_rate_column(rate)}) "
        f"/ ({rate.denominator} + {a})"
    )


def population_rates_sql() -> str:
    """Per as-of date, each shrunk rate's population rate: its numerator summed over all
    suppliers in the output at T over its denominator summed likewise."""
    rates = ",\n".join(
        f"sum({r.numerator}) / NULLIF(sum({r.denominator}), 0) AS {population_rate_column(r)}"
        for r in RATES
        if r.shrunk
    )
    return f"SELECT as_of_date, {rates} FROM with_repeats GROUP BY as_of_date"


def derived_column_sql() -> dict[str, str]:
    """SQL for every column computed from counts (evaluated over ``counted``)."""
    derived: dict[str, str] = {}
    for rate in RATES:
        derived[rate.name] = _ratio(rate.numerator, rate.denominator)
        if rate.shrunk:
            derived[f"{rate.name}_shrunk"] = _shrunk_ratio(rate)
    derived["order_growth_mom"] = (
        "(CAST(orders_this_month AS DOUBLE) - orders_previous_month) / NULLIF(orders_previous_month, 0)"
    )
    derived["buyer_hhi_6m"] = "buyer_value_sq_6m / NULLIF(order_value_6m_usd * order_value_6m_usd, 0)"
    for name, (volume, months) in PER_TRADING_MONTH.items():
        derived[name] = _ratio(volume, months)
    return derived


@dataclass(frozen=True)
class RolledTables:
    """What ``build_rolled_tables`` made: the families built, the optional source tables
    present, and the tables holding their columns, keyed by (as_of_m, supplier_key)."""

    families: frozenset[str]
    tables: tuple[str, ...]
    sources: frozenset[str] = frozenset()


IN_PROCESS_TABLE = "rolled_in_process"


def build_rolled_tables(engine: FeatureEngine, schema: str, families: Iterable[str]) -> RolledTables:
    """Materialise the supplier calendar and the rolled tables of ``families`` whose
    source tables exist. An in-process engine computes the families that have an
    in-process definition (``features.event_intervals``) into one table,
    ``rolled_in_process``; the rest, and every family on other engines, run the SQL."""
    sources = frozenset(t for t in ("disputes", "inquiries", "reviews") if engine.has_table(schema, t))
    available = [
        name for name in families
        if EVENT_FAMILIES[name].optional_source is None or EVENT_FAMILIES[name].optional_source in sources
    ]
    in_process = [name for name in available if engine.in_process and name in IN_PROCESS_FAMILIES]
    in_sql = [name for name in available if name not in in_process]
    wa.create_supplier_calendar(engine, schema)
    # the in-process dispute streams read dispute_facts too
    facts = wa.facts_needed(stream for name in in_sql for stream in EVENT_FAMILIES[name].streams(name))
    facts |= wa.facts_needed(stream for name in in_process for stream in EVENT_FAMILIES[name].streams(name)) & {
        "dispute_facts"}
    if "dispute_facts" in facts:
        wa.create_dispute_facts(engine, schema)
    if "order_facts" in facts:
        wa.create_order_facts(engine, schema)
    if "inquiry_facts" in facts:
        wa.create_inquiry_facts(engine, schema)
    tables: list[str] = []
    for name in in_sql:
        tables.extend(wa.create_rolled_statistics(engine, schema, name))
        family = EVENT_FAMILIES[name]
        if family.build_bespoke is not None:
            family.build_bespoke(engine, schema)
            tables.extend(family.bespoke_tables)
    if in_process:
        engine.register_arrow(IN_PROCESS_TABLE, in_process_rolled_table(
            engine, schema, in_process, rolled_columns_of(in_process)))
        tables.append(IN_PROCESS_TABLE)
    return RolledTables(frozenset(available), tuple(tables), sources)


def rolled_columns_of(families: Iterable[str]) -> list[str]:
    wanted = set(families)
    return [name for name, (family, _, _) in ROLLED_COLUMNS.items() if family in wanted]


def feature_select_sql(rolled: RolledTables, output_columns: Sequence[str]) -> str:
    """SELECT over the supplier calendar and the built rolled tables giving
    ``output_columns`` (any attribute, rolled or derived column) for every calendar row."""
    built_families = rolled.families
    unknown_sources = {"disputes", "inquiries", "reviews"} - rolled.sources
    joins = "\n".join(f"LEFT JOIN {table} USING (as_of_m, supplier_key)" for table in rolled.tables)
    counted = []
    for name, (family, sql_type, is_count) in ROLLED_COLUMNS.items():
        if family not in built_families or STATISTIC_SOURCES.get(name) in unknown_sources:
            counted.append(f"CAST(NULL AS {sql_type}) AS {name}")
        elif is_count:
            counted.append(f"CAST(coalesce({name}, 0) AS {sql_type}) AS {name}")
        else:
            counted.append(f"CAST({name} AS {sql_type}) AS {name}")
    counted_select = ",\n".join(counted)
    derived_select = ",\n".join(f"{expr} AS {name}" for name, expr in derived_column_sql().items())
    selected = ", ".join(["output_position", "as_of_date", "supplier_id", *output_columns])
    return f"""
        WITH counted AS (
            SELECT as_of_date, supplier_id, output_position, {", ".join(ATTRIBUTE_COLUMNS)},
                   {counted_select}
            FROM supplier_calendar
            {joins}
        ),
        with_repeats AS (
            SELECT *, orders_6m - first_orders_6m AS repeat_orders_6m FROM counted
        ),
        population AS (
            {population_rates_sql()}
        ),
        derived AS (
            SELECT *, {derived_select}
            FROM with_repeats
            JOIN population USING (as_of_date)
        )
        SELECT {selected}
        FROM derived
    """


def run_feature_query(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    schema: str,
    families: Iterable[str],
    output_columns: Sequence[str],
) -> pa.Table:
    """Build what ``output_columns`` need on a private cursor (its temp tables die with
    it, so nothing leaks into the caller's connection) and return the result."""
    cur = con.cursor()
    try:
        return run_feature_query_on(DuckDBFeatureEngine(cur), as_of_dates, schema, families, output_columns)
    finally:
        cur.close()


def run_feature_query_on(
    engine: FeatureEngine,
    as_of_dates: Sequence[date],
    schema: str,
    families: Iterable[str],
    output_columns: Sequence[str],
) -> pa.Table:
    """The feature query on any ``FeatureEngine``: rows sorted by (as_of_date, supplier_id)."""
    engine.register_arrow("as_of_calendar", as_of_calendar_table(as_of_dates))
    rolled = build_rolled_tables(engine, schema, list(families))
    unordered = engine.fetch_arrow(feature_select_sql(rolled, output_columns))
    # Sorting the wide rows inside DuckDB costs more than the whole feature computation
    # at small scale; ordering by one precomputed integer in Arrow is cheaper. The result
    # stays in the engine's chunks (a copy into one would cost ~1 s at 964k x 79).
    return rows_in_order(unordered, "output_position").drop_columns(["output_position"])


def rows_in_order(table: pa.Table, position: str) -> pa.Table:
    """``table``'s rows sorted by the distinct integers of column ``position``. Engines
    return joined rows in a few long ascending runs (a parallel scan's morsels), so the
    runs are put in order as zero-copy slices; a gather of every row (``take``, about 20
    ms per column per million rows however ordered the rows are) only when the rows are
    scattered."""
    order = np.argsort(table[position].to_numpy(), kind="stable")
    if not len(order):
        return table
    run_starts = np.flatnonzero(np.r_[True, np.diff(order) != 1])
    if len(run_starts) > max(1, len(order) // 1000):
        return table.take(order)
    run_ends = np.r_[run_starts[1:], len(order)]
    return pa.concat_tables([table.slice(order[start], end - start) for start, end in zip(run_starts, run_ends)])


def output_feature_columns() -> list[str]:
    """Feature columns in output order (keys excluded), grouped by theme."""
    from features.specs import FEATURES  # the specs fix the order

    return [spec.name for spec in FEATURES]


def compute_supplier_features(
    con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date], schema: str = "validated"
) -> pa.Table:
    """Point-in-time features for every supplier joined by each as-of date.

    Reads ``{schema}.suppliers/orders/disputes`` and, when present,
    ``{schema}.inquiries/reviews`` (absent: their features are NULL). One row per
    (as_of_date, supplier_id), sorted by both; columns as in ``features.FEATURES``.
    """
    return run_feature_query(con, as_of_dates, schema, EVENT_FAMILIES, output_feature_columns())
