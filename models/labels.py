"""Forward-looking labels: breaches, loss rate and default in the six months after T.

docs/design.md §4: a *breach* is a dispute on the supplier's orders that was resolved in the
buyer's favour (``outcome = 'buyer_favored'``), counted with its refund, whose resolution
falls in the label window ``(T, T + 6 months]``.

Exact boundaries (timestamps are naive UTC, as everywhere in the warehouse):

* "After T" means after the *end of day* T, so the window opens at ``T + 1 day`` 00:00
  inclusive. A dispute resolved at ``T 23:59:59`` was known at T (it is feature material)
  and is not a label; one resolved at ``T + 1 day 00:00:00`` is.
* ``T + 6 months`` is the month end six months later when T is a month end
  (2024-02-29 -> 2024-08-31), otherwise the same day number clipped to the month. The
  window closes at the end of that day: ``resolved_at < (T + 6 months) + 1 day``.
* A dispute still ``open`` (or resolved any other way) is never a breach, whatever its
  dates; a buyer-favoured dispute resolved after the window belongs to a later label.
* ``label_complete`` is true when the whole window has been observed: the date of
  ``data_horizon`` (the newest timestamp seen in the input) is on or after
  ``T + 6 months``. Incomplete months are scored but never trained on.

The population is every supplier that had joined by the end of day T, matching the rows
of ``features.compute_supplier_features``.

Loss rate (docs/design.md §4)
---------------------
* ``forward_order_value_6m_usd``, the exposure: the sum of ``amount_usd`` of the supplier's
  orders *created* in the window (``created_at`` in ``[T + 1 day, window end + 1 day)``,
  the same boundaries as the breach label), whatever their status. Known from the orders
  alone, so never NULL (0 when the supplier took no order). Not ``order_value_6m_usd``:
  that name is the feature over the six months *before* T, and a label must never share
  a feature's name in the training set.
* ``breach_refund_usd_6m`` (all reasons, 'other' included), ``pre_shipment_refund_usd_6m``
  (late_shipment, not_received) and ``post_delivery_refund_usd_6m`` (quality): the
  refunds of buyer-won disputes *resolved* in the window, on any of the supplier's orders
  (also orders created before T).
* ``realised_loss_rate_6m`` = breach_refund_usd_6m / forward_order_value_6m_usd, and
  ``realised_loss_rate_pre_shipment_6m`` / ``realised_loss_rate_post_delivery_6m`` likewise: refund dollars
  per dollar of order value taken in the same window. NULL when the exposure is 0.

Default ("stops fulfilling", docs/design.md §4)
--------------------------------------
An order's *promised day* is the day of ``promised_ship_by`` or, when the source has no
promise, of ``created_at + DEFAULT_PROMISE_LEAD_DAYS``. Its *deadline* is the end of
``promised day + DEFAULT_GRACE_DAYS``.

* ``orders_due_6m``: the supplier's orders whose promised day lies in
  ``(T, window end - DEFAULT_GRACE_DAYS]``, i.e. orders falling due in the window whose
  whole grace period also ends inside it (orders promised in the window's last
  ``DEFAULT_GRACE_DAYS`` days fall due in later windows). Orders cancelled by the buyer
  are not counted: the buyer withdrew, the supplier had nothing to fulfil.
* ``failed_orders_due_6m``: of those, the orders that
  - were cancelled by the supplier or the platform (``cancelled_by``), or
  - have no ``shipped_at`` before their deadline (never shipped, shipped after it, or
    cancelled with no recorded canceller), or
  - have a buyer-won ``not_received`` dispute resolved by the end of the window.
* ``default_6m``: ``orders_due_6m >= DEFAULT_MIN_ORDERS_DUE`` and
  ``failed_orders_due_6m >= DEFAULT_FAILED_SHARE * orders_due_6m``.

Every part is decided by the end of the window, so ``label_complete`` means the same as
for the breach label: the deadline of every counted order is on or before the window
end, and disputes count only when resolved by then. A label is *closed* at its window
end: nothing timestamped after it can change it, so a model vintage trained as of V on
labels whose window ends by V saw only what was known at V (``models/vintages.py``). So
orders created after the window end never count, and a cancellation (by anyone) counts
only when its ``cancelled_at`` falls before the window end; a source without
``cancelled_at`` (an optional column) has its cancellations counted as recorded, when
they happened being unknown. Without a disputes table the default is computed from the
orders alone (the ``not_received`` part is skipped) and is not NULL; the refunds and loss
rates are NULL, and ``label_complete`` is false as for the breach label.

Performance outcomes (a source without claims)
----------------------------------------------
Everything above is the ``claims`` definition. A landing zone may declare ``performance``
outcomes in its manifest (``data_contracts/outcomes.py`` has the rules, their defaults and
why); the ingest records the definition beside the validated tables and the labels follow
it. Then an order of the supplier (not cancelled by the buyer) *fails*, once, at the first
of: its shipping deadline passing unshipped (end of promised day + grace; a delivery proves
a shipment when the carrier scan is missing), its delivery deadline passing undelivered,
its cancellation by the supplier or platform (at ``cancelled_at``, else at the shipping
deadline), a review of ``low_rating_at_most`` stars or fewer (at the review).

* ``breach_6m`` / ``breach_count_6m``: orders failing in the window, on any of the
  supplier's orders (also those created before T), boundaries as above.
* ``breach_refund_usd_6m``: ``refund_share`` of their amounts (exact sums); the pre-shipment
  cover takes late, undelivered, cancelled and low ratings given before delivery, the
  post-delivery cover low ratings of delivered goods. The exposure and the loss rates are
  defined as for claims.
* ``default_6m``: as above, with the declared grace for the due window and, as a failure,
  any pre-shipment failure known by the window's end (a low rating is no default).
* Labels are never NULL for want of a disputes table; ``label_complete`` is the window's.

Every failure is dated by when it became known (a deadline passing, a cancellation, a
review), so a failure known at T is a feature of T, never its label.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa

from data_contracts.outcomes import OutcomeDefinition, read_outcome_definition
from features.window_aggregates import NO_DISPUTES_SQL
from features.sql_engine import duckdb_table_exists

LABEL_HORIZON_MONTHS = 6
BREACH_OUTCOME = "buyer_favored"
# A buyer-won dispute before or instead of shipment is a pre-shipment failure; one about
# the goods received is post-delivery. 'other' counts as a breach but as neither kind.
PRE_SHIPMENT_REASONS = ("late_shipment", "not_received")
POST_DELIVERY_REASONS = ("quality",)
# The default label (module docstring). The generator's truth mirrors these values.
DEFAULT_GRACE_DAYS = 14
DEFAULT_PROMISE_LEAD_DAYS = 14  # assumed promise when promised_ship_by is NULL
DEFAULT_MIN_ORDERS_DUE = 3
DEFAULT_FAILED_SHARE = 0.5
# A failed delivery recorded as a claim: counts as a failure of the order falling due.
NOT_RECEIVED_REASON = "not_received"
SUPPLIER_SIDE_CANCELLERS = ("supplier", "platform")

# Dollar sums are exact (micro-dollar decimals, order-independent), then DOUBLE: a float
# sum depends on the order DuckDB's threads add rows in, and a last-bit difference would
# change the training data's fingerprint, so an unchanged rerun would retrain.
EXACT_USD = "DECIMAL(38, 6)"

LABEL_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("supplier_id", pa.string()),
        ("breach_6m", pa.bool_()),
        ("breach_count_6m", pa.int64()),
        ("breach_refund_usd_6m", pa.float64()),
        ("pre_shipment_breach_6m", pa.bool_()),
        ("post_delivery_breach_6m", pa.bool_()),
        ("forward_order_value_6m_usd", pa.float64()),
        ("pre_shipment_refund_usd_6m", pa.float64()),
        ("post_delivery_refund_usd_6m", pa.float64()),
        ("realised_loss_rate_6m", pa.float64()),
        ("realised_loss_rate_pre_shipment_6m", pa.float64()),
        ("realised_loss_rate_post_delivery_6m", pa.float64()),
        ("orders_due_6m", pa.int64()),
        ("failed_orders_due_6m", pa.int64()),
        ("default_6m", pa.bool_()),
        ("label_window_end", pa.date32()),
        ("label_complete", pa.bool_()),
    ]
)

_label_view_counter = itertools.count()


def add_months(day: date, months: int) -> date:
    """``day`` shifted by ``months``; a month end maps to the month end."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        return date(year, month, last_day)
    return date(year, month, min(day.day, last_day))


