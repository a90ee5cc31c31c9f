"""A slow, literal pandas implementation of every feature, the yardstick for the SQL and
the in-process path (a test oracle: nothing in ``features/`` imports it).

For each as-of date T it filters the events known by T with plain timestamp comparisons
(``ts < T + 1 day``, window starts as calendar dates) and computes each feature straight
from its definition in ``features.specs``. It shares no window logic with the DuckDB
implementation (no month indices, no buckets), so agreement between the two is evidence
that the bucketing is right. Use it for tests and benchmarks only: it is O(events x
month ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from features.specs import FEATURES
from features.storefront import STOREFRONT_COLUMNS
from features.supplier_features import PER_TRADING_MONTH, RATES, SHRINKAGE_PRIOR_STRENGTH
from features.window_aggregates import (
    BUYER_WON_OUTCOME,
    LOW_RATING_MAX,
    POST_DELIVERY_REASONS,
    PRE_SHIPMENT_REASONS,
)
from features.sql_engine import duckdb_table_exists
from features.windows import validated_as_of_dates

INTEGER_DTYPES = {"BIGINT": "Int64", "INTEGER": "Int32"}


def load_validated_tables(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, pd.DataFrame | None]:
    tables: dict[str, pd.DataFrame | None] = {}
    for name in ("suppliers", "orders", "disputes", "inquiries", "reviews"):
        tables[name] = con.execute(f"SELECT * FROM {schema}.{name}").df() if duckdb_table_exists(con, schema, name) else None
    return tables


def _window_start(as_of: date, months: int) -> pd.Timestamp:
    """First instant of the earliest calendar month of the ``months``-month window."""
    return pd.Timestamp(as_of.year, as_of.month, 1) - pd.DateOffset(months=months - 1)


def _between(ts: pd.Series, start: pd.Timestamp, cutoff: pd.Timestamp) -> pd.Series:
    return (ts >= start) & (ts < cutoff)


DISPUTE_COUNT_COLUMNS = (
    "disputed_orders_6m", "pre_shipment_disputed_orders_6m", "post_delivery_disputed_orders_6m",
    "disputed_orders_3m", "resolved_disputes_6m", "buyer_won_disputes_6m", "refund_6m_usd",
)
OPEN_DISPUTE_COLUMNS = ("open_disputes_at_t", "open_pre_shipment_disputes_at_t", "open_post_delivery_disputes_at_t")
_NO_DISPUTES = pd.DataFrame(
    {"order_id": pd.Series(dtype=object), "opened_at": pd.Series(dtype="datetime64[us]"),
     "reason": pd.Series(dtype=object), "outcome": pd.Series(dtype=object),
     "resolved_at": pd.Series(dtype="datetime64[us]"), "refund_usd": pd.Series(dtype=float)}
)


def _by_supplier(frame: pd.DataFrame, column: str | None = None, how: str = "size") -> pd.Series:
    if column is None:
        return frame.groupby("supplier_id").size()
    return frame.groupby("supplier_id")[column].agg(how)


def features_at(tables: dict[str, pd.DataFrame | None], as_of: date) -> pd.DataFrame:
    """Every feature at one as-of date, literally."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)  # known by T: ts < cutoff
    three = _window_start(as_of, 3)
    six = _window_start(as_of, 6)
    twelve = _window_start(as_of, 12)
    this_month = _window_start(as_of, 1)
    previous_month = _window_start(as_of, 2)

    suppliers = tables["suppliers"]
    known = suppliers[suppliers["joined_at"].notna() & (suppliers["joined_at"] < cutoff)].copy()
    out = pd.DataFrame({"supplier_id": known["supplier_id"].to_numpy()})
    out["country"] = known["country"].to_numpy()
    out["membership_tier"] = known["membership_tier"].to_numpy()
    out["category"] = known["category"].to_numpy()
    joined = known["joined_at"]
    out["tenure_months"] = ((as_of.year * 12 + as_of.month) - (joined.dt.year * 12 + joined.dt.month)).to_numpy()
    opt_in = known["assurance_opt_in_at"]
    out["opted_in"] = (opt_in.notna() & (opt_in < cutoff)).to_numpy()
    out = out.set_index("supplier_id")
    cols: dict[str, pd.Series] = {}

    orders = tables["orders"]
    # Cancelled by T: a cancelled order whose cancelled_at is before the cutoff, or that
    # has no cancelled_at (then its latest status is all there is).
    cancelled_at = orders["cancelled_at"] if "cancelled_at" in orders else pd.Series(pd.NaT, index=orders.index)
    not_cancelled = ~((orders["status"] == "cancelled") & (cancelled_at.isna() | (cancelled_at < cutoff)))
    window_orders = orders[_between(orders["created_at"], six, cutoff)]
    cols["orders_6m"] = _by_supplier(window_orders)
    cols["order_value_6m_usd"] = _by_supplier(window_orders, "amount_usd", "sum")
    completed = window_orders[(window_orders["delivered_at"] < cutoff) & not_cancelled.loc[window_orders.index]]
    cols["completed_orders_6m"] = _by_supplier(completed)
    cols["supplier_cancelled_orders_6m"] = _by_supplier(
        window_orders[~not_cancelled.loc[window_orders.index] & (window_orders["cancelled_by"] == "supplier")]
    )
    promised = orders[_between(orders["promised_ship_by"], six, cutoff)]
    cols["promised_shipments_6m"] = _by_supplier(promised)
    end_of_promised_day = promised["promised_ship_by"].dt.floor("D") + pd.Timedelta(days=1)
    cols["on_time_shipments_6m"] = _by_supplier(promised[promised["shipped_at"] < end_of_promised_day])
    promised_3m = promised[promised["promised_ship_by"] >= three]
    cols["promised_shipments_3m"] = _by_supplier(promised_3m)
    on_time_3m = promised_3m["shipped_at"] < end_of_promised_day.loc[promised_3m.index]
    cols["on_time_shipments_3m"] = _by_supplier(promised_3m[on_time_3m])
    window_orders_3m = orders[_between(orders["created_at"], three, cutoff)]
    cols["orders_3m"] = _by_supplier(window_orders_3m)

    # A source that records no disputes (manifest `not_collected`) leaves them unknown: NULL.
    disputes = tables["disputes"] if tables["disputes"] is not None else _NO_DISPUTES
    opened = disputes[disputes["opened_at"] < cutoff]
    for column, reasons in (
        ("disputed_orders_6m", None),
        ("pre_shipment_disputed_orders_6m", PRE_SHIPMENT_REASONS),
        ("post_delivery_disputed_orders_6m", POST_DELIVERY_REASONS),
    ):
        relevant = opened if reasons is None else opened[opened["reason"].isin(reasons)]
        cols[column] = _by_supplier(window_orders[window_orders["order_id"].isin(relevant["order_id"])])
    cols["disputed_orders_3m"] = _by_supplier(window_orders_3m[window_orders_3m["order_id"].isin(opened["order_id"])])
    resolved = disputes[
        disputes["resolved_at"].notna()
        & (disputes["resolved_at"] < cutoff)
        & (disputes["outcome"].fillna("open") != "open")
    ].merge(orders[["order_id", "supplier_id", "created_at"]], on="order_id")
    resolved_in_window = resolved[resolved["resolved_at"] >= six]
    cols["resolved_disputes_6m"] = _by_supplier(resolved_in_window)
    cols["buyer_won_disputes_6m"] = _by_supplier(resolved_in_window[resolved_in_window["outcome"] == BUYER_WON_OUTCOME])
    cols["refund_6m_usd"] = _by_supplier(
        resolved[_between(resolved["created_at"], six, cutoff)], "refund_usd", "sum"
    )

    deals = orders[not_cancelled & _between(orders["delivered_at"], twelve, cutoff)]
    cols["deal_count_12m"] = _by_supplier(deals)
    cols["deal_value_12m_usd"] = _by_supplier(deals, "amount_usd", "sum")
    cols["assured_deal_value_12m_usd"] = _by_supplier(deals[deals["assured"].fillna(False).astype(bool)], "amount_usd", "sum")

    cols["orders_this_month"] = _by_supplier(orders[_between(orders["created_at"], this_month, cutoff)])
    cols["orders_previous_month"] = _by_supplier(orders[_between(orders["created_at"], previous_month, this_month)])

    buyer_value = window_orders.groupby(["supplier_id", "buyer_id"], dropna=False)["amount_usd"].sum()
    cols["buyers_6m"] = buyer_value.groupby(level="supplier_id").size()
    buyer_value_sq = (buyer_value**2).groupby(level="supplier_id").sum()
    # A buyer's first order with a supplier: earliest created_at, ties broken by order_id.
    ordered = orders.sort_values(["created_at", "order_id"])
    first_order_ids = ordered.drop_duplicates(["supplier_id", "buyer_id"], keep="first")["order_id"]
    cols["repeat_orders_6m"] = _by_supplier(window_orders[~window_orders["order_id"].isin(first_order_ids)])

    pm = window_orders["payment_method"]
    cols["payment_method_known_orders_6m"] = _by_supplier(window_orders[pm.notna()])
    cols["tt_orders_6m"] = _by_supplier(window_orders[pm == "tt"])
    cols["credit_card_orders_6m"] = _by_supplier(window_orders[pm == "credit_card"])

    # Positions open at the end of day T.
    unresolved_by_t = ~(
        disputes["resolved_at"].notna()
        & (disputes["resolved_at"] < cutoff)
        & (disputes["outcome"].fillna("open") != "open")
    )
    open_at_t = opened[unresolved_by_t.loc[opened.index]].merge(orders[["order_id", "supplier_id"]], on="order_id")
    cols["open_disputes_at_t"] = _by_supplier(open_at_t)
    cols["open_pre_shipment_disputes_at_t"] = _by_supplier(open_at_t[open_at_t["reason"].isin(PRE_SHIPMENT_REASONS)])
    cols["open_post_delivery_disputes_at_t"] = _by_supplier(
        open_at_t[open_at_t["reason"].isin(POST_DELIVERY_REASONS)])
    overdue = orders[
        (orders["created_at"] < cutoff)
        & (orders["promised_ship_by"] < cutoff)
        & not_cancelled
        & ~(orders["shipped_at"] < cutoff)
    ]
    cols["overdue_unshipped_orders_at_t"] = _by_supplier(overdue)
    in_transit = orders[
        (orders["created_at"] < cutoff)
        & (orders["shipped_at"] < cutoff)
        & ~(orders["delivered_at"] < cutoff)
        & not_cancelled
    ]
    cols["in_transit_orders_at_t"] = _by_supplier(in_transit)
    # late: shipped at or after the midnight ending the promised day (no promised day: not late)
    promised_day_over = in_transit["promised_ship_by"].dt.floor("D") + pd.Timedelta(days=1)
    cols["late_in_transit_orders_at_t"] = _by_supplier(in_transit[in_transit["shipped_at"] >= promised_day_over])

    count_columns = list(cols)
    for column in count_columns:
        out[column] = cols[column].reindex(out.index).fillna(0)
    if tables["disputes"] is None:
        for column in (*DISPUTE_COUNT_COLUMNS, *OPEN_DISPUTE_COLUMNS):
            out[column] = np.nan

    # Months of each window from which the supplier's orders can be in the data: on or
    # after its joining month and the month of the first order known by T.
    known_orders = orders[orders["created_at"] < cutoff]["created_at"]
    as_of_month = as_of.year * 12 + as_of.month - 1
    first_month = (
        known_orders.min().year * 12 + known_orders.min().month - 1 if len(known_orders) else as_of_month + 1
    )
    for column, width in (("trading_months_6m", 6), ("trading_months_12m", 12)):
        months = np.minimum(np.minimum(width, out["tenure_months"] + 1), as_of_month - first_month + 1)
        out[column] = np.maximum(months, 0)

    inquiries = tables["inquiries"]
    inquiry_columns = ["inquiries_6m", "answered_inquiries_6m", "median_response_hours_6m", "p90_response_hours_6m"]
    if inquiries is None:
        for column in inquiry_columns:
            out[column] = np.nan
    else:
        received = inquiries[_between(inquiries["received_at"], six, cutoff)]
        answered = received[received["first_response_at"] < cutoff]
        out["inquiries_6m"] = _by_supplier(received).reindex(out.index).fillna(0)
        out["answered_inquiries_6m"] = _by_supplier(answered).reindex(out.index).fillna(0)
        hours = (answered["first_response_at"] - answered["received_at"]).dt.total_seconds() / 3600.0
        grouped = hours.groupby(answered["supplier_id"])
        out["median_response_hours_6m"] = grouped.agg(lambda h: np.quantile(h, 0.5)).reindex(out.index)
        out["p90_response_hours_6m"] = grouped.agg(lambda h: np.quantile(h, 0.9)).reindex(out.index)

    reviews = tables["reviews"]
    review_columns = ["review_count_6m", "review_rating_sum_6m", "low_rating_reviews_6m"]
    if reviews is None:
        for column in review_columns:
            out[column] = np.nan
    else:
        window_reviews = reviews[_between(reviews["created_at"], six, cutoff) & reviews["rating"].notna()]
        window_reviews = window_reviews.merge(orders[["order_id", "supplier_id"]], on="order_id")
        out["review_count_6m"] = _by_supplier(window_reviews).reindex(out.index).fillna(0)
        out["review_rating_sum_6m"] = _by_supplier(window_reviews, "rating", "sum").reindex(out.index).fillna(0)
        out["low_rating_reviews_6m"] = _by_supplier(
            window_reviews[window_reviews["rating"] <= LOW_RATING_MAX]
        ).reindex(out.index).fillna(0)

    # Rates, their shrunk versions (population = the suppliers known at T) and the rest.
    a = SHRINKAGE_PRIOR_STRENGTH
    for rate in RATES:
        k = out[rate.numerator].astype(float)
        n = out[rate.denominator].astype(float)
        out[rate.name] = (k / n).where(n > 0)
        if rate.shrunk:
            population = k.sum() / n.sum() if n.notna().any() and n.sum() > 0 else np.nan
            out[f"{rate.name}_shrunk"] = (k + a * population) / (n + a)
    this, previous = out["orders_this_month"].astype(float), out["orders_previous_month"].astype(float)
    out["order_growth_mom"] = ((this - previous) / previous).where(previous > 0)
    for name, (volume, months) in PER_TRADING_MONTH.items():
        denominator = out[months].astype(float)
        out[name] = (out[volume].astype(float) / denominator).where(denominator > 0)
    value = out["order_value_6m_usd"]
    out["buyer_hhi_6m"] = (buyer_value_sq.reindex(out.index) / value**2).where(value > 0)

    out = out.reset_index()
    out.insert(0, "as_of_date", as_of)
    return out


def reference_supplier_features(
    con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date], schema: str = "validated"
) -> pd.DataFrame:
    """All features for all as-of dates, sorted like the production output."""
    tables = load_validated_tables(con, schema)
    frames = [features_at(tables, as_of) for as_of in validated_as_of_dates(as_of_dates)]
    columns = ["as_of_date", "supplier_id", *(spec.name for spec in FEATURES)]
    if not frames:
        return pd.DataFrame(columns=columns)
    result = pd.concat(frames, ignore_index=True)[columns]
    return result.sort_values(["as_of_date", "supplier_id"], kind="stable").reset_index(drop=True)


def reference_storefront_metrics(
    con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date], schema: str = "validated"
) -> pd.DataFrame:
    features = reference_supplier_features(con, as_of_dates, schema)
    out = features[["as_of_date", "supplier_id"]].copy()
    for published, feature in STOREFRONT_COLUMNS.items():
        out[published] = features[feature]
    return out


def as_comparable_frame(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Production or reference output as object columns with None for NULL, for
    value-by-value comparison in tests."""
    frame = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    return frame.astype(object).where(frame.notna(), None)
