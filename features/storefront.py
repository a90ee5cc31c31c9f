"""Buyer-facing storefront figures (docs/design.md §5, contract).

Each storefront column *is* a supplier feature under its published name: the SQL is the
one in ``features.window_aggregates`` / ``features.supplier_features``, so the storefront
and the model can never disagree about what, say, the response rate is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import pyarrow as pa

from features.supplier_features import run_feature_query

# storefront column -> the supplier feature it publishes
STOREFRONT_COLUMNS: dict[str, str] = {
    "transactions_12m": "deal_count_12m",
    "deal_value_12m_usd": "deal_value_12m_usd",
    "response_rate_6m": "response_rate_6m",
    "median_response_hours_6m": "median_response_hours_6m",
    "on_time_shipment_rate_6m": "on_time_shipment_rate_6m",
    # not in the §5 contract table, shown alongside ("plus any others")
    "inquiries_6m": "inquiries_6m",
    "promised_shipments_6m": "promised_shipments_6m",
    "review_count_6m": "review_count_6m",
    "review_mean_6m": "review_mean_6m",
}
STOREFRONT_EVENT_FAMILIES = ("deliveries", "inquiries", "promised_shipments", "reviews")
STOREFRONT_FEATURES = list(dict.fromkeys(STOREFRONT_COLUMNS.values()))


def storefront_from_features(features: pa.Table) -> pa.Table:
    """The storefront table from the keys and ``STOREFRONT_FEATURES`` of a feature
    result, whichever engine computed it."""
    columns = {"as_of_date": features["as_of_date"], "supplier_id": features["supplier_id"]}
    for published, feature in STOREFRONT_COLUMNS.items():
        columns[published] = features[feature]
    return pa.table(columns)


def compute_storefront_metrics(
    con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date], schema: str = "validated"
) -> pa.Table:
    """One row per (as_of_date, supplier_id) joined by T with the storefront figures."""
    return storefront_from_features(
        run_feature_query(con, as_of_dates, schema, STOREFRONT_EVENT_FAMILIES, STOREFRONT_FEATURES)
    )