def label_window_end(as_of_date: date) -> date:
    """The last day (inclusive, end of day) of the label window of ``as_of_date``."""
    return add_months(as_of_date, LABEL_HORIZON_MONTHS)


def is_label_complete(as_of_date: date, data_horizon: date | datetime) -> bool:
    horizon_day = data_horizon.date() if isinstance(data_horizon, datetime) else data_horizon
    return label_window_end(as_of_date) <= horizon_day


def observed_data_horizon(con: duckdb.DuckDBPyConnection, schema: str = "validated") -> datetime | None:
    """The newest event timestamp in the validated orders and disputes (None when empty)."""
    row = con.execute(
        f"""
        SELECT greatest(
            (SELECT max(greatest(created_at, coalesce(shipped_at, created_at),
                                 coalesce(delivered_at, created_at))) FROM {schema}.orders),
            (SELECT max(greatest(opened_at, coalesce(resolved_at, opened_at))) FROM {schema}.disputes)
        )
        """
    ).fetchone()
    return row[0] if row else None


def compute_breach_labels(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    schema: str = "validated",
    data_horizon: date | datetime | None = None,
    *,
    outcomes: OutcomeDefinition | None = None,
) -> pa.Table:
    """One label row per (as_of_date, supplier joined by T); see the module docstring.

    ``data_horizon`` should be the ingest report's horizon (newest timestamp seen); when
    omitted it is read from the validated orders and disputes. ``outcomes`` is the outcome
    definition the labels follow; by default the one the landing zone declared, recorded
    beside the validated tables (``claims`` when it declared none).
    """
    as_of_dates = sorted({_as_date(d) for d in as_of_dates})
    if not as_of_dates:
        return LABEL_SCHEMA.empty_table()
    if outcomes is None:
        outcomes = read_outcome_definition(con, schema)
    if data_horizon is None:
        data_horizon = observed_data_horizon(con, schema)
    # Orders fall due in a window when their shipping deadline (promised day + grace) ends in it.
    due_grace_days = (outcomes.late_shipment_grace_days or 0) if outcomes.is_performance else DEFAULT_GRACE_DAYS
    periods = pa.table(
        {
            "as_of_date": pa.array(as_of_dates, pa.date32()),
            "window_start": pa.array(
                [datetime.combine(d + timedelta(days=1), datetime.min.time()) for d in as_of_dates],
                pa.timestamp("us"),
            ),
            "window_end_exclusive": pa.array(
                [
                    datetime.combine(label_window_end(d) + timedelta(days=1), datetime.min.time())
                    for d in as_of_dates
                ],
                pa.timestamp("us"),
            ),
            "due_end_exclusive": pa.array(
                [
                    datetime.combine(
                        label_window_end(d) + timedelta(days=1 - due_grace_days), datetime.min.time()
                    )
                    for d in as_of_dates
                ],
                pa.timestamp("us"),
            ),
            "label_window_end": pa.array([label_window_end(d) for d in as_of_dates], pa.date32()),
            "label_complete": pa.array(
                [data_horizon is not None and is_label_complete(d, data_horizon) for d in as_of_dates],
                pa.bool_(),
            ),
        }
    )
    view = f"_label_periods_{next(_label_view_counter)}"
    if outcomes.is_performance:
        # Outcomes come from the orders (and reviews) themselves: always recorded.
        recorded = True
        outcome_ctes = _performance_outcome_ctes(con, schema, view, outcomes)
    else:
        # Without a disputes table (a source that records none) an outcome is unknown, not
        # "no breach": labels are NULL and never complete, so nothing is trained on them.
        recorded = duckdb_table_exists(con, schema, "disputes")
        outcome_ctes = _claims_outcome_ctes(schema, view, recorded, orders_with_cancel_time(con, schema))
    con.register(view, periods)
    try:
        table = con.execute(
            f"""
            WITH {outcome_ctes},
            exposure AS (
                SELECT p.as_of_date, o.supplier_id, sum(o.amount_usd::{EXACT_USD})::DOUBLE AS order_value_usd
                FROM {schema}.orders AS o
                JOIN {view} AS p
                  ON o.created_at >= p.window_start
                 AND o.created_at < p.window_end_exclusive
                GROUP BY p.as_of_date, o.supplier_id
            )
            SELECT p.as_of_date,
                   s.supplier_id,
                   CASE WHEN {recorded} THEN coalesce(b.breach_count, 0) > 0 END AS breach_6m,
                   CASE WHEN {recorded} THEN coalesce(b.breach_count, 0) END::BIGINT AS breach_count_6m,
                   CASE WHEN {recorded} THEN coalesce(b.refund_usd, 0.0) END::DOUBLE AS breach_refund_usd_6m,
                   CASE WHEN {recorded} THEN coalesce(b.pre_shipment, false) END AS pre_shipment_breach_6m,
                   CASE WHEN {recorded} THEN coalesce(b.post_delivery, false) END AS post_delivery_breach_6m,
                   coalesce(e.order_value_usd, 0.0)::DOUBLE AS forward_order_value_6m_usd,
                   CASE WHEN {recorded} THEN coalesce(b.pre_refund_usd, 0.0) END::DOUBLE AS pre_shipment_refund_usd_6m,
                   CASE WHEN {recorded} THEN coalesce(b.post_refund_usd, 0.0) END::DOUBLE AS post_delivery_refund_usd_6m,
                   breach_refund_usd_6m / nullif(forward_order_value_6m_usd, 0.0) AS realised_loss_rate_6m,
                   pre_shipment_refund_usd_6m / nullif(forward_order_value_6m_usd, 0.0) AS realised_loss_rate_pre_shipment_6m,
                   post_delivery_refund_usd_6m / nullif(forward_order_value_6m_usd, 0.0) AS realised_loss_rate_post_delivery_6m,
                   coalesce(u.orders_due, 0)::BIGINT AS orders_due_6m,
                   coalesce(u.failed, 0)::BIGINT AS failed_orders_due_6m,
                   orders_due_6m >= {DEFAULT_MIN_ORDERS_DUE}
                       AND failed_orders_due_6m >= {DEFAULT_FAILED_SHARE} * orders_due_6m AS default_6m,
                   p.label_window_end,
                   {recorded} AND p.label_complete AS label_complete
            FROM {view} AS p
            JOIN {schema}.suppliers AS s ON s.joined_at < p.window_start
            LEFT JOIN breaches AS b
              ON b.as_of_date = p.as_of_date AND b.supplier_id = s.supplier_id
            LEFT JOIN exposure AS e
              ON e.as_of_date = p.as_of_date AND e.supplier_id = s.supplier_id
            LEFT JOIN due AS u
              ON u.as_of_date = p.as_of_date AND u.supplier_id = s.supplier_id
            ORDER BY p.as_of_date, s.supplier_id
            """
        ).fetch_arrow_table()
    finally:
        con.unregister(view)
    return table.cast(LABEL_SCHEMA)


