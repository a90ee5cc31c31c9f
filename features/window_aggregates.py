"""The feature SQL: per-(as_of_date, supplier) counts and sums over windows, in DuckDB's
dialect (Spark runs it transpiled, ``features.spark_engine``; DuckDB runs it as the
cross-check of its in-process path).

This module and its in-process twin, ``features.event_intervals`` (the same declarations
as activity intervals, summed in numpy on an embedded engine), are the only places that
read the validated event tables. Every ``features.declarations.WindowedStatistic`` is
compiled here (``create_rolled_statistics``): its stream's rows are aggregated once into
(supplier, month) buckets whose keys are month indices (see ``features.windows``): the
month the event enters a window and the months that delay or end its counting. Buckets
are then rolled onto the requested month ends; conditions like ``answered_m <= as_of_m``
keep every statistic point-in-time: a fact dated after T never reaches T. A position held
at T (no window) is bucketed by its first and last month and range-joined onto the month
ends instead (``pending_at_month_ends``).

Every table is a connection-local temp table keyed by (as_of_m, supplier_key) (see
``features.windows``). ``features.supplier_features`` and ``features.storefront`` derive
their columns from these tables, so a concept such as "delivered, not cancelled, in the
last twelve months" has exactly one definition. The buyers and the response-time
quantiles are not interval sums and keep hand-written SQL below.
"""

from __future__ import annotations

from features.declarations import STREAM_SOURCES, WindowedStatistic, is_money, statistics_of
from features.sql_engine import FeatureEngine
from features.windows import (
    SIX_MONTHS,
    TWELVE_MONTHS,
    keyed_facts_sql,
    month_index_sql,
    roll_onto_month_ends,
)

# Dispute reasons that mean the goods never left on time or never arrived (the
# pre-shipment cover) versus goods that arrived but were not as agreed (post-delivery).
PRE_SHIPMENT_REASONS = ("late_shipment", "not_received")
POST_DELIVERY_REASONS = ("quality",)
BUYER_WON_OUTCOME = "buyer_favored"
LOW_RATING_MAX = 2  # 1- and 2-star reviews are "low"


def money_sum(expression: str) -> str:
    """Sum of USD amounts, exact at micro-dollar precision. Summing doubles in parallel
    gives last-bit differences from run to run (the addition order varies); decimal
    addition does not, so the same input always publishes the same figures."""
    return f"sum(CAST({expression} AS DECIMAL(18, 6)))"


def sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def cancelled_month_sql() -> str:
    """The month an order's cancellation became known (NULL: not cancelled).

    ``cancelled_at`` (optional in the landing contract) dates it, so a cancellation after
    T is not known at T. A cancelled order without one (a source that does not record the
    time) is taken as cancelled from its creation: its latest status is all there is.
    A NULL status is not a cancellation.
    """
    mi = month_index_sql
    return f"CASE WHEN status = 'cancelled' THEN coalesce({mi('cancelled_at')}, {mi('created_at')}) END"


def not_cancelled_by(cancelled_m: str, as_of_m: str) -> str:
    return f"({cancelled_m} IS NULL OR {cancelled_m} > {as_of_m})"


NO_DISPUTES_SQL = """(SELECT NULL::VARCHAR AS order_id, NULL::TIMESTAMP AS opened_at, NULL::VARCHAR AS reason,
    NULL::VARCHAR AS outcome, NULL::TIMESTAMP AS resolved_at, NULL::DOUBLE AS refund_usd WHERE false)"""


def create_dispute_facts(engine: FeatureEngine, schema: str) -> None:
    """Disputes with their order's supplier and the month each fact became known.

    A dispute's outcome is known only from its ``resolved_at`` (and only when the
    outcome is not ``open``); before that it is an open dispute.
    """
    mi = month_index_sql
    # A source that records no disputes has no table: an empty stand-in keeps the order
    # cohorts computable, and the dispute columns are then set NULL (unknown), not 0.
    disputes = f"{schema}.disputes" if engine.has_table(schema, "disputes") else NO_DISPUTES_SQL
    engine.create_temp_table("dispute_facts", f"""
        SELECT o.supplier_id, d.order_id,
               {mi('o.created_at')} AS created_m,
               {mi('d.opened_at')} AS opened_m,
               d.reason,
               CASE WHEN d.resolved_at IS NOT NULL AND coalesce(d.outcome, 'open') <> 'open'
                    THEN {mi('d.resolved_at')} END AS resolved_m,
               d.outcome,
               d.refund_usd
        FROM {disputes} AS d
        JOIN {schema}.orders AS o USING (order_id)
    """)


