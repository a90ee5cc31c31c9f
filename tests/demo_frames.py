"""A small, self-contained features-with-labels frame for tests, notebooks and docs.

It has the columns of ``compute_supplier_features`` that the model relies on
(docs/architecture.md) plus the label columns of ``compute_breach_labels``, drawn from a
latent supplier quality so that the features carry real signal. It is *not* the product's
synthetic generator (``synthetic/``); it exists so model code can be exercised in
milliseconds without a landing zone or a warehouse.
"""

from __future__ import annotations

import calendar
from datetime import date

import numpy as np
import pandas as pd

COUNTRIES = ["CN", "IN", "TR", "US", "VN"]
TIERS = ["free", "gold", "verified", "unknown"]
CATEGORIES = ["apparel", "electronics", "machinery", "packaging"]


def _month_ends(start: date, months: int) -> list[date]:
    result = []
    year, month = start.year, start.month
    for _ in range(months):
        result.append(date(year, month, calendar.monthrange(year, month)[1]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


def example_training_frame(
    n_suppliers: int = 400, months: int = 18, seed: int = 0, start: date = date(2024, 1, 1),
    incomplete_months: int = 0,
) -> pd.DataFrame:
    """One row per (month end, supplier) with features, ``breach_6m``, ``label_complete``
    (false for the last ``incomplete_months``) and ``breach_probability_6m`` (the truth).

    It also carries the loss-rate and default labels of ``models.labels`` (the window's order
    value, refunds per coverage, ``default_6m``) with their truths ``true_loss_rate_6m`` and
    ``true_default_probability_6m``: both depend on quality and not on size, as the
    programme assumes, while the breach probability grows with orders. They are drawn from
    a separate random stream, so the other columns are the same as without them."""
    rng = np.random.default_rng(seed)
    forward_rng = np.random.default_rng([seed, 1])
    quality = rng.normal(0, 1, n_suppliers)  # latent: higher is safer
    country = rng.choice(COUNTRIES, n_suppliers)
    tier = rng.choice(TIERS, n_suppliers, p=[0.4, 0.3, 0.2, 0.1])
    category = rng.choice(CATEGORIES, n_suppliers)
    joined_months_ago = rng.integers(0, 48, n_suppliers)
    size = rng.lognormal(2.0, 0.8, n_suppliers)
    country_effect = dict(zip(COUNTRIES, [0.2, 0.1, 0.0, -0.3, 0.15], strict=True))
    tier_effect = {"free": 0.3, "gold": -0.1, "verified": -0.4, "unknown": 0.2}

    frames = []
    month_ends = _month_ends(start, months)
    for index, as_of in enumerate(month_ends):
        tenure = joined_months_ago + index
        drift = quality + rng.normal(0, 0.3, n_suppliers)
        orders = rng.poisson(size)
        has_orders = orders > 0
        on_time = np.where(has_orders, np.clip(0.93 + 0.04 * drift + rng.normal(0, 0.03, n_suppliers), 0, 1), np.nan)
        completion = np.where(has_orders, np.clip(0.95 + 0.03 * drift + rng.normal(0, 0.02, n_suppliers), 0, 1), np.nan)
        disputes = rng.binomial(np.maximum(orders, 0), np.clip(0.04 - 0.02 * drift, 0.001, 0.5))
        dispute_ratio = np.where(has_orders, disputes / np.maximum(orders, 1), np.nan)
        inquiries = rng.poisson(size * 2)
        response = np.where(inquiries > 0, np.clip(0.85 + 0.07 * drift + rng.normal(0, 0.05, n_suppliers), 0, 1), np.nan)
        response_hours = np.where(inquiries > 0, np.exp(2.0 - 0.3 * drift + rng.normal(0, 0.3, n_suppliers)), np.nan)
        review_count = rng.binomial(orders, 0.3)
        review_mean = np.where(review_count > 0, np.clip(4.2 + 0.3 * drift + rng.normal(0, 0.3, n_suppliers), 1, 5), np.nan)
        deal_count = orders * 2 + rng.poisson(1, n_suppliers)
        deal_value = deal_count * rng.lognormal(7.0, 0.5, n_suppliers)
        logit = (
            -2.4
            - 0.9 * quality
            + 0.25 * np.log1p(orders)
            - 0.3 * np.log1p(np.minimum(tenure, 36)) / np.log(37) * 2
            + np.vectorize(country_effect.get)(country)
            + np.vectorize(tier_effect.get)(tier)
        )
        probability = 1 / (1 + np.exp(-logit))
        # Forward labels per dollar: ~6 months of orders, refunds ~ Poisson claims x ticket.
        ticket = np.exp(7.0)
        window_orders = forward_rng.poisson(size * 6)
        exposure = window_orders * ticket * forward_rng.lognormal(0, 0.2, n_suppliers)
        true_pre = 0.004 * np.exp(-0.8 * quality)
        true_post = 0.003 * np.exp(-0.6 * quality)
        claims_pre = forward_rng.poisson(window_orders * true_pre / 0.825)
        claims_post = forward_rng.poisson(window_orders * true_post / 0.825)
        refund_pre = claims_pre * ticket * 0.825
        refund_post = claims_post * ticket * 0.825
        default_probability = 1 / (1 + np.exp(-(-4.0 - 1.2 * quality + np.vectorize(tier_effect.get)(tier))))
        frames.append(
            pd.DataFrame(
                {
                    "as_of_date": as_of,
                    "supplier_id": [f"S{i:05d}" for i in range(n_suppliers)],
                    "country": country,
                    "membership_tier": tier,
                    "category": category,
                    "tenure_months": tenure.astype(float),
                    "opted_in": rng.random(n_suppliers) < 0.6,
                    "orders_6m": orders.astype(float),
                    "completion_rate_6m": completion,
                    "on_time_shipment_rate_6m": on_time,
                    "dispute_ratio_6m": dispute_ratio,
                    "response_rate_6m": response,
                    "median_response_hours_6m": response_hours,
                    "deal_count_12m": deal_count.astype(float),
                    "deal_value_12m_usd": deal_value,
                    "assured_deal_value_12m_usd": deal_value * rng.uniform(0, 1, n_suppliers),
                    "review_mean_6m": review_mean,
                    "review_count_6m": review_count.astype(float),
                    "breach_6m": rng.random(n_suppliers) < probability,
                    "label_complete": index < months - incomplete_months,
                    "breach_probability_6m": probability,
                    "forward_order_value_6m_usd": exposure,
                    "pre_shipment_refund_usd_6m": refund_pre,
                    "post_delivery_refund_usd_6m": refund_post,
                    "breach_refund_usd_6m": refund_pre + refund_post,
                    "default_6m": forward_rng.random(n_suppliers) < default_probability,
                    "true_loss_rate_6m": true_pre + true_post,
                    "true_default_probability_6m": default_probability,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
