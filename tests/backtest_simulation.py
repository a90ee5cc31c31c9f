"""A simulated scored history with known breach probabilities, for the backtest.

It lets an analyst (and the tests) try ``run_backtest``/``compare_policies`` and the
report before a trained model and real outcomes exist. It is *not* the landing-zone
generator (``synthetic/``): it produces the backtest's input directly, one row per
supplier and month with the policy's feature columns, a model score and the realised
six-month outcomes drawn from the true probability.

With ``v2=True`` (the default) it also carries what policy v2 reads and the new labels
settle: a size-independent true loss rate and default probability per supplier
(``true_loss_rate_6m``, ``true_default_probability_6m``), the model's noisy estimates
(``loss_rate_6m`` with its pre-shipment/post-delivery split, ``default_probability_6m``)
and realised ``forward_order_value_6m_usd``, ``pre_shipment_refund_usd_6m``,
``post_delivery_refund_usd_6m`` and ``default_6m``. They are drawn from a second random
stream, so the v1 columns are the same with or without them; the breach columns keep
their v1 meaning (drawn from the breach probability, which grows with orders as in
issue 12) and are not reconciled with the v2 refunds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIERS = np.array(["free", "gold", "verified", "unknown"])
TIER_WEIGHTS = np.array([0.35, 0.35, 0.25, 0.05])
COUNTRIES = np.array(["CN", "IN", "VN", "TR", "US"])
COUNTRY_WEIGHTS = np.array([0.55, 0.15, 0.12, 0.1, 0.08])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_scored_history(
    n_suppliers: int = 500,
    months: int = 18,
    start: str = "2024-01",
    seed: int = 7,
    score_noise: float = 0.5,
    v2: bool = True,
) -> pd.DataFrame:
    """Monthly scored rows with outcomes drawn from a known ``true_breach_probability_6m``.

    ``breach_probability_6m`` is the "model": the true probability distorted by
    log-odds noise (``score_noise``), so the policy acts on an imperfect score. The last
    six months have ``label_complete = False`` (their outcome window is not over).
    """
    rng = np.random.default_rng(seed)
    rng2 = np.random.default_rng([seed, 2])  # the v2 columns' own stream
    as_of_dates = pd.date_range(pd.Period(start, "M").to_timestamp(how="end").normalize(),
                                periods=months, freq="ME")
    ids = np.array([f"S{i:06d}" for i in range(n_suppliers)])
    tier = rng.choice(TIERS, n_suppliers, p=TIER_WEIGHTS)
    country = rng.choice(COUNTRIES, n_suppliers, p=COUNTRY_WEIGHTS)
    opt_in_month = np.where(rng.random(n_suppliers) < 0.8,
                            rng.integers(-12, months, n_suppliers), months + 1)
    tenure0 = rng.integers(0, 60, n_suppliers)
    quality = rng.normal(0, 1, n_suppliers)  # latent: higher is safer
    monthly_volume = rng.lognormal(np.log(15_000), 1.2, n_suppliers)
    avg_order = rng.lognormal(np.log(2_000), 0.6, n_suppliers)
    assured_share = rng.beta(4, 3, n_suppliers)
    pre_shipment_share = rng2.beta(3, 2, n_suppliers)

    rows = []
    for m, as_of in enumerate(as_of_dates):
        quality = quality + rng.normal(0, 0.15, n_suppliers)  # slow drift
        volume = monthly_volume * np.exp(rng.normal(0, 0.2, n_suppliers))
        opted_in = opt_in_month <= m
        deal_12m = volume * 12 * np.exp(rng.normal(0, 0.1, n_suppliers))
        assured_12m = np.where(opt_in_month <= m - 3, deal_12m * assured_share, 0.0)
        orders_6m = rng.poisson(np.clip(volume * 6 / avg_order, 0, 1e6))
        true_p = _sigmoid(-3.2 - 0.9 * quality + 0.25 * (tier == "free")
                          + 0.15 * np.log1p(orders_6m) / 3)
        score = _sigmoid(np.log(true_p / (1 - true_p)) + rng.normal(0, score_noise, n_suppliers))
        breach = rng.random(n_suppliers) < true_p
        next_assured_6m = np.where(opted_in, volume * 6 * assured_share, 0.0) * np.exp(
            rng.normal(0, 0.2, n_suppliers)
        )
        # A breach refunds one or a few orders, sometimes most of an order book.
        refund = np.where(breach, avg_order * rng.lognormal(0.5, 1.0, n_suppliers), 0.0)
        assured_refund = refund * np.where(opted_in, assured_share, 0.0)
        review_count = rng.poisson(orders_6m * 0.3)
        extra = _v2_columns(rng2, quality, tier, volume, pre_shipment_share, score_noise) if v2 \
            else {}
        rows.append(
            pd.DataFrame(
                {
                    **extra,
                    "as_of_date": as_of.date(),
                    "supplier_id": ids,
                    "breach_probability_6m": score,
                    "true_breach_probability_6m": true_p,
                    "opted_in": opted_in,
                    "membership_tier": tier,
                    "country": country,
                    "tenure_months": tenure0 + m,
                    "orders_6m": orders_6m,
                    "deal_value_12m_usd": deal_12m,
                    "assured_deal_value_12m_usd": assured_12m,
                    "review_mean_6m": np.where(
                        review_count > 0,
                        np.clip(4.2 + 0.4 * quality + rng.normal(0, 0.3, n_suppliers), 1, 5),
                        np.nan,
                    ),
                    "review_count_6m": review_count,
                    "on_time_shipment_rate_6m": np.where(
                        orders_6m > 0, np.clip(_sigmoid(2.5 + quality), 0, 1), np.nan
                    ),
                    "completion_rate_6m": np.where(orders_6m > 0, _sigmoid(3 + quality), np.nan),
                    "dispute_ratio_6m": np.where(orders_6m > 0, true_p / 5, np.nan),
                    "breach_6m": breach,
                    "breach_refund_usd_6m": refund,
                    "assured_breach_refund_usd_6m": assured_refund,
                    "assured_deal_value_next_6m_usd": next_assured_6m,
                    "assured_orders_next_6m": np.round(next_assured_6m / avg_order),
                    "label_complete": m < months - 6,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _v2_columns(
    rng: np.random.Generator,
    quality: np.ndarray,
    tier: np.ndarray,
    monthly_volume: np.ndarray,
    pre_shipment_share: np.ndarray,
    score_noise: float,
) -> dict[str, np.ndarray]:
    """One month of v2 scores and outcomes: risk from quality and tier, never size."""
    n = len(quality)
    free = tier == "free"
    true_rate = np.clip(0.010 * np.exp(-0.7 * quality + 0.3 * free), 0, 0.3)
    true_default = _sigmoid(-4.2 - 1.0 * quality + 0.3 * free)
    rate = true_rate * np.exp(rng.normal(0, score_noise, n) - score_noise**2 / 2)
    default_p = _sigmoid(np.log(true_default / (1 - true_default))
                         + rng.normal(0, score_noise, n))
    order_value = monthly_volume * 6 * np.exp(rng.normal(0, 0.2, n))
    defaulted = rng.random(n) < true_default
    # Refunds scatter around the true rate; a defaulter also refunds much of its book.
    refunds = order_value * true_rate * rng.gamma(2.0, 0.5, n)
    refunds = np.where(defaulted, refunds + order_value * rng.uniform(0.2, 0.6, n), refunds)
    pre = refunds * pre_shipment_share
    return {
        "loss_rate_6m": rate,
        "loss_rate_pre_shipment_6m": rate * pre_shipment_share,
        "loss_rate_post_delivery_6m": rate * (1 - pre_shipment_share),
        "default_probability_6m": default_p,
        "true_loss_rate_6m": true_rate,
        "true_default_probability_6m": true_default,
        "forward_order_value_6m_usd": order_value,
        "pre_shipment_refund_usd_6m": pre,
        "post_delivery_refund_usd_6m": refunds - pre,
        "default_6m": defaulted,
    }