def create_order_facts(engine: FeatureEngine, schema: str) -> None:
    """The order columns the order families read, keyed once (``order_facts``): the
    order cohorts, promised shipments, deliveries and buyers then group on integers
    instead of each scanning the orders and joining the VARCHAR supplier id.

    ``delivered_m`` is the month an order was delivered and ``cancelled_m`` the month its
    cancellation became known (``cancelled_month_sql``): a delivered order counts as
    completed, and as a deal, at the month ends from its delivery until its cancellation.
    ``shipped_on_time`` is whether it shipped before the end of its promised day, and
    ``shipped_late`` whether at or after it (both NULL, like false, when it never shipped
    or had no promised day).
    """
    engine.create_temp_table("order_facts", keyed_facts_sql(order_fact_columns_sql() + ", amount_usd", f"{schema}.orders"))


def order_fact_columns_sql() -> str:
    """The select list of ``order_facts`` over ``orders`` (without ``amount_usd``, which
    the SQL sums as a decimal and the in-process path reads as integer micro-dollars)."""
    mi = month_index_sql
    return f"""buyer_id,
            CAST({mi('created_at')} AS INTEGER) AS created_m,
            CAST({mi('delivered_at')} AS INTEGER) AS delivered_m,
            CAST({cancelled_month_sql()} AS INTEGER) AS cancelled_m,
            CAST({mi('promised_ship_by')} AS INTEGER) AS promised_m,
            CAST({mi('shipped_at')} AS INTEGER) AS shipped_m,
            shipped_at < date_trunc('day', promised_ship_by) + INTERVAL 1 DAY AS shipped_on_time,
            shipped_at >= date_trunc('day', promised_ship_by) + INTERVAL 1 DAY AS shipped_late,
            status = 'cancelled' AND cancelled_by = 'supplier' AS supplier_cancelled,
            payment_method IS NOT NULL AS payment_method_known,
            coalesce(payment_method = 'tt', false) AS paid_tt,
            coalesce(payment_method = 'credit_card', false) AS paid_credit_card,
            assured"""


def micro_usd_sql(expression: str) -> str:
    """USD as integer micro-dollars: the exact value ``money_sum`` adds, as a BIGINT.

    DECIMAL(18, 6) times 1000000 stays DECIMAL(18) in DuckDB and overflows from $1e6 up
    (the contract allows $1e9, 1e15 micro-dollars). Widening to DECIMAL(38, 6) first is
    exact but runs in 128-bit arithmetic, 25x the CPU of the rest of the cast (5.3 CPU s
    per 5M orders); the whole dollars and the six decimals are scaled apart instead, each
    in 64 bits, to the same value."""
    usd = f"CAST({expression} AS DECIMAL(18, 6))"
    return f"(CAST(trunc({usd}) AS BIGINT) * 1000000 + CAST(({usd} - trunc({usd})) * 1000000 AS BIGINT))"


# --- the event streams ---------------------------------------------------------------------
# Each stream's columns are written once here; the SQL below reads them as a relation and
# ``features.event_intervals`` streams the same select list with the supplier key and
# money as integer micro-dollars (``stream_select_sql``).

def dispute_stream_columns_sql() -> str:
    """Per dispute: its order's created month, when it was opened and resolved, and flags."""
    return f"""created_m, opened_m, resolved_m,
            outcome = '{BUYER_WON_OUTCOME}' AS buyer_won,
            reason IN ({sql_list(PRE_SHIPMENT_REASONS)}) AS pre_shipment,
            reason IN ({sql_list(POST_DELIVERY_REASONS)}) AS post_delivery"""


def disputed_orders_sql() -> str:
    """One row per disputed order: its created month and its first dispute's month,
    overall and per cover."""
    return f"""
        SELECT supplier_id, any_value(created_m) AS created_m,
               min(opened_m) AS any_dispute_m,
               min(opened_m) FILTER (WHERE reason IN ({sql_list(PRE_SHIPMENT_REASONS)})) AS pre_shipment_dispute_m,
               min(opened_m) FILTER (WHERE reason IN ({sql_list(POST_DELIVERY_REASONS)})) AS post_delivery_dispute_m
        FROM dispute_facts
        WHERE created_m IS NOT NULL
        GROUP BY supplier_id, order_id
    """