def orders_with_cancel_time(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    """The orders relation with a ``cancelled_at`` column: a null one for orders without that
    optional column (a source that records no cancellation times: its cancellations count
    as recorded, when unknown)."""
    present = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' "
        "AND column_name = 'cancelled_at'", [schema]
    ).fetchone()[0] > 0
    return f"{schema}.orders" if present else f"(SELECT *, NULL::TIMESTAMP AS cancelled_at FROM {schema}.orders)"


def _promised_orders_cte(orders: str, columns: str) -> str:
    """``promised``: the supplier's orders with their promised ship day (module docstring) and
    when the buyer withdrew the order, if it did (``buyer_cancelled_at``; -infinity when the
    time is unknown: withdrawn all along). Labels are closed at their window end, so a
    withdrawal counts only once known (``_orders_due_cte``, the performance failures)."""
    return f"""promised AS (
                SELECT order_id, supplier_id, created_at, {columns},
                       CASE WHEN cancelled_by = 'buyer' THEN coalesce(cancelled_at, '-infinity'::TIMESTAMP) END
                           AS buyer_cancelled_at,
                       date_trunc('day', coalesce(
                           promised_ship_by, created_at + INTERVAL {DEFAULT_PROMISE_LEAD_DAYS} DAY
                       ))::TIMESTAMP AS promised_day
                FROM {orders} AS orders
            )"""


