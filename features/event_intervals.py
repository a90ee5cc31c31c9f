"""The event families' windowed counts and sums, computed in process.

``features.window_aggregates`` defines every count in SQL: events bucketed by (supplier,
month) and each bucket rolled onto the month ends whose window holds it. An engine that
runs in this process (DuckDB) computes the same columns here instead: DuckDB streams each
event table once, keyed and reduced to month indices, and every statistic becomes an
activity interval ``[start_m, end_m)`` added to a ``features.window_totals.WindowTotals``.
The intervals below are those SQL conditions, one for one (the test suite checks that
both give the same features); a distributed engine keeps the SQL.

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
from features.sql_engine import FeatureEngine
from features.window_totals import NEVER, WindowTotals
from features.windows import SIX_MONTHS, TWELVE_MONTHS, keyed_facts_sql, month_index_sql

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
    """One row per disputed order: its created month and its first dispute's month,
    overall and per cover (the inner query of the SQL's disputed cohort)."""
    return stream(engine, f"""
        SELECT keys.supplier_key, any_value(created_m) AS created_m,
               min(opened_m) AS any_dispute_m,
               min(opened_m) FILTER (WHERE reason IN ({wa.sql_list(wa.PRE_SHIPMENT_REASONS)})) AS pre_shipment_dispute_m,
               min(opened_m) FILTER (WHERE reason IN ({wa.sql_list(wa.POST_DELIVERY_REASONS)})) AS post_delivery_dispute_m
        FROM dispute_facts
        JOIN supplier_keys AS keys USING (supplier_id)
        WHERE created_m IS NOT NULL
        GROUP BY keys.supplier_key, order_id
    """)


def dispute_rows(engine: FeatureEngine, schema: str) -> Iterator[Columns]:
    return stream(engine, f"""
        SELECT keys.supplier_key, created_m, opened_m, resolved_m,
               outcome = '{wa.BUYER_WON_OUTCOME}' AS buyer_won,
               reason IN ({wa.sql_list(wa.PRE_SHIPMENT_REASONS)}) AS pre_shipment,
               reason IN ({wa.sql_list(wa.POST_DELIVERY_REASONS)}) AS post_delivery,
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
    mi = month_index_sql
    return stream(engine, f"""
        SELECT keys.supplier_key, {mi('r.created_at')} AS review_m, r.rating
        FROM {schema}.reviews AS r
        JOIN {schema}.orders AS o USING (order_id)
        JOIN supplier_keys AS keys ON keys.supplier_id = o.supplier_id
        WHERE r.created_at IS NOT NULL AND r.rating IS NOT NULL
    """)


def _pair_starts(rows: pa.Table) -> np.ndarray:
    """True where a row starts a new (supplier, buyer) pair (NULL buyers are one pair,
    as in a SQL partition)."""
    keys = rows.column("supplier_key").to_numpy()
    buyers = rows.column("buyer_id")
    same_buyer = pc.fill_null(pc.equal(buyers[1:], buyers[:-1]), False).to_numpy(zero_copy_only=False)
    both_null = pc.and_(pc.is_null(buyers[1:]), pc.is_null(buyers[:-1])).to_numpy(zero_copy_only=False)
    return np.r_[True, (keys[1:] != keys[:-1]) | ~(same_buyer | both_null)]


def buyer_months(o: Columns) -> Columns:
    """Orders of whole (supplier, buyer) pairs in (supplier, buyer, month) order (from
    ``order_rows_by_buyer``) -> one row per buyer-month with its value, the pair's
    previous month and its values 1..5 months later (the SQL's lag and leads)."""
    n_orders = len(o["created_m"])
    key, month = np.empty(n_orders, np.int64), np.empty(n_orders, np.int64)
    value_micro_usd, new_pair = np.empty(n_orders, np.int64), np.empty(n_orders, np.bool_)
    n = _sum_buyer_months(o["supplier_key"], o["created_m"], o["amount_micro_usd"], o["new_pair"], NEVER,
                          key, month, value_micro_usd, new_pair)
    month, new_pair = month[:n], new_pair[:n]
    # exact integer sums, then the double of the decimal as DuckDB casts it
    value = value_micro_usd[:n] / 1e6
    previous, later = np.empty(n, np.int64), np.zeros((SIX_MONTHS - 1, n))
    _link_buyer_months(month, value, new_pair, NEVER, SIX_MONTHS, previous, later)
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


# --- the families' intervals (each the SQL condition of its window_aggregates twin) --------

def order_cohort_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_rolled_order_cohorts``, its order part."""
    key, created = o["supplier_key"], o["created_m"]
    window_end = created + SIX_MONTHS
    window = t.interval(key, created, window_end)
    t.add("orders_6m", window)
    t.add("order_value_6m_usd", window, o["amount_micro_usd"])
    t.add("payment_method_known_orders_6m", window, where=o["payment_method_known"])
    t.add("tt_orders_6m", window, where=o["paid_tt"])
    t.add("credit_card_orders_6m", window, where=o["paid_credit_card"])
    t.add("completed_orders_6m", t.interval(key, np.maximum(created, o["delivered_m"]),
                                            np.minimum(window_end, o["cancelled_m"])))
    t.add("supplier_cancelled_orders_6m", t.interval(key, np.maximum(created, o["cancelled_m"]), window_end),
          where=o["supplier_cancelled"])
    t.add("orders_this_month", t.interval(key, created, created + 1))
    t.add("orders_previous_month", t.interval(key, created + 1, created + 2))


def disputed_cohort_intervals(d: Columns, t: WindowTotals) -> None:
    """``create_rolled_order_cohorts``, its disputed part: counted from the first dispute."""
    key, created = d["supplier_key"], d["created_m"]
    for column, first_dispute in (("disputed_orders_6m", "any_dispute_m"),
                                  ("pre_shipment_disputed_orders_6m", "pre_shipment_dispute_m"),
                                  ("post_delivery_disputed_orders_6m", "post_delivery_dispute_m")):
        t.add(column, t.interval(key, np.maximum(created, d[first_dispute]), created + SIX_MONTHS))


def promised_shipment_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_rolled_promised_shipments``."""
    promised = o["promised_m"]
    window = t.interval(o["supplier_key"], promised, promised + SIX_MONTHS)
    t.add("promised_shipments_6m", window)
    t.add("on_time_shipments_6m", window, where=o["shipped_on_time"])


def delivery_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_rolled_deliveries``: a deal from its delivery until it leaves the twelve
    months or its cancellation becomes known."""
    delivered = o["delivered_m"]
    deal = t.interval(o["supplier_key"], delivered, np.minimum(delivered + TWELVE_MONTHS, o["cancelled_m"]))
    t.add("deal_count_12m", deal)
    t.add("deal_value_12m_usd", deal, o["amount_micro_usd"])
    t.add("assured_deal_value_12m_usd", deal, o["amount_micro_usd"], where=o["assured"])


def overdue_order_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_overdue_orders``: overdue from the promised month (once created) until it
    shipped or its cancellation became known."""
    created, promised, shipped = o["created_m"], o["promised_m"], o["shipped_m"]
    late = (promised != NEVER) & (created != NEVER) & (shipped > promised)
    t.add("overdue_unshipped_orders_at_t",
          t.interval(o["supplier_key"], np.maximum(created, promised), np.minimum(shipped, o["cancelled_m"])),
          where=late)


def in_transit_order_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_in_transit_orders``: in transit from the month it shipped (once created)
    until it was delivered or its cancellation became known; late when it shipped after
    its promised day (``shipped_on_time`` false, not NULL: a promised day is known)."""
    in_transit = t.interval(o["supplier_key"], np.maximum(o["created_m"], o["shipped_m"]),
                            np.minimum(o["delivered_m"], o["cancelled_m"]))
    t.add("in_transit_orders_at_t", in_transit)
    t.add("late_in_transit_orders_at_t", in_transit, where=(o["promised_m"] != NEVER) & ~o["shipped_on_time"])


def dispute_resolution_intervals(d: Columns, t: WindowTotals) -> None:
    """``create_rolled_dispute_resolutions``: resolutions in the window, and refunds on
    the window's orders once resolved."""
    key, resolved, created = d["supplier_key"], d["resolved_m"], d["created_m"]
    window = t.interval(key, resolved, resolved + SIX_MONTHS)
    t.add("resolved_disputes_6m", window)
    t.add("buyer_won_disputes_6m", window, where=d["buyer_won"])
    t.add("refund_6m_usd", t.interval(key, np.maximum(created, resolved), created + SIX_MONTHS),
          d["refund_micro_usd"])


def open_dispute_intervals(d: Columns, t: WindowTotals) -> None:
    """``create_open_disputes``: open from the month opened until the month resolved."""
    pending = t.interval(d["supplier_key"], d["opened_m"], d["resolved_m"])
    t.add("open_disputes_at_t", pending)
    t.add("open_pre_shipment_disputes_at_t", pending, where=d["pre_shipment"])
    t.add("open_post_delivery_disputes_at_t", pending, where=d["post_delivery"])


def buyer_intervals(o: Columns, t: WindowTotals) -> None:
    """``create_rolled_buyers``: a buyer counts at T from its earliest month in T's window;
    the squared window value is the monthly squares plus twice each pair of months k
    apart, counted once the later month is in the window."""
    b = buyer_months(o)
    key, month, value, previous = b["supplier_key"], b["created_m"], b["value_usd"], b["previous_m"]
    window_end = month + SIX_MONTHS
    window = t.interval(key, month, window_end)
    first_month = previous == NEVER
    t.add(BUYER_MONTHS, window)
    t.add("first_orders_6m", window, where=first_month)
    t.add("buyers_6m", t.interval(key, np.where(first_month, month, np.maximum(month, previous + SIX_MONTHS)),
                                  window_end))
    # the buyer-month's share of the pair's squared window value, d months on: its square
    # plus twice its products with the pair's months up to d months later
    running = np.empty((SIX_MONTHS, len(value)))
    _running_squares(value, b["values_later_usd"], running)
    t.add_by_month("buyer_value_sq_6m", key, month, running)


def inquiry_intervals(q: Columns, t: WindowTotals) -> None:
    """``create_rolled_inquiries``: the counts, and the response times of the answered
    inquiries for their quantiles (``create_rolled_response_times_sql``)."""
    key, received = q["supplier_key"], q["received_m"]
    t.add("inquiries_6m", t.interval(key, received, received + SIX_MONTHS))
    answered = t.interval(key, np.maximum(received, q["answered_m"]), received + SIX_MONTHS)
    t.add("answered_inquiries_6m", answered)
    # ``inquiry_rows`` comes in (supplier, response time) order
    t.add_values("response_hours_6m", answered, q["response_hours"], wa.RESPONSE_TIME_QUANTILES,
                 where=q["answered_m"] != NEVER, ordered=True)


def review_intervals(r: Columns, t: WindowTotals) -> None:
    """``create_rolled_reviews``."""
    month = r["review_m"]
    window = t.interval(r["supplier_key"], month, month + SIX_MONTHS)
    t.add("review_count_6m", window)
    t.add("review_rating_sum_6m", window, r["rating"])
    t.add("low_rating_reviews_6m", window, where=r["rating"] <= wa.LOW_RATING_MAX)


# A count kept only to tell "no buyer-month in the window" (buyer_value_sq_6m NULL, as
# the SQL's missing rolled row) from a total of 0.
BUYER_MONTHS = "buyer_months_6m"
PRESENCE_OF = {"buyer_value_sq_6m": BUYER_MONTHS}


@dataclass(frozen=True)
class FamilyIntervals:
    """A family's in-process definition: which streams feed it, and what each adds."""

    parts: tuple[tuple[Callable[[FeatureEngine, str], Iterator[Columns]], Callable[[Columns, WindowTotals], None]], ...]


IN_PROCESS_FAMILIES: dict[str, FamilyIntervals] = {
    "order_cohorts": FamilyIntervals(((order_rows, order_cohort_intervals),
                                      (disputed_order_rows, disputed_cohort_intervals))),
    "promised_shipments": FamilyIntervals(((order_rows, promised_shipment_intervals),)),
    "deliveries": FamilyIntervals(((order_rows, delivery_intervals),)),
    "overdue_orders": FamilyIntervals(((order_rows, overdue_order_intervals),)),
    "in_transit_orders": FamilyIntervals(((order_rows, in_transit_order_intervals),)),
    "dispute_resolutions": FamilyIntervals(((dispute_rows, dispute_resolution_intervals),)),
    "open_disputes": FamilyIntervals(((dispute_rows, open_dispute_intervals),)),
    "buyers": FamilyIntervals(((order_rows_by_buyer, buyer_intervals),)),
    "inquiries": FamilyIntervals(((inquiry_rows, inquiry_intervals),)),
    "reviews": FamilyIntervals(((review_rows, review_intervals),)),
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