def review_stream_sql(schema: str) -> str:
    """Reviews with a date and a rating, with their order's supplier (a review counts from
    its created_at)."""
    mi = month_index_sql
    return f"""
        SELECT o.supplier_id, {mi('r.created_at')} AS review_m, r.rating,
               r.rating <= {LOW_RATING_MAX} AS low_rating
        FROM {schema}.reviews AS r
        JOIN {schema}.orders AS o USING (order_id)
        WHERE r.created_at IS NOT NULL AND r.rating IS NOT NULL
    """


def stream_relation_sql(stream: str, schema: str) -> tuple[str, bool]:
    """The stream's rows as a FROM-able relation for the SQL path, and whether they carry
    the integer ``supplier_key`` already (else the VARCHAR ``supplier_id``). Money columns
    stay USD (summed as decimals, ``money_sum``)."""
    if stream == "orders":
        return "order_facts", True
    if stream == "inquiries":
        return "inquiry_facts", True
    if stream == "disputed_orders":
        return f"({disputed_orders_sql()})", False
    if stream == "disputes":
        return f"(SELECT supplier_id, {dispute_stream_columns_sql()}, refund_usd FROM dispute_facts)", False
    if stream == "reviews":
        return f"({review_stream_sql(schema)})", False
    raise ValueError(f"unknown stream {stream!r}; one of {sorted(STREAM_SOURCES)}")


def facts_needed(streams) -> set[str]:
    """The keyed fact tables (``order_facts``, ``dispute_facts``, ``inquiry_facts``) the
    SQL of these streams reads."""
    needed = set()
    for stream in streams:
        if stream == "orders":
            needed.add("order_facts")
        elif stream in ("disputes", "disputed_orders"):
            needed.add("dispute_facts")
        elif stream == "inquiries":
            needed.add("inquiry_facts")
    return needed


# --- the declared statistics compiled to SQL ----------------------------------------------

def statistic_groups(family: str) -> dict[str, list[WindowedStatistic]]:
    """The family's statistics by the rolled table that computes them: one table per
    stream and entering month for windows (the widest window sets the roll, narrower ones
    filter), one per interval shape for positions held at T."""
    groups: dict[str, list[WindowedStatistic]] = {}
    shapes: list[tuple] = []
    for statistic in statistics_of(family):
        if statistic.window_months is None:
            shape = (statistic.stream, statistic.enters, statistic.known_from, statistic.until)
            if shape not in shapes:
                shapes.append(shape)
            table = f"pending_{family}_{shapes.index(shape)}"
        else:
            table = f"rolled_{family}__{statistic.stream}__{statistic.enters}"
        groups.setdefault(table, []).append(statistic)
    return groups


def _bucket_aggregate(statistic: WindowedStatistic) -> str:
    if statistic.weight is None:
        total = "count(*)"
    elif is_money(statistic.weight):
        total = money_sum(statistic.weight)
    else:
        total = f"sum({statistic.weight})"
    return total + (f" FILTER (WHERE {statistic.where})" if statistic.where else "")