def _orders_due_cte(view: str, failed: str, failures_joined: str) -> str:
    """``due``: per window, the promised orders falling due in it (their shipping deadline ends
    inside it) and how many of them failed (``failed``, a condition on ``o``, ``p`` and the
    per-order ``failures_joined``)."""
    return f"""due AS (
                SELECT p.as_of_date, o.supplier_id,
                       count(*) AS orders_due,
                       count(*) FILTER (WHERE {failed}) AS failed
                FROM promised AS o
                JOIN {view} AS p
                  ON o.promised_day >= p.window_start
                 AND o.promised_day < p.due_end_exclusive
                 -- closed at the window end: later orders and later withdrawals do not count
                 AND o.created_at < p.window_end_exclusive
                 AND NOT coalesce(o.buyer_cancelled_at < p.window_end_exclusive, false)
                LEFT JOIN {failures_joined} USING (order_id)
                GROUP BY p.as_of_date, o.supplier_id
            )"""


def _claims_outcome_ctes(schema: str, view: str, recorded: bool, orders: str) -> str:
    """``breaches`` (buyer-won disputes resolved in the window) and ``due`` (orders falling due
    and those that failed) under the claims definition."""
    pre = ", ".join(f"'{r}'" for r in PRE_SHIPMENT_REASONS)
    post = ", ".join(f"'{r}'" for r in POST_DELIVERY_REASONS)
    suppliers_side = ", ".join(f"'{c}'" for c in SUPPLIER_SIDE_CANCELLERS)
    disputes = f"{schema}.disputes" if recorded else NO_DISPUTES_SQL
    promised = _promised_orders_cte(orders, "shipped_at, cancelled_by, cancelled_at")
    # A cancellation counts once known by the window's end (always, when its time is unknown).
    failed = f"""(o.cancelled_by IN ({suppliers_side}) AND coalesce(o.cancelled_at < p.window_end_exclusive, true))
                              OR o.shipped_at IS NULL
                              OR o.shipped_at >= o.promised_day + INTERVAL {DEFAULT_GRACE_DAYS + 1} DAY
                              OR coalesce(n.won_at < p.window_end_exclusive, false)"""
    due = _orders_due_cte(view, failed, "not_received AS n")
    return f"""
            breaches AS (
                SELECT p.as_of_date, o.supplier_id,
                       count(*) AS breach_count,
                       sum(d.refund_usd::{EXACT_USD})::DOUBLE AS refund_usd,
                       sum(d.refund_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({pre}))::DOUBLE AS pre_refund_usd,
                       sum(d.refund_usd::{EXACT_USD}) FILTER (WHERE d.reason IN ({post}))::DOUBLE AS post_refund_usd,
                       bool_or(d.reason IN ({pre})) AS pre_shipment,
                       bool_or(d.reason IN ({post})) AS post_delivery
                FROM {disputes} AS d
                JOIN {schema}.orders AS o USING (order_id)
                JOIN {view} AS p
                  ON d.resolved_at >= p.window_start
                 AND d.resolved_at < p.window_end_exclusive
                WHERE d.outcome = '{BREACH_OUTCOME}'
                GROUP BY p.as_of_date, o.supplier_id
            ),
            not_received AS (
                -- the first buyer-won not_received claim of each order
                SELECT order_id, min(resolved_at) AS won_at
                FROM {disputes}
                WHERE outcome = '{BREACH_OUTCOME}' AND reason = '{NOT_RECEIVED_REASON}'
                GROUP BY order_id
            ),
            {promised},
            {due}"""


