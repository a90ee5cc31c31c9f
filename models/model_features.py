"""Which feature columns the breach model reads, how, and in which risk direction.

The feature catalogue (``features.FEATURES``) is the source of truth: each spec says
whether it is a model input and its ``risk_direction`` (+1 higher is riskier, -1 higher is
safer, 0 unknown), which becomes a LightGBM monotone constraint. When the catalogue is
not importable, or does not know a column, ``FALLBACK_RISK_DIRECTIONS`` applies: only
directions that follow from the definition of a breach are constrained. Volume features
stay unconstrained on purpose: more orders mean more chances of a dispute *and* more
evidence of a healthy business, and the data should decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

KEY_COLUMNS = ("as_of_date", "supplier_id")
LABEL_COLUMN = "breach_6m"
# Columns that must never become model inputs: keys, labels and label by-products, and
# audit columns a warehouse table may carry along.
NON_FEATURE_COLUMNS = frozenset(
    {
        *KEY_COLUMNS,
        LABEL_COLUMN,
        "breach_count_6m",
        "breach_refund_usd_6m",
        "pre_shipment_breach_6m",
        "post_delivery_breach_6m",
        "label_window_end",
        "label_complete",
        # the loss-rate and default labels (models/labels.py) and the published estimates
        "forward_order_value_6m_usd",
        "pre_shipment_refund_usd_6m",
        "post_delivery_refund_usd_6m",
        "realised_loss_rate_6m",
        "realised_loss_rate_pre_shipment_6m",
        "realised_loss_rate_post_delivery_6m",
        "default_6m",
        "orders_due_6m",
        "failed_orders_due_6m",
        "breach_probability_6m",
        "loss_rate_6m",
        "loss_rate_pre_shipment_6m",
        "loss_rate_post_delivery_6m",
        "default_probability_6m",
        "true_loss_rate_6m",  # truths carried by the test frames (tests/demo_frames.py), never inputs
        "true_default_probability_6m",
        "run_id",
        "computed_at",
        "joined_at",
        "assurance_opt_in_at",
    }
)
CATEGORICAL_COLUMNS = ("country", "membership_tier", "category")

# How much a supplier trades: counts and values of orders, deals, buyers and reviews.
# The chance of *any* dispute grows with them, but the per-dollar loss rate and the
# default probability must not read size as risk (docs/design.md §7: trading a lot is never a
# reason), so the models of those two hold each of these non-increasing
# (``per_dollar_features``): more trade can only lower them, never raise them, and a
# size feature is never cited as raising a supplier's risk.
SIZE_FEATURES = frozenset(
    {
        "orders_6m",
        "order_value_6m_usd",
        "completed_orders_6m",
        "promised_shipments_6m",
        "deal_count_12m",
        "deal_value_12m_usd",
        "assured_deal_value_12m_usd",
        "orders_this_month",
        "orders_previous_month",
        "buyers_6m",
        "repeat_orders_6m",
        "review_count_6m",
        "inquiries_6m",
        "in_transit_orders_at_t",
        "trading_months_6m",
        "trading_months_12m",
        "orders_per_month_6m",
        "order_value_per_month_6m_usd",
        "buyers_per_month_6m",
        "reviews_per_month_6m",
        "deals_per_month_12m",
        "deal_value_per_month_12m_usd",
        "assured_deal_value_per_month_12m_usd",
    }
)

FALLBACK_RISK_DIRECTIONS: dict[str, int] = {
    "tenure_months": -1,
    "completion_rate_6m": -1,
    "on_time_shipment_rate_6m": -1,
    "dispute_ratio_6m": +1,
    "response_rate_6m": -1,
    "median_response_hours_6m": +1,
    "review_mean_6m": -1,
    "cancellation_rate_6m": +1,
    "supplier_cancellation_rate_6m": +1,
    "late_shipment_rate_6m": +1,
    "buyer_favored_dispute_ratio_6m": +1,
    "refund_ratio_6m": +1,
}


@dataclass(frozen=True)
class ModelFeature:
    name: str
    risk_direction: int  # +1, -1 or 0; categorical features are always 0
    categorical: bool


def per_dollar_features(features: Sequence[ModelFeature]) -> list[ModelFeature]:
    """``features`` with every size feature constrained non-increasing (risk direction -1).

    For the loss-rate and default models: their targets are per dollar or per supplier,
    so more trade must never raise them (see ``SIZE_FEATURES``)."""
    return [
        ModelFeature(f.name, -1, f.categorical) if f.name in SIZE_FEATURES and not f.categorical else f
        for f in features
    ]


def catalogue_specs() -> list | None:
    """``features.FEATURES`` when the features package provides it, else None."""
    try:
        from features import FEATURES  # noqa: PLC0415  (optional at import time of models/)
    except ImportError:
        return None
    return list(FEATURES)


def resolve_model_features(
    feature_specs_or_columns: Iterable | None, frame: pd.DataFrame
) -> list[ModelFeature]:
    """The ordered model inputs present in ``frame``.

    ``feature_specs_or_columns`` may be FeatureSpec-like objects (``name``,
    ``risk_direction``, ``model_input``), plain column names, or None (the catalogue's
    model inputs, or every non-key column of ``frame`` when there is no catalogue).
    """
    catalogue = {spec.name: spec for spec in (catalogue_specs() or [])}
    if feature_specs_or_columns is None:
        if catalogue:
            items: Sequence = [s for s in catalogue.values() if getattr(s, "model_input", True)]
        else:
            items = [c for c in frame.columns if c not in NON_FEATURE_COLUMNS]
    else:
        items = list(feature_specs_or_columns)

    resolved: list[ModelFeature] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            name, spec = item, catalogue.get(item)
        else:
            name, spec = item.name, item
            if not getattr(spec, "model_input", True):
                continue
        if name in seen or name in NON_FEATURE_COLUMNS:
            continue
        if name not in frame.columns:
            if feature_specs_or_columns is None:
                continue  # catalogue lists more than this frame holds: use what is there
            raise KeyError(f"model feature {name!r} is not a column of the training frame")
        categorical = name in CATEGORICAL_COLUMNS or not (
            pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])
        )
        direction = 0
        if not categorical:
            if spec is not None and getattr(spec, "risk_direction", None) is not None:
                direction = int(spec.risk_direction)
            else:
                direction = FALLBACK_RISK_DIRECTIONS.get(name, 0)
        if direction not in (-1, 0, 1):
            raise ValueError(f"risk_direction of {name!r} must be -1, 0 or +1, got {direction}")
        resolved.append(ModelFeature(name=name, risk_direction=direction, categorical=categorical))
        seen.add(name)
    if not resolved:
        raise ValueError("no model features: the training frame holds none of the requested columns")
    return resolved
