"""Feature specifications: one ``FeatureSpec`` per output column of
``compute_supplier_features``, in output order (the order is the output's).

``uv run python -m features.catalogue`` renders this list to ``docs/feature_catalogue.md``;
a test keeps the committed file, this list and the computed columns in step.

Time conventions for every definition: T is the as-of month end; "by T" means a
timestamp before the end of day T; the six-month window is the six calendar months
ending with T's month (twelve likewise). Rates named ``*_shrunk`` are empirical-Bayes
estimates ``(k + a * p) / (n + a)`` with ``p`` the population rate (sum of k over sum of
n across all suppliers at the same T) and ``a`` = ``SHRINKAGE_PRIOR_STRENGTH``.
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class FeatureSpec:
    name: str
    window: str  # "6m", "12m", "1m", "all" (everything known by T), "static"
    dtype: str  # DuckDB type of the column
    definition: str  # one sentence
    null_meaning: str  # what a NULL in this column means ("never null" if it cannot be)
    risk_direction: int  # +1 higher is riskier, -1 higher is safer, 0 unknown / not monotone
    model_input: bool


NEVER_NULL = "never null"
NO_INQUIRIES = "no inquiries table in the landing zone"
NO_REVIEWS = "no reviews table in the landing zone"
NO_DISPUTES = "no disputes table in the landing zone"


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
        model_input=True,
    )


def _count(name: str, window: str, definition: str, null_meaning: str = NEVER_NULL, dtype="BIGINT",
           risk_direction: int = 0, model_input: bool = False) -> FeatureSpec:
    return FeatureSpec(name, window, dtype, definition, null_meaning, risk_direction, model_input)


def _rate(name: str, window: str, definition: str, null_meaning: str, risk_direction: int,
          model_input: bool = True) -> FeatureSpec:
    return FeatureSpec(name, window, "DOUBLE", definition, null_meaning, risk_direction, model_input)


_completion = _rate(
    "completion_rate_6m", "6m",
    "Of the orders created in the six-month window, the share delivered by T and not cancelled by T.",
    "no orders created in the window", -1)
_supplier_cancellation = _rate(
    "supplier_cancellation_rate_6m", "6m",
    "Of the orders created in the six-month window, the share cancelled by the supplier by T "
    "(status cancelled, cancelled_by supplier, cancelled_at by T; a cancellation without "
    "cancelled_at counts from the order's creation).",
    "no orders created in the window", +1)
_on_time = _rate(
    "on_time_shipment_rate_6m", "6m",
    "Of the orders whose promised_ship_by falls in the six-month window by T, the share "
    "shipped before the end of their promised day (docs/design.md §5).",
    "no order had a promised ship day in the window", -1)
_dispute = _rate(
    "dispute_ratio_6m", "6m",
    "Of the orders created in the six-month window, the share with a dispute (any reason) opened by T.",
    "no orders created in the window", +1)
_pre_shipment = _rate(
    "pre_shipment_dispute_ratio_6m", "6m",
    "Of the orders created in the six-month window, the share with a late_shipment or "
    "not_received dispute opened by T.",
    "no orders created in the window", +1)
_post_delivery = _rate(
    "post_delivery_dispute_ratio_6m", "6m",
    "Of the orders created in the six-month window, the share with a quality dispute opened by T.",
    "no orders created in the window", +1)
_buyer_won = _rate(
    "buyer_won_dispute_share_6m", "6m",
    "Of the disputes resolved in the six-month window (resolved_at by T, outcome not open), "
    "the share resolved buyer_favored.",
    "no dispute resolved in the window", +1)
_response_rate = _rate(
    "response_rate_6m", "6m",
    "Of the inquiries received in the six-month window, the share with first_response_at by T (docs/design.md §5).",
    f"no inquiries received in the window, or {NO_INQUIRIES}", -1)
_review_mean = _rate(
    "review_mean_6m", "6m",
    "Mean rating (1..5) of the reviews created in the six-month window on the supplier's orders.",
    f"no reviews created in the window, or {NO_REVIEWS}", -1)
_low_rating = _rate(
    "low_rating_share_6m", "6m",
    "Of the reviews created in the six-month window, the share rated 1 or 2 stars.",
    f"no reviews created in the window, or {NO_REVIEWS}", +1)
_repeat_buyer = _rate(
    "repeat_buyer_share_6m", "6m",
    "Of the orders created in the six-month window, the share placed by a buyer who had "
    "ordered from the supplier before (ties on created_at broken by order_id).",
    "no orders created in the window", 0)


FEATURES: list[FeatureSpec] = [
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
    _count("orders_6m", "6m", "Orders created in the six-month window."),
    _count("order_value_6m_usd", "6m", "Sum of amount_usd over the orders created in the six-month window.",
           dtype="DOUBLE"),
    _count("completed_orders_6m", "6m",
           "Orders created in the six-month window that were delivered by T and not cancelled by T "
           "(cancelled_at by T; a cancellation without cancelled_at counts from the order's creation)."),
    _completion, _shrunk(_completion),
    _count("supplier_cancelled_orders_6m", "6m",
           "Orders created in the six-month window cancelled by the supplier by T."),
    _supplier_cancellation, _shrunk(_supplier_cancellation),
    _count("promised_shipments_6m", "6m",
           "Orders whose promised_ship_by falls in the six-month window by T."),
    _count("on_time_shipments_6m", "6m",
           "Of those, the orders shipped before the end of their promised day."),
    _on_time, _shrunk(_on_time),
    # --- disputes ---------------------------------------------------------------------------
    _count("disputed_orders_6m", "6m",
           "Orders created in the six-month window with a dispute (any reason) opened by T."),
    _dispute, _shrunk(_dispute),
    _count("pre_shipment_disputed_orders_6m", "6m",
           "Orders created in the six-month window with a late_shipment or not_received dispute opened by T."),
    _pre_shipment, _shrunk(_pre_shipment),
    _count("post_delivery_disputed_orders_6m", "6m",
           "Orders created in the six-month window with a quality dispute opened by T."),
    _post_delivery, _shrunk(_post_delivery),
    _count("resolved_disputes_6m", "6m",
           "Disputes on the supplier's orders resolved in the six-month window (outcome not open)."),
    _count("buyer_won_disputes_6m", "6m", "Of those, the disputes resolved buyer_favored."),
    _buyer_won, _shrunk(_buyer_won),
    _count("refund_6m_usd", "6m",
           "Sum of refund_usd over disputes resolved by T on orders created in the six-month window.",
           dtype="DOUBLE"),
    _rate("refund_share_6m", "6m",
          "refund_6m_usd divided by order_value_6m_usd (refunded share of the window's order value).",
          "no orders created in the window", +1),
    # --- inquiries (responsiveness) -------------------------------------------------------
    _count("inquiries_6m", "6m", "Inquiries received in the six-month window.", NO_INQUIRIES),
    _count("answered_inquiries_6m", "6m", "Of those, the inquiries with first_response_at by T.", NO_INQUIRIES),
    _response_rate, _shrunk(_response_rate),
    _rate("median_response_hours_6m", "6m",
          "Median of first_response_at − received_at in hours over the inquiries received in the "
          "six-month window and answered by T (docs/design.md §5; interpolated between the middle two).",
          f"no inquiry in the window answered by T, or {NO_INQUIRIES}", +1),
    _rate("p90_response_hours_6m", "6m",
          "90th percentile (linear interpolation) of the same response times.",
          f"no inquiry in the window answered by T, or {NO_INQUIRIES}", +1),
    # --- reviews ----------------------------------------------------------------------------
    _count("review_count_6m", "6m",
           "Reviews created in the six-month window on the supplier's orders.", NO_REVIEWS),
    _count("review_rating_sum_6m", "6m", "Sum of their ratings (the numerator of review_mean_6m).", NO_REVIEWS),
    _review_mean, _shrunk(_review_mean),
    _count("low_rating_reviews_6m", "6m", "Of those reviews, the ones rated 1 or 2 stars.", NO_REVIEWS),
    _low_rating, _shrunk(_low_rating),
    # --- deals over twelve months (storefront) ------------------------------------------------
    _count("deal_count_12m", "12m",
           "Orders not cancelled by T whose delivered_at falls in the twelve-month window by T "
           "(the storefront's transactions_12m)."),
    _count("deal_value_12m_usd", "12m", "Sum of amount_usd over those orders.", dtype="DOUBLE"),
    _count("assured_deal_value_12m_usd", "12m", "Sum of amount_usd over those orders that were assured.",
           dtype="DOUBLE"),
    _rate("assured_deal_share_12m", "12m",
          "assured_deal_value_12m_usd divided by deal_value_12m_usd.",
          "no deals in the twelve-month window", 0),
    # --- momentum -----------------------------------------------------------------------------
    # Orders of the last two months are the ones whose disputes resolve in the next months.
    _count("orders_this_month", "1m", "Orders created in T's calendar month.", model_input=True),
    _count("orders_previous_month", "1m", "Orders created in the calendar month before T's.",
           model_input=True),
    _rate("order_growth_mom", "1m",
          "(orders_this_month − orders_previous_month) / orders_previous_month.",
          "no orders in the month before T's", 0),
    # --- buyers ---------------------------------------------------------------------------------
    _count("buyers_6m", "6m", "Distinct buyers of the orders created in the six-month window."),
    _rate("buyer_hhi_6m", "6m",
          "Herfindahl index of order value across buyers over the orders created in the six-month "
          "window: sum over buyers of (buyer's value / total value)^2.",
          "no orders created in the window", 0),
    _count("repeat_orders_6m", "6m",
           "Orders created in the six-month window that were not the buyer's first order with the supplier."),
    _repeat_buyer, _shrunk(_repeat_buyer),
    # --- payment-method mix ------------------------------------------------------------------
    _count("payment_method_known_orders_6m", "6m",
           "Orders created in the six-month window with a payment_method."),
    _count("tt_orders_6m", "6m", "Of those, the orders paid by telegraphic transfer (tt)."),
    _count("credit_card_orders_6m", "6m", "Of those, the orders paid by credit_card."),
    _rate("tt_share_6m", "6m", "tt_orders_6m divided by payment_method_known_orders_6m.",
          "no order in the window has a payment method", 0),
    _rate("credit_card_share_6m", "6m", "credit_card_orders_6m divided by payment_method_known_orders_6m.",
          "no order in the window has a payment method", 0),
    # --- open at T ----------------------------------------------------------------------------
    _count("open_disputes_at_t", "all",
           "Disputes on the supplier's orders opened by T whose outcome is not known by T (not "
           "resolved by T, or still open).", NO_DISPUTES, risk_direction=+1, model_input=True),
    _count("open_pre_shipment_disputes_at_t", "all",
           "Of those open disputes, the ones whose reason is late_shipment or not_received.",
           NO_DISPUTES, risk_direction=+1, model_input=True),
    _count("open_post_delivery_disputes_at_t", "all",
           "Of those open disputes, the ones whose reason is quality.",
           NO_DISPUTES, risk_direction=+1, model_input=True),
    _count("overdue_unshipped_orders_at_t", "all",
           "Orders created by T, not cancelled by T, whose promised_ship_by is by T and that were not "
           "shipped by T (shipped_at null or after T).", risk_direction=+1, model_input=True),
    _count("in_transit_orders_at_t", "all",
           "Orders created and shipped by T, not delivered by T (delivered_at null or after T) and "
           "not cancelled by T: goods on their way at T.", model_input=True),
    _count("late_in_transit_orders_at_t", "all",
           "Of those orders in transit, the ones shipped after their promised day had ended (shipped_at "
           "at or after the midnight following promised_ship_by); an order without promised_ship_by is not late.",
           risk_direction=+1, model_input=True),
    # --- volume per trading month ---------------------------------------------------------------
    _count("trading_months_6m", "6m",
           "Months of the six-month window on or after both the supplier's joining month and the "
           "month of the first order (any supplier's) created by T; 0 when no order is known by T."),
    _count("trading_months_12m", "12m", "The same for the twelve-month window."),
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
]
FEATURES_BY_NAME = {spec.name: spec for spec in FEATURES}


