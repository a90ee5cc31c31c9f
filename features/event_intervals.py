"""The event families' windowed counts and sums, computed in process.

Every windowed count and sum is declared once (``features.declarations``);
``features.window_aggregates`` compiles the declarations to SQL (events bucketed by
(supplier, month), each bucket rolled onto the month ends whose window holds it). An
engine that runs in this process (DuckDB) computes the same columns here instead: DuckDB
streams each event table once, keyed and reduced to month indices, and every declared
statistic becomes its activity interval ``[start_m, end_m)`` added to a
``features.window_totals.WindowTotals`` (``statistics_adder``; the test suite checks that
both give the same features). A distributed engine keeps the SQL. The buyers and the
response-time quantiles, which are not interval sums, have hand-written twins below.

A stream's rows arrive as numpy columns: month indices with NULL as ``NEVER``, flags
with NULL as false, money as exact integer micro-dollars with NULL as 0 (the SQL sums
skip NULLs, and a count column is 0 where nothing was summed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from features import window_aggregates as wa
from features.declarations import STATISTIC_BY_NAME, WindowedStatistic, is_money, statistics_of
from features.sql_engine import FeatureEngine
from features.window_totals import NEVER, Interval, WindowTotals
from features.windows import keyed_facts_sql

Columns = dict[str, np.ndarray]
# Rows per streamed batch: bounds the memory of one batch's numpy columns.
STREAM_BATCH_ROWS = 1_000_000


def columns_of(batch: pa.RecordBatch | pa.Table) -> Columns:
    """numpy columns of a streamed batch, NULLs replaced as the module docstring says."""
    out: Columns = {}
    for name, column in zip(batch.schema.names, batch.columns):
        if pa.types.is_boolean(column.type):
            out[name] = pc.fill_null(column, False).to_numpy(zero_copy_only=False)
        elif name.endswith("_m"):
            # month indices stay int32 (NEVER and a window past it fit): no widening copy
            out[name] = pc.fill_null(column, NEVER).to_numpy(zero_copy_only=False)
        elif pa.types.is_integer(column.type):
            out[name] = pc.fill_null(column, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif pa.types.is_floating(column.type):
            out[name] = pc.fill_null(column, 0.0).to_numpy(zero_copy_only=False)
        else:
            out[name] = column  # strings stay Arrow
    return out


def stream(engine: FeatureEngine, select_sql: str) -> Iterator[Columns]:
    for batch in engine.fetch_batches(select_sql, STREAM_BATCH_ROWS):
        if batch.num_rows:
            yield columns_of(batch)


# --- the streams ---------------------------------------------------------------------------

ORDER_COLUMNS_SQL = wa.order_fact_columns_sql() + f", {wa.micro_usd_sql('amount_usd')} AS amount_micro_usd"


def order_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    """Every order with a known supplier, as ``order_facts`` has it (any order)."""
    return stream(engine, keyed_facts_sql(ORDER_COLUMNS_SQL, f"{schema}.orders", ordered=False))


def order_rows_by_buyer(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    """The same orders in (supplier, buyer, created month) order, in batches of whole
    (supplier, buyer) pairs, with ``new_pair`` marking each pair's first row. When the
    buyers are built the other order families read this stream too: one sorted scan
    costs less than an unsorted one plus a sorted one (at 20M orders 13.9 CPU s against
    8.3 + 9)."""
    sql = keyed_facts_sql(ORDER_COLUMNS_SQL, f"{schema}.orders", then_by="buyer_id, created_m")
    carried: pa.Table | None = None
    for batch in engine.fetch_batches(sql, STREAM_BATCH_ROWS):
        rows = pa.Table.from_batches([batch])
        if carried is not None:
            rows = pa.concat_tables([carried, rows])
        if rows.num_rows == 0:
            continue
        new_pair = _pair_starts(rows)
        last_start = int(np.flatnonzero(new_pair)[-1])
        # the last pair may go on in the next batch: hold it back
        carried = rows.slice(last_start)
        if last_start:
            yield _with_pair_starts(rows.slice(0, last_start), new_pair[:last_start])
    if carried is not None and carried.num_rows:
        yield _with_pair_starts(carried, _pair_starts(carried))


def _with_pair_starts(rows: pa.Table, new_pair: np.ndarray) -> Columns:
    columns = columns_of(rows.drop_columns(["buyer_id"]))
    columns["new_pair"] = new_pair
    return columns


# A stream whose rows another stream also gives (in a useful order): when both are
# wanted, the families of the first read the second, so the table is scanned once.
READ_FROM_INSTEAD = {order_rows: order_rows_by_buyer}


def disputed_order_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    """One row per disputed order (``window_aggregates.disputed_orders_sql``)."""
    return stream(engine, f"""
        SELECT keys.supplier_key, disputed.* EXCLUDE (supplier_id)
        FROM ({wa.disputed_orders_sql()}) AS disputed
        JOIN supplier_keys AS keys USING (supplier_id)
    """)


def dispute_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    return stream(engine, f"""
        SELECT keys.supplier_key, {wa.dispute_stream_columns_sql()},
               {wa.micro_usd_sql('refund_usd')} AS refund_micro_usd
        FROM dispute_facts
        JOIN supplier_keys AS keys USING (supplier_id)
    """)


def inquiry_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    """Every inquiry with a known supplier and a received time, in (supplier, response
    time) order: the quantiles need each supplier's values sorted, and DuckDB's parallel
    sort of the stream costs less than sorting in numpy (measured at 40M inquiries: 5.8
    CPU s against 10 for two argsorts)."""
    for rows in stream(engine, keyed_facts_sql(wa.inquiry_fact_columns_sql("microseconds"), f"{schema}.inquiries",
                                               "received_at IS NOT NULL", then_by="response_us")):
        rows["response_hours"] = rows.pop("response_us") / wa.MICROSECONDS_PER_HOUR
        yield rows


def review_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    return stream(engine, f"""
        SELECT keys.supplier_key, reviews.* EXCLUDE (supplier_id)
        FROM ({wa.review_stream_sql(schema)}) AS reviews
        JOIN supplier_keys AS keys USING (supplier_id)
    """)


# The reader of each declared stream (``features.declarations.STREAM_SOURCES``).
STREAM_READERS: dict[str, Callable[[FeatureEngine, str], Iterator[Columns]]] = {
    "orders": order_rows,
    "disputed_orders": disputed_order_rows,
    "disputes": dispute_rows,
    "inquiries": inquiry_rows,
    "reviews": review_rows,
}


def _pair_starts(rows: pa.Table) -> np.ndarray:
    """True where a row starts a new (supplier, buyer) pair (NULL buyers are one pair,
    as in a SQL partition)."""
    keys = rows.column("supplier_key").to_numpy()
    buyers = rows.column("buyer_id")
    same_buyer = pc.fill_null(pc.equal(buyers[1:], buyers[:-1]), False).to_numpy(zero_copy_only=False)
    both_null = pc.and_(pc.is_null(buyers[1:]), pc.is_null(buyers[:-1])).to_numpy(zero_copy_only=False)
    return np.r_[True, (keys[1:] != keys[:-1]) | ~(same_buyer | both_null)]


def buyer_months(o: Columns, window: int = wa.BUYER_WINDOW_MONTHS) -> Columns:
    """Orders of whole (supplier, buyer) pairs in (supplier, buyer, month) order (from
    ``order_rows_by_buyer``) -> one row per buyer-month with its value, the pair's
    previous month and its values 1..window-1 months later (the SQL's lag and leads)."""
    n_orders = len(o["created_m"])
    key, month = np.empty(n_orders, np.int64), np.empty(n_orders, np.int64)
    value_micro_usd, new_pair = np.empty(n_orders, np.int64), np.empty(n_orders, np.bool_)
    n = _sum_buyer_months(o["supplier_key"], o["created_m"], o["amount_micro_usd"], o["new_pair"], NEVER,
                          key, month, value_micro_usd, new_pair)
    month, new_pair = month[:n], new_pair[:n]
    # exact integer sums, then the double of the decimal as DuckDB casts it
    value = value_micro_usd[:n] / 1e6
    previous, later = np.empty(n, np.int64), np.zeros((window - 1, n))
    _link_buyer_months(month, value, new_pair, NEVER, window, previous, later)
    # values_later_usd[k - 1]: the SQL's value_{k}m_later_usd
    return {"supplier_key": key[:n], "created_m": month, "value_usd": value, "previous_m": previous,
            "values_later_usd": later}


@njit(cache=True, nogil=True)
def _sum_buyer_months(keys, months, amounts, new_pair, never, key, month, value, month_new_pair):
    """Orders (pairs contiguous, months ascending within a pair; unknown months skipped)
    summed into buyer-months; returns how many."""
    n = -1
    pair_started = False
    for i in range(keys.shape[0]):
        if new_pair[i]:
            pair_started = True
        if months[i] == never:
            continue
        if pair_started or n < 0 or months[i] != month[n]:
            n += 1
            key[n], month[n], value[n], month_new_pair[n] = keys[i], months[i], 0, pair_started
            pair_started = False
        value[n] += amounts[i]
    return n + 1


@njit(cache=True, nogil=True)
def _running_squares(value, later, running):
    """``running[d]``: the buyer-month's square plus twice its products with the pair's
    values 1..d months later."""
    for i in range(value.shape[0]):
        running[0, i] = value[i] * value[i]
        for k in range(1, running.shape[0]):
            running[k, i] = running[k - 1, i] + 2.0 * value[i] * later[k - 1, i]


@njit(cache=True, nogil=True)
def _link_buyer_months(month, value, new_pair, never, window, previous, later):
    """Each buyer-month's previous month in its pair (``never`` for the first) and, in
    ``later[k - 1]``, the pair's value k months on (0 when it bought nothing then)."""
    n = month.shape[0]
    for i in range(n):
        previous[i] = never if new_pair[i] else month[i - 1]
        for j in range(1, window):
            if i + j >= n or new_pair[i + j] or month[i + j] - month[i] >= window:
                break
            later[month[i + j] - month[i] - 1, i] = value[i + j]


# --- the declared statistics as activity intervals -----------------------------------------

def in_process_column(column: str) -> str:
    """The stream column an in-process statistic reads: money as integer micro-dollars."""
    return column[: -len("_usd")] + "_micro_usd" if is_money(column) else column


def activity_interval(statistic: WindowedStatistic, rows: Columns) -> tuple[np.ndarray, np.ndarray]:
    """``[start_m, end_m)`` of each row (``features.declarations``): from the latest of
    the entering month (plus the lag) and the ``known_from`` months, to the earliest of
    the window's end and the ``until`` months. ``NEVER`` (a month not known) never starts
    and never ends an interval."""
    enters = rows[statistic.enters]
    opens = enters + statistic.lag_months if statistic.lag_months else enters
    start = opens
    for month in statistic.known_from:
        start = np.maximum(start, rows[month])
    end = opens + statistic.window_months if statistic.window_months is not None else None
    for month in statistic.until:
        end = rows[month] if end is None else np.minimum(end, rows[month])
    return start, end


def interval_shape(statistic: WindowedStatistic) -> tuple:
    """What fixes a statistic's interval: statistics of one stream with the same shape share it."""
    return (statistic.enters, statistic.lag_months, statistic.window_months, statistic.known_from, statistic.until)


Placed = dict[tuple, Interval]


def statistics_adder(statistics: list[WindowedStatistic],
                     then: Callable[[Columns, WindowTotals, Placed], None] | None = None,
                     ) -> Callable[[Columns, WindowTotals], None]:
    """Adds each declared statistic of one stream to the totals: one interval per distinct
    interval shape (placed once, shared by the statistics over it). ``then`` gets the
    batch's placed intervals too (a hand-written part over the same stream)."""

    def add(rows: Columns, totals: WindowTotals) -> None:
        key = rows["supplier_key"]
        placed: Placed = {}
        for s in statistics:
            shape = interval_shape(s)
            if shape not in placed:
                placed[shape] = totals.interval(key, *activity_interval(s, rows))
            weights = rows[in_process_column(s.weight)] if s.weight is not None else None
            totals.add(s.name, placed[shape], weights, where=rows[s.where] if s.where else None)
        if then is not None:
            then(rows, totals, placed)

    return add


def buyer_intervals(o: Columns, t: WindowTotals, window: int = wa.BUYER_WINDOW_MONTHS) -> None:
    """``create_rolled_buyers``: a buyer counts at T from its earliest month in T's window;
    the squared window value is the monthly squares plus twice each pair of months k
    apart, counted once the later month is in the window."""
    b = buyer_months(o, window)
    key, month, value, previous = b["supplier_key"], b["created_m"], b["value_usd"], b["previous_m"]
    window_end = month + window
    in_window = t.interval(key, month, window_end)
    first_month = previous == NEVER
    t.add(BUYER_MONTHS, in_window)
    t.add("first_orders_6m", in_window, where=first_month)
    t.add("buyers_6m", t.interval(key, np.where(first_month, month, np.maximum(month, previous + window)),
                                  window_end))
    # the buyer-month's share of the pair's squared window value, d months on: its square
    # plus twice its products with the pair's months up to d months later
    running = np.empty((window, len(value)))
    _running_squares(value, b["values_later_usd"], running)
    t.add_by_month("buyer_value_sq_6m", key, month, running)


# The response times counted in the quantiles are those of the answered inquiries, over
# the same interval (``create_rolled_response_times_sql`` in SQL).
ANSWERED = STATISTIC_BY_NAME["answered_inquiries_6m"]
assert ANSWERED.window_months == wa.RESPONSE_TIME_WINDOW_MONTHS


def response_time_values(q: Columns, t: WindowTotals, placed: Placed) -> None:
    """Each answered inquiry's response time, kept for the quantiles from its answer
    month while its received month is in the window: the interval of
    ``answered_inquiries_6m``, already placed for this batch."""
    answered = placed[interval_shape(ANSWERED)]
    # ``inquiry_rows`` comes in (supplier, response time) order
    t.add_values("response_hours_6m", answered, q["response_hours"], wa.RESPONSE_TIME_QUANTILES,
                 where=q["answered_m"] != NEVER, ordered=True)


# A count kept only to tell "no buyer-month in the window" (buyer_value_sq_6m NULL, as
# the SQL's missing rolled row) from a total of 0.
BUYER_MONTHS = "buyer_months_6m"
PRESENCE_OF = {"buyer_value_sq_6m": BUYER_MONTHS}


@dataclass(frozen=True)
class FamilyIntervals:
    """A family's in-process definition: which streams feed it, and what each adds."""

    parts: tuple[tuple[Callable[[FeatureEngine, str], Iterator[Columns]], Callable[[Columns, WindowTotals], None]], ...]


# Parts that are not interval sums, by family.
BESPOKE_PARTS: dict[str, tuple] = {
    "buyers": ((order_rows_by_buyer, buyer_intervals),),
}
# Parts that run after a family's declared statistics of a stream, on their intervals.
BESPOKE_AFTER: dict[tuple[str, str], Callable[[Columns, WindowTotals, Placed], None]] = {
    ("inquiries", "inquiries"): response_time_values,
}


def _family_intervals(family: str) -> FamilyIntervals:
    by_stream: dict[str, list[WindowedStatistic]] = {}
    for statistic in statistics_of(family):
        by_stream.setdefault(statistic.stream, []).append(statistic)
    declared = tuple((STREAM_READERS[name], statistics_adder(found, BESPOKE_AFTER.get((family, name))))
                     for name, found in by_stream.items())
    return FamilyIntervals(declared + BESPOKE_PARTS.get(family, ()))


IN_PROCESS_FAMILIES: dict[str, FamilyIntervals] = {
    family: _family_intervals(family)
    for family in ("order_cohorts", "promised_shipments", "deliveries", "overdue_orders", "in_transit_orders",
                   "dispute_resolutions", "open_disputes", "buyers", "inquiries", "reviews")
}


Step = Callable[[str, Callable[[], None]], None]


def _run(label: str, action: Callable[[], None]) -> None:
    action()


def window_totals_for(engine: FeatureEngine, schema: str, families: list[str], as_of_ms: list[int],
                      n_keys: int, step: Step = _run) -> WindowTotals:
    """Stream each source the ``families`` read once, adding every family's intervals.
    ``step(label, action)`` runs each stream and extra step (a profiler times them)."""
    totals = WindowTotals(as_of_ms, n_keys)
    readers: dict[Callable, list[Callable]] = {}
    for name in families:
        for read, add in IN_PROCESS_FAMILIES[name].parts:
            readers.setdefault(read, []).append(add)
    for read, instead in READ_FROM_INSTEAD.items():
        if read in readers and instead in readers:
            readers[instead] = readers.pop(read) + readers[instead]

    def consume(read, adders) -> None:
        for columns in read(engine, schema):
            for add in adders:
                add(columns, totals)

    for read, adders in readers.items():
        step(read.__name__, lambda read=read, adders=adders: consume(read, adders))
    return totals


def in_process_rolled_table(engine: FeatureEngine, schema: str, families: list[str], columns: list[str],
                            step: Step = _run) -> pa.Table:
    """``rolled_in_process``: the ``families``' ``columns`` at every supplier-calendar
    row, keyed by (as_of_m, supplier_key) like the SQL's rolled tables (a total nothing
    was added to is 0, a quantile over nothing NULL). Money comes back from
    micro-dollars as DOUBLE, as the SQL's decimal sums are cast."""
    calendar = engine.fetch_arrow("SELECT as_of_m, supplier_key FROM supplier_calendar")
    as_of_ms = engine.fetch_arrow("SELECT as_of_m FROM as_of_calendar").column("as_of_m").to_pylist()
    n_keys = engine.fetch_arrow("SELECT coalesce(max(supplier_key), 0) + 1 AS n FROM supplier_keys").column("n")[0].as_py()
    totals = window_totals_for(engine, schema, families, as_of_ms, n_keys, step)
    as_of_m = calendar.column("as_of_m").to_numpy()
    keys = calendar.column("supplier_key").to_numpy()
    table = {"as_of_m": calendar.column("as_of_m"), "supplier_key": calendar.column("supplier_key")}
    step("gather at the calendar rows", lambda: _gather(totals, columns, as_of_m, keys, table))
    return pa.table(table)


def _gather(totals: WindowTotals, columns: list[str], as_of_m: np.ndarray, keys: np.ndarray,
            table: dict[str, pa.Array]) -> None:
    for name in columns:
        if name not in totals.names:  # no rows at all
            null = name in PRESENCE_OF or name in wa.RESPONSE_TIME_QUANTILES
            table[name] = pa.array(np.zeros(len(keys), dtype=np.int64), mask=np.full(len(keys), null))
            continue
        values = totals.values_at(name, as_of_m, keys)
        if values.dtype.kind == "i" and name.endswith("_usd"):
            values = values / 1e6  # the double of the exact decimal, as DuckDB casts it
        mask = np.isnan(values) if name in wa.RESPONSE_TIME_QUANTILES else None
        if name in PRESENCE_OF:
            mask = totals.values_at(PRESENCE_OF[name], as_of_m, keys) == 0
        table[name] = pa.array(values, mask=mask)
