"""Every feature column declared once, in output order.

A windowed count or sum is a ``WindowedStatistic``: the event stream it reads, the
filter, the month the event enters a window and the months that delay or end its
counting, the window's length in months, and the weight. From that one declaration come

* the in-process computation (``features.event_intervals``: the activity interval
  ``[start_m, end_m)`` summed by ``features.window_totals``);
* the SQL that Spark runs and DuckDB can run as a cross-check
  (``features.window_aggregates.create_rolled_statistics``);
* the catalogue entry (``FeatureSpec``, rendered to ``docs/feature_catalogue.md``).

A rate of two columns is a ``Ratio`` (with its empirically shrunk twin unless told
otherwise). The few columns whose computation is not an interval sum (attributes,
buyers, response-time quantiles, trading months and the figures derived from them) are
plain ``FeatureSpec`` entries here, computed by hand-written code in
``features.supplier_features`` and ``features.window_aggregates``.

The activity interval of a statistic, in month indices (``features.windows``; a month
that is not known is NULL, which never starts and never ends an interval):

    start_m = max(enters + lag_months, *known_from)
    end_m   = min(enters + lag_months + window_months, *until)     (no window: min(*until))

An event counts at month end T when ``start_m <= T < end_m``. So "orders created in the
six-month window" enters at ``created_m`` with a window of 6; "completed" is the same
order counted from ``delivered_m`` on (``known_from``) until its cancellation became
known (``until``); an open dispute has no window and counts from ``opened_m`` until
``resolved_m``.

Time conventions for every definition: T is the as-of month end; "by T" means a
timestamp before the end of day T; the N-month window is the N calendar months ending
with T's month. Rates named ``*_shrunk`` are empirical-Bayes estimates
``(k + a * p) / (n + a)`` with ``p`` the population rate (sum of k over sum of n across
all suppliers at the same T) and ``a`` = ``SHRINKAGE_PRIOR_STRENGTH``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Empirical-Bayes prior strength: a shrunk rate is (k + a * p) / (n + a), with p the
# population rate over all suppliers at the same T. a = 20 means a supplier needs about
# twenty observations before its own history weighs as much as the population's; with
# typical monthly volumes that is one to three months of trading.
SHRINKAGE_PRIOR_STRENGTH = 20.0


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    window: str  # "3m", "6m", "12m", "1m", "all" (everything known by T), "static"
    dtype: str  # DuckDB type of the column
    definition: str  # one sentence
    null_meaning: str  # what a NULL in this column means ("never null" if it cannot be)
    risk_direction: int  # +1 higher is riskier, -1 higher is safer, 0 unknown / not monotone
    model_input: bool


NEVER_NULL = "never null"
NO_INQUIRIES = "no inquiries table in the landing zone"
NO_REVIEWS = "no reviews table in the landing zone"
NO_DISPUTES = "no disputes table in the landing zone"

# Event streams a statistic can read, and the validated table each needs beyond orders
# (absent: the statistic is NULL, unknown rather than 0). Their columns are the facts in
# ``features.window_aggregates`` (``*_stream_columns_sql``); month columns end in ``_m``,
# flags are booleans, money columns end in ``_usd``.
STREAM_SOURCES: dict[str, str | None] = {
    "orders": None,  # order_facts: created_m, delivered_m, cancelled_m, promised_m, shipped_m, flags, amount_usd
    "disputed_orders": "disputes",  # one row per disputed order: created_m and its first dispute's months
    "disputes": "disputes",  # created_m, opened_m, resolved_m, buyer_won, pre_shipment, post_delivery, refund_usd
    "inquiries": "inquiries",  # received_m, answered_m
    "reviews": "reviews",  # review_m, rating, low_rating
}


def is_money(column: str | None) -> bool:
    """Money is summed exactly (decimal in SQL, integer micro-dollars in process)."""
    return column is not None and column.endswith("_usd")


@dataclass(frozen=True)
class WindowedStatistic:
    """One count or sum over an activity interval (module docstring); one output column."""

    name: str
    family: str  # the event family built together (``features.supplier_features.EVENT_FAMILIES``)
    stream: str  # a key of STREAM_SOURCES
    enters: str  # the month column that places the event in a window
    window_months: int | None  # None: a position held at T, counted until ``until``
    definition: str
    weight: str | None = None  # column summed; None counts events
    where: str | None = None  # boolean column: only events where it is true
    known_from: tuple[str, ...] = ()  # month columns the count waits for (latest of them)
    until: tuple[str, ...] = ()  # month columns that end the count (earliest of them)
    lag_months: int = 0  # months after ``enters`` the window opens
    null_meaning: str = NEVER_NULL
    risk_direction: int = 0
    model_input: bool = False

    def __post_init__(self) -> None:
        if self.stream not in STREAM_SOURCES:
            raise ValueError(f"{self.name}: unknown stream {self.stream!r}; one of {sorted(STREAM_SOURCES)}")
        if self.window_months is not None and self.window_months < 1:
            raise ValueError(f"{self.name}: window_months must be at least 1 (or None for a position at T)")
        if self.window_months is None and (self.lag_months or not self.until):
            raise ValueError(f"{self.name}: a position at T needs `until` (when it stops) and no lag")

    @property
    def sql_type(self) -> str:
        return "DOUBLE" if is_money(self.weight) else "BIGINT"

    @property
    def span_months(self) -> int | None:
        """Months from ``enters`` to the end of the window (the SQL's roll width)."""
        return None if self.window_months is None else self.lag_months + self.window_months

    @property
    def source(self) -> str | None:
        return STREAM_SOURCES[self.stream]

    def spec(self) -> FeatureSpec:
        window = "all" if self.window_months is None else f"{self.window_months}m"
        return FeatureSpec(self.name, window, self.sql_type, self.definition, self.null_meaning,
                           self.risk_direction, self.model_input)


@dataclass(frozen=True)
class Ratio:
    """A rate numerator / denominator (NULL over nothing); ``shrunk`` adds the
    empirically shrunk ``<name>_shrunk`` column after it."""

    name: str
    numerator: str
    denominator: str
    window: str
    definition: str
    null_meaning: str
    risk_direction: int
    model_input: bool = True
    shrunk: bool = True

    def specs(self) -> list[FeatureSpec]:
        raw = FeatureSpec(self.name, self.window, "DOUBLE", self.definition, self.null_meaning,
                          self.risk_direction, self.model_input)
        return [raw, _shrunk(raw)] if self.shrunk else [raw]


def _shrunk(rate: FeatureSpec) -> FeatureSpec:
    missing_table = next((t for t in (NO_INQUIRIES, NO_REVIEWS) if t in rate.null_meaning), None)
    return FeatureSpec(
        name=f"{rate.name}_shrunk",
        window=rate.window,
        dtype="DOUBLE",
        definition=(
            f"`{rate.name}` shrunk toward the population rate at T: (k + a·p) / (n + a) with "
            "the same k and n, p their ratio summed over all suppliers at T, a = 20."
        ),
        null_meaning="no supplier at T has any observation (population rate undefined)"
        + (f", or {missing_table}" if missing_table else ""),
        risk_direction=rate.risk_direction,
        model_input=rate.model_input,
    )


def _bespoke(name: str, window: str, definition: str, null_meaning: str = NEVER_NULL, dtype: str = "BIGINT",
             risk_direction: int = 0, model_input: bool = False) -> FeatureSpec:
    return FeatureSpec(name, window, dtype, definition, null_meaning, risk_direction, model_input)


def _rate(name: str, window: str, definition: str, null_meaning: str, risk_direction: int,
          model_input: bool = True) -> FeatureSpec:
    return FeatureSpec(name, window, "DOUBLE", definition, null_meaning, risk_direction, model_input)


# --- shorthands for the declarations below -----------------------------------------------

def _order_cohort(name: str, months: int, definition: str, **kwargs) -> WindowedStatistic:
    """Orders created in the window (``enters`` created_m)."""
    return WindowedStatistic(name, "order_cohorts", "orders", "created_m", months, definition, **kwargs)


def _disputed_cohort(name: str, months: int, first_dispute: str, definition: str) -> WindowedStatistic:
    """Orders created in the window, counted from the month of their first dispute."""
    return WindowedStatistic(name, "order_cohorts", "disputed_orders", "created_m", months, definition,
                             known_from=(first_dispute,), null_meaning=NO_DISPUTES)


def _promised(name: str, months: int, definition: str, **kwargs) -> WindowedStatistic:
    return WindowedStatistic(name, "promised_shipments", "orders", "promised_m", months, definition, **kwargs)


def _windows(months: int) -> str:
    return {3: "three-month", 6: "six-month", 12: "twelve-month"}[months]


def _dispute_ratio(months: int, name: str = "dispute_ratio", numerator: str = "disputed_orders",
                   which: str = "a dispute (any reason)", model_input: bool = True) -> Ratio:
    return Ratio(f"{name}_{months}m", f"{numerator}_{months}m", f"orders_{months}m", f"{months}m",
                 f"Of the orders created in the {_windows(months)} window, the share with {which} opened by T.",
                 "no orders created in the window", +1, model_input)


def _on_time_rate(months: int, model_input: bool = True) -> Ratio:
    return Ratio(f"on_time_shipment_rate_{months}m", f"on_time_shipments_{months}m", f"promised_shipments_{months}m",
                 f"{months}m",
                 f"Of the orders whose promised_ship_by falls in the {_windows(months)} window by T, the share "
                 "shipped before the end of their promised day (docs/design.md §5).",
                 "no order had a promised ship day in the window", -1, model_input)


_NOT_CANCELLED = ("cancelled_m",)  # counted until its cancellation became known

Entry = FeatureSpec | WindowedStatistic | Ratio

# The output columns of ``compute_supplier_features``, in order.
CATALOGUE: tuple[Entry, ...] = (
    # --- attributes -------------------------------------------------------------------
    # Country and category are not model inputs: on the synthetic worlds the booster used
    # them to memorise noise (out-of-time AUC -0.006 with them, rolling origins before the
    # evaluation window), and a country new to the programme must not be scored by a
    # category the model never saw. Segment metrics still report every country.
    FeatureSpec("country", "static", "VARCHAR", "Supplier's country (ISO 3166-1 alpha-2).",
                "not given by the supplier", 0, False),
    FeatureSpec("membership_tier", "static", "VARCHAR",
                "Supplier's membership tier (free, gold, verified, unknown, ...).",
                "not given by the supplier", 0, True),
    FeatureSpec("category", "static", "VARCHAR", "Supplier's main product category.",
                "not given by the supplier", 0, False),
    FeatureSpec("tenure_months", "all", "INTEGER",
                "Calendar months from the month of joined_at to T's month (0 in the joining month).",
                NEVER_NULL, -1, True),
    FeatureSpec("opted_in", "all", "BOOLEAN",
                "Whether assurance_opt_in_at is known by T (the supplier volunteered for assurance).",
                NEVER_NULL, 0, False),
    # --- order cohort of the six-month window ---------------------------------------------
    _order_cohort("orders_6m", 6, "Orders created in the six-month window."),
    _order_cohort("order_value_6m_usd", 6, "Sum of amount_usd over the orders created in the six-month window.",
                  weight="amount_usd"),
    _order_cohort("completed_orders_6m", 6,
                  "Orders created in the six-month window that were delivered by T and not cancelled by T "
                  "(cancelled_at by T; a cancellation without cancelled_at counts from the order's creation).",
                  known_from=("delivered_m",), until=_NOT_CANCELLED),
    Ratio("completion_rate_6m", "completed_orders_6m", "orders_6m", "6m",
          "Of the orders created in the six-month window, the share delivered by T and not cancelled by T.",
          "no orders created in the window", -1),
    _order_cohort("supplier_cancelled_orders_6m", 6,
                  "Orders created in the six-month window cancelled by the supplier by T.",
                  where="supplier_cancelled", known_from=("cancelled_m",)),
    Ratio("supplier_cancellation_rate_6m", "supplier_cancelled_orders_6m", "orders_6m", "6m",
          "Of the orders created in the six-month window, the share cancelled by the supplier by T "
          "(status cancelled, cancelled_by supplier, cancelled_at by T; a cancellation without "
          "cancelled_at counts from the order's creation).",
          "no orders created in the window", +1),
    _promised("promised_shipments_6m", 6, "Orders whose promised_ship_by falls in the six-month window by T."),
    _promised("on_time_shipments_6m", 6, "Of those, the orders shipped before the end of their promised day.",
              where="shipped_on_time"),
    _on_time_rate(6),
    # --- disputes ---------------------------------------------------------------------------
    _disputed_cohort("disputed_orders_6m", 6, "any_dispute_m",
                     "Orders created in the six-month window with a dispute (any reason) opened by T."),
    _dispute_ratio(6),
    _disputed_cohort("pre_shipment_disputed_orders_6m", 6, "pre_shipment_dispute_m",
                     "Orders created in the six-month window with a late_shipment or not_received dispute "
                     "opened by T."),
    _dispute_ratio(6, "pre_shipment_dispute_ratio", "pre_shipment_disputed_orders",
                   "a late_shipment or not_received dispute"),
    _disputed_cohort("post_delivery_disputed_orders_6m", 6, "post_delivery_dispute_m",
                     "Orders created in the six-month window with a quality dispute opened by T."),
    _dispute_ratio(6, "post_delivery_dispute_ratio", "post_delivery_disputed_orders", "a quality dispute"),
    WindowedStatistic("resolved_disputes_6m", "dispute_resolutions", "disputes", "resolved_m", 6,
                      "Disputes on the supplier's orders resolved in the six-month window (outcome not open).",
                      null_meaning=NO_DISPUTES),
    WindowedStatistic("buyer_won_disputes_6m", "dispute_resolutions", "disputes", "resolved_m", 6,
                      "Of those, the disputes resolved buyer_favored.", where="buyer_won", null_meaning=NO_DISPUTES),
    Ratio("buyer_won_dispute_share_6m", "buyer_won_disputes_6m", "resolved_disputes_6m", "6m",
          "Of the disputes resolved in the six-month window (resolved_at by T, outcome not open), "
          "the share resolved buyer_favored.",
          "no dispute resolved in the window", +1),
    WindowedStatistic("refund_6m_usd", "dispute_resolutions", "disputes", "created_m", 6,
                      "Sum of refund_usd over disputes resolved by T on orders created in the six-month window.",
                      weight="refund_usd", known_from=("resolved_m",), null_meaning=NO_DISPUTES),
    Ratio("refund_share_6m", "refund_6m_usd", "order_value_6m_usd", "6m",
          "refund_6m_usd divided by order_value_6m_usd (refunded share of the window's order value).",
          "no orders created in the window", +1, shrunk=False),
    # --- inquiries (responsiveness) -------------------------------------------------------
    WindowedStatistic("inquiries_6m", "inquiries", "inquiries", "received_m", 6,
                      "Inquiries received in the six-month window.", null_meaning=NO_INQUIRIES),
    WindowedStatistic("answered_inquiries_6m", "inquiries", "inquiries", "received_m", 6,
                      "Of those, the inquiries with first_response_at by T.", known_from=("answered_m",),
                      null_meaning=NO_INQUIRIES),
    Ratio("response_rate_6m", "answered_inquiries_6m", "inquiries_6m", "6m",
          "Of the inquiries received in the six-month window, the share with first_response_at by T "
          "(docs/design.md §5).",
          f"no inquiries received in the window, or {NO_INQUIRIES}", -1),
    _rate("median_response_hours_6m", "6m",
          "Median of first_response_at − received_at in hours over the inquiries received in the "
          "six-month window and answered by T (docs/design.md §5; interpolated between the middle two).",
          f"no inquiry in the window answered by T, or {NO_INQUIRIES}", +1),
    _rate("p90_response_hours_6m", "6m",
          "90th percentile (linear interpolation) of the same response times.",
          f"no inquiry in the window answered by T, or {NO_INQUIRIES}", +1),
    # --- reviews ----------------------------------------------------------------------------
    WindowedStatistic("review_count_6m", "reviews", "reviews", "review_m", 6,
                      "Reviews created in the six-month window on the supplier's orders.", null_meaning=NO_REVIEWS),
    WindowedStatistic("review_rating_sum_6m", "reviews", "reviews", "review_m", 6,
                      "Sum of their ratings (the numerator of review_mean_6m).", weight="rating",
                      null_meaning=NO_REVIEWS),
    Ratio("review_mean_6m", "review_rating_sum_6m", "review_count_6m", "6m",
          "Mean rating (1..5) of the reviews created in the six-month window on the supplier's orders.",
          f"no reviews created in the window, or {NO_REVIEWS}", -1),
    WindowedStatistic("low_rating_reviews_6m", "reviews", "reviews", "review_m", 6,
                      "Of those reviews, the ones rated 1 or 2 stars.", where="low_rating", null_meaning=NO_REVIEWS),
    Ratio("low_rating_share_6m", "low_rating_reviews_6m", "review_count_6m", "6m",
          "Of the reviews created in the six-month window, the share rated 1 or 2 stars.",
          f"no reviews created in the window, or {NO_REVIEWS}", +1),
    # --- deals over twelve months (storefront) ------------------------------------------------
    WindowedStatistic("deal_count_12m", "deliveries", "orders", "delivered_m", 12,
                      "Orders not cancelled by T whose delivered_at falls in the twelve-month window by T "
                      "(the storefront's transactions_12m).", until=_NOT_CANCELLED),
    WindowedStatistic("deal_value_12m_usd", "deliveries", "orders", "delivered_m", 12,
                      "Sum of amount_usd over those orders.", weight="amount_usd", until=_NOT_CANCELLED),
    WindowedStatistic("assured_deal_value_12m_usd", "deliveries", "orders", "delivered_m", 12,
                      "Sum of amount_usd over those orders that were assured.", weight="amount_usd",
                      where="assured", until=_NOT_CANCELLED),
    Ratio("assured_deal_share_12m", "assured_deal_value_12m_usd", "deal_value_12m_usd", "12m",
          "assured_deal_value_12m_usd divided by deal_value_12m_usd.",
          "no deals in the twelve-month window", 0, shrunk=False),
    # --- momentum -----------------------------------------------------------------------------
    # Orders of the last two months are the ones whose disputes resolve in the next months.
    _order_cohort("orders_this_month", 1, "Orders created in T's calendar month.", model_input=True),
    _order_cohort("orders_previous_month", 1, "Orders created in the calendar month before T's.",
                  lag_months=1, model_input=True),
    _rate("order_growth_mom", "1m",
          "(orders_this_month − orders_previous_month) / orders_previous_month.",
          "no orders in the month before T's", 0),
    # --- buyers ---------------------------------------------------------------------------------
    _bespoke("buyers_6m", "6m", "Distinct buyers of the orders created in the six-month window."),
    _rate("buyer_hhi_6m", "6m",
          "Herfindahl index of order value across buyers over the orders created in the six-month "
          "window: sum over buyers of (buyer's value / total value)^2.",
          "no orders created in the window", 0),
    _bespoke("repeat_orders_6m", "6m",
             "Orders created in the six-month window that were not the buyer's first order with the supplier."),
    Ratio("repeat_buyer_share_6m", "repeat_orders_6m", "orders_6m", "6m",
          "Of the orders created in the six-month window, the share placed by a buyer who had "
          "ordered from the supplier before (ties on created_at broken by order_id).",
          "no orders created in the window", 0),
    # --- payment-method mix ------------------------------------------------------------------
    _order_cohort("payment_method_known_orders_6m", 6, "Orders created in the six-month window with a payment_method.",
                  where="payment_method_known"),
    _order_cohort("tt_orders_6m", 6, "Of those, the orders paid by telegraphic transfer (tt).", where="paid_tt"),
    _order_cohort("credit_card_orders_6m", 6, "Of those, the orders paid by credit_card.", where="paid_credit_card"),
    Ratio("tt_share_6m", "tt_orders_6m", "payment_method_known_orders_6m", "6m",
          "tt_orders_6m divided by payment_method_known_orders_6m.",
          "no order in the window has a payment method", 0, shrunk=False),
    Ratio("credit_card_share_6m", "credit_card_orders_6m", "payment_method_known_orders_6m", "6m",
          "credit_card_orders_6m divided by payment_method_known_orders_6m.",
          "no order in the window has a payment method", 0, shrunk=False),
    # --- open at T ----------------------------------------------------------------------------
    # Positions rather than windows: what is still pending at the end of day T. A breach is
    # a dispute *resolved* for the buyer, so disputes open at T and orders already overdue
    # at T are the breaches most likely to land in the next months.
    WindowedStatistic("open_disputes_at_t", "open_disputes", "disputes", "opened_m", None,
                      "Disputes on the supplier's orders opened by T whose outcome is not known by T (not "
                      "resolved by T, or still open).", until=("resolved_m",), null_meaning=NO_DISPUTES,
                      risk_direction=+1, model_input=True),
    WindowedStatistic("open_pre_shipment_disputes_at_t", "open_disputes", "disputes", "opened_m", None,
                      "Of those open disputes, the ones whose reason is late_shipment or not_received.",
                      where="pre_shipment", until=("resolved_m",), null_meaning=NO_DISPUTES,
                      risk_direction=+1, model_input=True),
    WindowedStatistic("open_post_delivery_disputes_at_t", "open_disputes", "disputes", "opened_m", None,
                      "Of those open disputes, the ones whose reason is quality.",
                      where="post_delivery", until=("resolved_m",), null_meaning=NO_DISPUTES,
                      risk_direction=+1, model_input=True),
    # Overdue from the promised month (once created) until it shipped or its cancellation
    # became known; one that shipped by its promised month is never overdue (empty interval).
    WindowedStatistic("overdue_unshipped_orders_at_t", "overdue_orders", "orders", "promised_m", None,
                      "Orders created by T, not cancelled by T, whose promised_ship_by is by T and that were not "
                      "shipped by T (shipped_at null or after T).",
                      known_from=("created_m",), until=("shipped_m", "cancelled_m"),
                      risk_direction=+1, model_input=True),
    WindowedStatistic("in_transit_orders_at_t", "in_transit_orders", "orders", "shipped_m", None,
                      "Orders created and shipped by T, not delivered by T (delivered_at null or after T) and "
                      "not cancelled by T: goods on their way at T.",
                      known_from=("created_m",), until=("delivered_m", "cancelled_m"), model_input=True),
    WindowedStatistic("late_in_transit_orders_at_t", "in_transit_orders", "orders", "shipped_m", None,
                      "Of those orders in transit, the ones shipped after their promised day had ended (shipped_at "
                      "at or after the midnight following promised_ship_by); an order without promised_ship_by is "
                      "not late.",
                      where="shipped_late", known_from=("created_m",), until=("delivered_m", "cancelled_m"),
                      risk_direction=+1, model_input=True),
    # --- volume per trading month ---------------------------------------------------------------
    _bespoke("trading_months_6m", "6m",
             "Months of the six-month window on or after both the supplier's joining month and the "
             "month of the first order (any supplier's) created by T; 0 when no order is known by T."),
    _bespoke("trading_months_12m", "12m", "The same for the twelve-month window."),
    *(
        _rate(name, window, f"{volume} divided by {months}.",
              "no month of the window is a trading month (trading_months = 0)", 0)
        for name, volume, months, window in (
            ("orders_per_month_6m", "orders_6m", "trading_months_6m", "6m"),
            ("order_value_per_month_6m_usd", "order_value_6m_usd", "trading_months_6m", "6m"),
            ("buyers_per_month_6m", "buyers_6m", "trading_months_6m", "6m"),
            ("reviews_per_month_6m", "review_count_6m", "trading_months_6m", "6m"),
            ("deals_per_month_12m", "deal_count_12m", "trading_months_12m", "12m"),
            ("deal_value_per_month_12m_usd", "deal_value_12m_usd", "trading_months_12m", "12m"),
            ("assured_deal_value_per_month_12m_usd", "assured_deal_value_12m_usd", "trading_months_12m", "12m"),
        )
    ),
    # --- three-month trends ---------------------------------------------------------------
    # The last quarter next to the half year: a supplier whose service turned recently
    # shows it here first. At the end of the output, so earlier columns keep their places.
    # Published, not model inputs: on the rolling origins of two synthetic worlds they did
    # not help the breach model (bench/results/trend_features.md).
    _order_cohort("orders_3m", 3, "Orders created in the three-month window."),
    _disputed_cohort("disputed_orders_3m", 3, "any_dispute_m",
                     "Orders created in the three-month window with a dispute (any reason) opened by T."),
    _dispute_ratio(3, model_input=False),
    _promised("promised_shipments_3m", 3, "Orders whose promised_ship_by falls in the three-month window by T."),
    _promised("on_time_shipments_3m", 3, "Of those, the orders shipped before the end of their promised day.",
              where="shipped_on_time"),
    _on_time_rate(3, model_input=False),
)


def statistics() -> Iterator[WindowedStatistic]:
    return (entry for entry in CATALOGUE if isinstance(entry, WindowedStatistic))


def ratios() -> Iterator[Ratio]:
    return (entry for entry in CATALOGUE if isinstance(entry, Ratio))


def specs_of(entry: Entry) -> list[FeatureSpec]:
    if isinstance(entry, WindowedStatistic):
        return [entry.spec()]
    if isinstance(entry, Ratio):
        return entry.specs()
    return [entry]


STATISTICS: tuple[WindowedStatistic, ...] = tuple(statistics())
STATISTIC_BY_NAME: dict[str, WindowedStatistic] = {s.name: s for s in STATISTICS}
RATIOS: tuple[Ratio, ...] = tuple(ratios())


def statistics_of(family: str) -> list[WindowedStatistic]:
    return [s for s in STATISTICS if s.family == family]
