"""Readable reason codes: the features that raise a supplier's breach risk the most.

Input is LightGBM's per-row feature contributions (``pred_contrib=True``, TreeSHAP in
log-odds). Only features with a strictly positive contribution can be reasons: a feature
that lowers risk is never shown as a reason for it. Ties are broken by the model's
feature order so the same input always yields the same codes.

A code names the feature and the side of it that hurts, so it reads the same month after
month whatever the exact value: for a feature with risk direction +1 a positive
contribution means "high" (``DISPUTE_RATIO_HIGH``), with -1 "low"
(``ON_TIME_SHIPMENT_LOW``); for unconstrained features the side is the value against the
training median; a missing value that raises risk gets ``..._UNKNOWN``; categorical
attributes get one code each (``COUNTRY_RISK``). Codes are part of the published output:
add new ones, never rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from models.model_features import ModelFeature


@dataclass(frozen=True)
class FeatureReasonCodes:
    high: str
    low: str
    unknown: str


# Features whose two sides read better than NAME_HIGH / NAME_LOW.
REASON_CODES: dict[str, FeatureReasonCodes] = {
    "tenure_months": FeatureReasonCodes("HISTORY_LONG", "HISTORY_SHORT", "HISTORY_UNKNOWN"),
    "opted_in": FeatureReasonCodes("ASSURANCE_OPTED_IN", "ASSURANCE_NOT_OPTED_IN", "ASSURANCE_OPT_IN_UNKNOWN"),
    "median_response_hours_6m": FeatureReasonCodes("RESPONSE_TIME_SLOW", "RESPONSE_TIME_FAST", "RESPONSE_TIME_UNKNOWN"),
    "p90_response_hours_6m": FeatureReasonCodes("RESPONSE_TIME_SLOW", "RESPONSE_TIME_FAST", "RESPONSE_TIME_UNKNOWN"),
    "review_mean_6m": FeatureReasonCodes("REVIEW_SCORE_HIGH", "REVIEW_SCORE_LOW", "NO_RECENT_REVIEWS"),
}
# Readable stems (``<STEM>_HIGH`` / ``_LOW`` / ``_UNKNOWN``) for the catalogue's features. A
# ``*_shrunk`` variant shares its raw rate's codes: to a reader they are one reason.
REASON_STEMS: dict[str, str] = {
    "orders_6m": "ORDER_VOLUME",
    "order_value_6m_usd": "ORDER_VALUE",
    "completion_rate_6m": "COMPLETION_RATE",
    "supplier_cancellation_rate_6m": "SUPPLIER_CANCELLATION_RATE",
    "on_time_shipment_rate_6m": "ON_TIME_SHIPMENT",
    "dispute_ratio_6m": "DISPUTE_RATIO",
    "pre_shipment_dispute_ratio_6m": "PRE_SHIPMENT_DISPUTE_RATIO",
    "post_delivery_dispute_ratio_6m": "QUALITY_DISPUTE_RATIO",
    "buyer_won_dispute_share_6m": "DISPUTES_LOST_SHARE",
    "refund_share_6m": "REFUND_SHARE",
    "response_rate_6m": "RESPONSE_RATE",
    "review_count_6m": "REVIEW_COUNT",
    "low_rating_share_6m": "LOW_RATING_SHARE",
    "deal_count_12m": "DEAL_COUNT",
    "deal_value_12m_usd": "DEAL_VALUE",
    "assured_deal_value_12m_usd": "ASSURED_VALUE",
    "assured_deal_share_12m": "ASSURED_SHARE",
    "order_growth_mom": "ORDER_GROWTH",
    "buyers_6m": "BUYER_COUNT",
    "buyer_hhi_6m": "BUYER_CONCENTRATION",
    "repeat_buyer_share_6m": "REPEAT_BUYER_SHARE",
    "tt_share_6m": "TT_PAYMENT_SHARE",
    "credit_card_share_6m": "CARD_PAYMENT_SHARE",
    "open_disputes_at_t": "OPEN_DISPUTES",
    "open_pre_shipment_disputes_at_t": "OPEN_PRE_SHIPMENT_DISPUTES",
    "open_post_delivery_disputes_at_t": "OPEN_QUALITY_DISPUTES",
    "overdue_unshipped_orders_at_t": "OVERDUE_SHIPMENTS",
    "in_transit_orders_at_t": "ORDERS_IN_TRANSIT",
    "late_in_transit_orders_at_t": "LATE_SHIPMENTS_IN_TRANSIT",
    # Volumes per trading month read as the same reasons as the raw volumes.
    "orders_per_month_6m": "ORDER_VOLUME",
    "order_value_per_month_6m_usd": "ORDER_VALUE",
    "buyers_per_month_6m": "BUYER_COUNT",
    "reviews_per_month_6m": "REVIEW_COUNT",
    "deals_per_month_12m": "DEAL_COUNT",
    "deal_value_per_month_12m_usd": "DEAL_VALUE",
    "assured_deal_value_per_month_12m_usd": "ASSURED_VALUE",
}
CATEGORICAL_REASON_CODES: dict[str, str] = {
    "country": "COUNTRY_RISK",
    "membership_tier": "MEMBERSHIP_TIER_RISK",
    "category": "CATEGORY_RISK",
}


def codes_for(feature: ModelFeature) -> FeatureReasonCodes:
    # "<model>:<feature>" names one model's input when several models' contributions are
    # ranked together (models.supplier_decisions): the code is the feature's own.
    name = feature.name.rpartition(":")[2]
    if feature.categorical:
        code = CATEGORICAL_REASON_CODES.get(name, f"{name.upper()}_RISK")
        return FeatureReasonCodes(code, code, code)
    base = name.removesuffix("_shrunk")
    if base in REASON_CODES:
        return REASON_CODES[base]
    stem = REASON_STEMS.get(base, base.upper())
    return FeatureReasonCodes(f"{stem}_HIGH", f"{stem}_LOW", f"{stem}_UNKNOWN")


def top_reason_codes(
    contributions: np.ndarray,
    design: pd.DataFrame,
    features: Sequence[ModelFeature],
    medians: dict[str, float],
    k: int = 3,
) -> list[list[str]]:
    """Top-``k`` codes per row from a (rows x features[+bias]) contribution matrix."""
    n_features = len(features)
    contributions = np.asarray(contributions, dtype=float)[:, :n_features]  # drop the bias column
    n_rows = contributions.shape[0]
    if n_rows == 0 or k <= 0:
        return [[] for _ in range(n_rows)]
    # Per feature, the code each row would get if that feature were one of its reasons, as an
    # index into ``names``: the selection below is one compiled pass over integers.
    names: list[str] = []
    index: dict[str, int] = {}

    def code_id(code: str) -> int:
        if code not in index:
            index[code] = len(names)
            names.append(code)
        return index[code]

    # Per feature: its three code ids, how its side is read (+1 high, -1 low, 0 against the median).
    high, low, unknown = (np.empty(n_features, np.int64) for _ in range(3))
    for j, feature in enumerate(features):
        codes = codes_for(feature)
        high[j], low[j], unknown[j] = code_id(codes.high), code_id(codes.low), code_id(codes.unknown)
    direction = np.array([f.risk_direction for f in features], dtype=np.int64)
    median = np.array([medians.get(f.name, 0.0) for f in features])
    code_matrix = np.empty((n_rows, n_features), dtype=np.int64)
    categorical = np.array([f.categorical for f in features], dtype=bool)
    code_matrix[:, categorical] = high[categorical]  # one code whatever the value
    numeric = np.flatnonzero(~categorical)
    if len(numeric):  # all numeric columns at once (rows x columns)
        values = design[[features[j].name for j in numeric]].to_numpy(dtype=float, na_value=np.nan)
        is_high = np.where(direction[numeric] > 0, True, np.where(direction[numeric] < 0, False, values > median[numeric]))
        code_matrix[:, numeric] = np.where(np.isnan(values), unknown[numeric], np.where(is_high, high[numeric], low[numeric]))
    # Look a little beyond k because features sharing a code (a rate and its shrunk twin) count once.
    chosen = _top_codes(np.ascontiguousarray(contributions), code_matrix, k, min(n_features, 3 * k))
    return [[names[code] for code in row if code >= 0] for row in chosen.tolist()]


@njit(cache=True, nogil=True)
def _top_codes(contributions, code_matrix, k, depth):
    """Per row, the codes of its ``depth`` largest positive contributions (ties: the model's
    feature order first), in that order, each code once, at most ``k``; -1 pads."""
    n_rows, n_features = contributions.shape
    chosen = np.full((n_rows, k), -1, np.int64)
    top_value = np.empty(depth)
    top_feature = np.empty(depth, np.int64)
    for i in range(n_rows):
        size = 0
        for j in range(n_features):
            value = contributions[i, j]
            if not value > 0:
                continue
            if size == depth and value <= top_value[size - 1]:
                continue
            # insert after every kept value >= this one: an equal value of an earlier feature stays first
            at = size if size < depth else depth - 1
            while at > 0 and top_value[at - 1] < value:
                if at < depth:
                    top_value[at] = top_value[at - 1]
                    top_feature[at] = top_feature[at - 1]
                at -= 1
            top_value[at] = value
            top_feature[at] = j
            if size < depth:
                size += 1
        count = 0
        for position in range(size):
            code = code_matrix[i, top_feature[position]]
            seen = False
            for c in range(count):
                if chosen[i, c] == code:
                    seen = True
            if not seen:
                chosen[i, count] = code
                count += 1
                if count == k:
                    break
    return chosen