def rolled_statistics_sql(table: str, statistics: list[WindowedStatistic], schema: str) -> str:
    """The SELECT computing one ``statistic_groups`` table: columns as_of_m,
    supplier_key and one per statistic (NULL or absent where nothing counted)."""
    first = statistics[0]
    relation, keyed = stream_relation_sql(first.stream, schema)
    supplier = "supplier_key" if keyed else "supplier_id"
    totals = {s.name: f"total_{slot}" for slot, s in enumerate(statistics)}
    aggregates = ", ".join(f"{_bucket_aggregate(s)} AS {totals[s.name]}" for s in statistics)
    enters = first.enters
    if first.window_months is None:
        known_from, until = first.known_from, first.until
        from_sql = enters if not known_from else (
            f"CASE WHEN {' OR '.join(f'{c} IS NULL' for c in known_from)} THEN NULL "
            f"ELSE greatest({', '.join((enters, *known_from))}) END")
        # least() skips NULLs (a month not known never ends the position), in Spark too
        until_sql = until[0] if len(until) == 1 else f"least({', '.join(until)})"
        bucket_sql = f"""
            SELECT {supplier}, from_m, until_m, {aggregates}
            FROM (SELECT *, {from_sql} AS from_m, {until_sql} AS until_m FROM {relation} AS stream_rows
                  WHERE {enters} IS NOT NULL)
            WHERE from_m IS NOT NULL AND (until_m IS NULL OR until_m > from_m)
            GROUP BY ALL
        """
        return pending_at_month_ends(bucket_sql, "from_m", "until_m",
                                     {s.name: totals[s.name] for s in statistics}, keyed=keyed)
    months = sorted({c for s in statistics for c in (*s.known_from, *s.until)} - {enters})
    bucket_sql = f"""
        SELECT {supplier}, {', '.join([enters, *months])}, {aggregates}
        FROM {relation} AS stream_rows
        WHERE {enters} IS NOT NULL
        GROUP BY ALL
    """
    width = max(s.span_months for s in statistics)
    sums = []
    for s in statistics:
        counted = [f"cal.as_of_m >= bucket.{enters} + {s.lag_months}"] if s.lag_months else []
        if s.span_months < width:
            counted.append(f"cal.as_of_m < bucket.{enters} + {s.span_months}")
        counted += [f"bucket.{month} <= cal.as_of_m" for month in s.known_from]
        counted += [f"(bucket.{month} IS NULL OR bucket.{month} > cal.as_of_m)" for month in s.until]
        condition = f" FILTER (WHERE {' AND '.join(counted)})" if counted else ""
        sums.append(f"sum(bucket.{totals[s.name]}){condition} AS {s.name}")
    return f"""
        SELECT cal.as_of_m, bucket.supplier_key, {', '.join(sums)}
        FROM {roll_onto_month_ends(bucket_sql, enters, width, keyed=keyed)}
        GROUP BY cal.as_of_m, bucket.supplier_key
    """


def create_rolled_statistics(engine: FeatureEngine, schema: str, family: str) -> list[str]:
    """Materialise the family's declared statistics (``statistic_groups``); returns the
    tables made. The fact tables their streams read must exist (``facts_needed``)."""
    groups = statistic_groups(family)
    for table, statistics in groups.items():
        engine.create_temp_table(table, rolled_statistics_sql(table, statistics, schema))
    return list(groups)


# The buyers' window (buyers_6m, repeat_orders_6m, buyer_hhi_6m): the kernels take any length.
BUYER_WINDOW_MONTHS = SIX_MONTHS


def create_rolled_buyers(engine: FeatureEngine, window: int = BUYER_WINDOW_MONTHS) -> None:
    """Distinct buyers, buyer concentration and first orders over the six-month window,
    from one ordered pass over each (supplier, buyer)'s monthly order values; nothing
    is kept per buyer after the buckets.

    ``buyer_value_sq_6m`` is the sum over buyers of (their order value in the window)^2,
    which with the window's total value gives the Herfindahl index. The square of a sum
    over the window's months is the sum of the monthly squares plus twice the product
    of each pair of months: a pair k months apart is in the window of T when its
    earlier month is (the roll) and its later month is not after T. So each buyer-month
    carries its products with the same buyer's value k = 1..5 months later (found among
    the next five buyer-months, the months being distinct), and the buckets need no
    buyer key.

    A buyer is counted at T by its earliest month in the window of T: a buyer-month
    counts from its own month, or from six months after the buyer's previous month when
    that is later (until then the previous month is in the window). An order is a
    *first order* when it is the buyer's earliest with this supplier; the window's
    repeat orders are its orders minus its first orders, which needs only the month of
    each (supplier, buyer) pair's first order, not an ordering of all orders.
    """
    later_months = range(1, window)
    # Each lead once (DuckDB evaluates a window expression per occurrence), then matched:
    # the buyer-month k months later is at most k buyer-months ahead.
    leads = ",\n".join(
        f"lead(created_m, {j}) OVER buyer_history AS month_{j}_ahead, "
        f"lead(value_usd, {j}) OVER buyer_history AS value_{j}_ahead_usd"
        for j in later_months
    )
    value_later = ",\n".join(
        "CASE "
        + " ".join(f"WHEN month_{j}_ahead = created_m + {k} THEN value_{j}_ahead_usd" for j in range(1, k + 1))
        + f" END AS value_{k}m_later_usd"
        for k in later_months
    )
    buyer_months_sql = f"""
        SELECT supplier_key, created_m, value_usd, previous_m,
               {value_later}
        FROM (
            SELECT supplier_key, created_m, value_usd,
                   lag(created_m) OVER buyer_history AS previous_m,
                   {leads}
            FROM (
                SELECT supplier_key, buyer_id, created_m, {money_sum('amount_usd')} AS value_usd
                FROM order_facts
                WHERE created_m IS NOT NULL
                GROUP BY ALL
            )
            WINDOW buyer_history AS (PARTITION BY supplier_key, buyer_id ORDER BY created_m)
        )
    """
    pair_sums = ",\n".join(
        f"sum(value_usd * value_{k}m_later_usd) AS pair_value_{k}m_usd" for k in later_months
    )
    bucket_sql = f"""
        SELECT supplier_key, created_m,
               CASE WHEN previous_m + {window} > created_m THEN previous_m + {window}
                    ELSE created_m END AS buyer_counted_from_m,
               count(*) AS buyer_months,
               count(*) FILTER (WHERE previous_m IS NULL) AS first_buyer_months,
               sum(value_usd * value_usd) AS value_sq_usd,
               {pair_sums}
        FROM ({buyer_months_sql})
        GROUP BY ALL
    """
    # DECIMAL(38, 12) throughout: exact, so the sum does not depend on the addition order.
    pairs_in_window = " + ".join(
        f"coalesce(sum(pair_value_{k}m_usd) FILTER (WHERE created_m + {k} <= cal.as_of_m), 0)"
        for k in later_months
    )
    engine.create_temp_table("rolled_buyers", f"""
        SELECT cal.as_of_m, bucket.supplier_key,
               coalesce(sum(buyer_months) FILTER (WHERE buyer_counted_from_m <= cal.as_of_m), 0) AS buyers_6m,
               sum(first_buyer_months) AS first_orders_6m,
               sum(value_sq_usd) + 2 * ({pairs_in_window}) AS buyer_value_sq_6m
        FROM {roll_onto_month_ends(bucket_sql, 'created_m', window, keyed=True)}
        GROUP BY ALL
    """)