def _performance_outcome_ctes(
    con: duckdb.DuckDBPyConnection, schema: str, view: str, outcomes: OutcomeDefinition
) -> str:
    """``breaches`` and ``due`` under the performance definition (``data_contracts.outcomes``):
    each order fails once, at the first of its failure events, and costs ``refund_share`` of
    its amount under the cover of that event."""
    if outcomes.needs_reviews and not duckdb_table_exists(con, schema, "reviews"):
        raise ValueError(
            f"outcomes {outcomes.canonical()} count low ratings but {schema}.reviews does not exist: "
            "deliver reviews or set low_rating_at_most to null in the manifest"
        )
    suppliers_side = ", ".join(f"'{c}'" for c in SUPPLIER_SIDE_CANCELLERS)
    grace = outcomes.late_shipment_grace_days
    # The end of the promised day plus grace; with the late rule off, the end of the promised
    # day dates a supplier cancellation that carries no cancelled_at.
    ship_deadline = f"promised_day + INTERVAL {(grace or 0) + 1} DAY"
    # A delivery proves a shipment even where the carrier scan (shipped_at) is missing.
    shipped = "coalesce(shipped_at, delivered_at)"
    late = (
        f"CASE WHEN {shipped} IS NULL OR {shipped} >= {ship_deadline} THEN {ship_deadline} END"
        if grace is not None else "NULL::TIMESTAMP"
    )
    undelivered_days = outcomes.not_delivered_after_days
    delivery_deadline = f"promised_day + INTERVAL {(undelivered_days or 0) + 1} DAY"
    undelivered = (
        f"CASE WHEN delivered_at IS NULL OR delivered_at >= {delivery_deadline} THEN {delivery_deadline} END"
        if undelivered_days is not None else "NULL::TIMESTAMP"
    )
    cancelled = (
        f"CASE WHEN cancelled_by IN ({suppliers_side}) THEN coalesce(cancelled_at, {ship_deadline}) END"
        if outcomes.supplier_cancelled else "NULL::TIMESTAMP"
    )
    if outcomes.low_rating_at_most is not None:
        low_ratings = f"""(SELECT order_id, min(created_at) AS rated_at FROM {schema}.reviews
                          WHERE rating <= {outcomes.low_rating_at_most} GROUP BY order_id)"""
    else:
        low_ratings = "(SELECT NULL::VARCHAR AS order_id, NULL::TIMESTAMP AS rated_at WHERE false)"
    share = "" if outcomes.refund_share == 1.0 else f" * {outcomes.refund_share!r}"

    def refunds(condition: str = "") -> str:
        # exact micro-dollar sum first (order-independent), then the refunded share
        return f"sum(f.amount_usd::{EXACT_USD}){condition}::DOUBLE{share}"

    return f"""
            {_promised_orders_cte(orders_with_cancel_time(con, schema),
                                  "amount_usd, shipped_at, delivered_at, cancelled_by, cancelled_at")},
            candidate_failure_events AS (
                SELECT o.order_id, o.supplier_id, o.amount_usd, o.promised_day, o.buyer_cancelled_at,
                       least({late}, {undelivered}, {cancelled}) AS pre_shipment_failed_at,
                       r.rated_at,
                       -- a low rating before the goods arrived complains of non-receipt
                       r.rated_at IS NOT NULL AND (o.delivered_at IS NULL OR o.delivered_at > r.rated_at)
                           AS rated_before_delivery
                FROM promised AS o
                LEFT JOIN {low_ratings} AS r USING (order_id)
            ),
            failure_events AS (
                -- an order the buyer withdrew before it failed never fails; a withdrawal after the
                -- failure (perhaps after the window) changes nothing known at the window end
                SELECT * FROM candidate_failure_events
                WHERE buyer_cancelled_at IS NULL OR buyer_cancelled_at > least(pre_shipment_failed_at, rated_at)
            ),
            failures AS (
                SELECT order_id, supplier_id, amount_usd, promised_day, pre_shipment_failed_at,
                       least(pre_shipment_failed_at, rated_at) AS failed_at,
                       -- the cover of the first event; a tie goes to pre-shipment
                       coalesce(pre_shipment_failed_at <= rated_at, pre_shipment_failed_at IS NOT NULL)
                           OR rated_before_delivery AS pre_shipment
                FROM failure_events
                WHERE pre_shipment_failed_at IS NOT NULL OR rated_at IS NOT NULL
            ),
            breaches AS (
                SELECT p.as_of_date, f.supplier_id,
                       count(*) AS breach_count,
                       {refunds()} AS refund_usd,
                       {refunds(" FILTER (WHERE f.pre_shipment)")} AS pre_refund_usd,
                       {refunds(" FILTER (WHERE NOT f.pre_shipment)")} AS post_refund_usd,
                       bool_or(f.pre_shipment) AS pre_shipment,
                       bool_or(NOT f.pre_shipment) AS post_delivery
                FROM failures AS f
                JOIN {view} AS p
                  ON f.failed_at >= p.window_start
                 AND f.failed_at < p.window_end_exclusive
                GROUP BY p.as_of_date, f.supplier_id
            ),
            {_orders_due_cte(view, "f.pre_shipment_failed_at < p.window_end_exclusive", "failures AS f")}"""


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