def create_inquiry_facts(engine: FeatureEngine, schema: str) -> None:
    """The inquiries keyed once (``inquiry_facts``)."""
    engine.create_temp_table("inquiry_facts", keyed_facts_sql(
        inquiry_fact_columns_sql(), f"{schema}.inquiries", "received_at IS NOT NULL"))


# Response times are whole microseconds (exact, an integer sort key) until divided into
# hours; the in-process path divides in numpy, the same IEEE division.
RESPONSE_MICROSECONDS_SQL = "date_diff('microsecond', received_at, first_response_at)"
MICROSECONDS_PER_HOUR = 3600e6


def inquiry_fact_columns_sql(response: str = "hours") -> str:
    """The inquiry columns the features read; the response time in ``hours`` or, for a
    reader that sorts on it, exact ``microseconds``."""
    mi = month_index_sql
    response_sql = (f"{RESPONSE_MICROSECONDS_SQL} AS response_us" if response == "microseconds"
                    else f"{RESPONSE_MICROSECONDS_SQL} / {MICROSECONDS_PER_HOUR} AS response_hours")
    return f"""CAST({mi('received_at')} AS INTEGER) AS received_m,
            CAST({mi('first_response_at')} AS INTEGER) AS answered_m,
            {response_sql}"""


# The response-time quantiles: median and 90th percentile of the hours to the first answer,
# over the inquiries received in the six-month window and answered by T.
RESPONSE_TIME_QUANTILES = {"median_response_hours_6m": 0.5, "p90_response_hours_6m": 0.9}
RESPONSE_TIME_WINDOW_MONTHS = SIX_MONTHS


def create_rolled_response_times_sql(engine: FeatureEngine) -> None:
    """The definition in SQL: each answered inquiry is placed on the at most six month
    ends whose window holds its received month and that are not before its answer month
    (a bounded linear fan-out), and the engine's exact ``quantile_cont`` collects them.
    Used by engines that are not in process (Spark)."""
    response_sql = "SELECT * FROM inquiry_facts WHERE answered_m IS NOT NULL"
    fractions = ", ".join(str(q) for q in RESPONSE_TIME_QUANTILES.values())
    picks = ",\n".join(f"response_hours_quantiles[{slot + 1}] AS {name}"
                        for slot, name in enumerate(RESPONSE_TIME_QUANTILES))
    engine.create_temp_table("rolled_response_times", f"""
        SELECT as_of_m, supplier_key,
               {picks}
        FROM (
            SELECT cal.as_of_m, bucket.supplier_key,
                   quantile_cont(response_hours, [{fractions}]) AS response_hours_quantiles
            FROM {roll_onto_month_ends(response_sql, 'received_m', RESPONSE_TIME_WINDOW_MONTHS, keyed=True)}
            WHERE answered_m <= cal.as_of_m
            GROUP BY ALL
        )
    """)


def create_supplier_calendar(engine: FeatureEngine, schema: str) -> None:
    """One row per (as_of_date, supplier) for suppliers whose ``joined_at`` is known by T,
    with the supplier attributes. This is a suppliers x month-ends product (small), the
    spine every feature is joined onto. Also ``supplier_keys``: a dense integer key per
    supplier in supplier_id order, the join key of all rolled tables."""
    mi = month_index_sql
    engine.create_temp_table("supplier_keys", f"""
        SELECT supplier_id, CAST(row_number() OVER (ORDER BY supplier_id) AS INTEGER) AS supplier_key,
               country, membership_tier, category, joined_at, assurance_opt_in_at
        FROM {schema}.suppliers
        WHERE joined_at IS NOT NULL
    """)
    engine.create_temp_table("supplier_calendar", f"""
        SELECT cal.as_of_date, cal.as_of_m, s.supplier_key, s.supplier_id,
               -- output position, so the wide result is ordered by one integer at the end
               row_number() OVER (ORDER BY cal.as_of_m, s.supplier_key) AS output_position,
               s.country, s.membership_tier, s.category,
               CAST(cal.as_of_m - {mi('s.joined_at')} AS INTEGER) AS tenure_months,
               coalesce(s.assurance_opt_in_at < CAST(cal.as_of_date AS TIMESTAMP) + INTERVAL 1 DAY, false) AS opted_in
        FROM supplier_keys AS s
        JOIN as_of_calendar AS cal ON {mi('s.joined_at')} <= cal.as_of_m
    """)


# --- positions open at T ------------------------------------------------------------------
# Stocks rather than windows: what is still pending at the end of day T. A breach is a
# dispute *resolved* for the buyer, so disputes open at T and orders already overdue at T
# are the breaches most likely to land in the next months.


def pending_at_month_ends(bucket_sql: str, from_column: str, until_column: str, sums: dict[str, str],
                          keyed: bool = False) -> str:
    """SELECT summing the bucket columns of ``sums`` (output column -> bucket column) over
    the buckets pending at each requested month end: from the month ``from_column`` up
    to, not including, the month ``until_column`` (NULL: still pending). A range join, so
    only for buckets of the few events that stay pending across a month end. ``keyed``:
    the buckets already carry ``supplier_key``."""
    key_join = "" if keyed else "JOIN supplier_keys AS keys ON keys.supplier_id = bucket.supplier_id"
    supplier_key = "bucket.supplier_key" if keyed else "keys.supplier_key"
    totals = ", ".join(f"sum(bucket.{column}) AS {output}" for output, column in sums.items())
    return f"""
        SELECT cal.as_of_m, {supplier_key} AS supplier_key, {totals}
        FROM ({bucket_sql}) AS bucket
        {key_join}
        JOIN as_of_calendar AS cal
          ON bucket.{from_column} <= cal.as_of_m
         AND (bucket.{until_column} IS NULL OR bucket.{until_column} > cal.as_of_m)
        GROUP BY cal.as_of_m, {supplier_key}
    """


def create_trading_months(engine: FeatureEngine, schema: str) -> None:
    """How many months of each window the supplier's orders could appear in the data:
    months on or after both its joining month and the month of the first order known by
    T (the start of the extract). Without this a supplier joined long ago looks small in
    the first months of an extract, when its windows are still mostly before the data."""
    mi = month_index_sql
    engine.create_temp_table("trading_months", f"""
        WITH first_order AS (SELECT min({mi('created_at')}) AS first_m FROM {schema}.orders)
        SELECT cal.as_of_m, cal.supplier_key,
               CAST(greatest(0, least({SIX_MONTHS}, cal.tenure_months + 1,
                                      cal.as_of_m - coalesce(f.first_m, cal.as_of_m + 1) + 1)) AS BIGINT)
                   AS trading_months_6m,
               CAST(greatest(0, least({TWELVE_MONTHS}, cal.tenure_months + 1,
                                      cal.as_of_m - coalesce(f.first_m, cal.as_of_m + 1) + 1)) AS BIGINT)
                   AS trading_months_12m
        FROM supplier_calendar AS cal
        CROSS JOIN first_order AS f
    """)
