"""One month of trading events: orders, disputes, reviews, inquiries.

Everything is drawn for all suppliers at once with numpy; the only loop is the caller's
loop over months. Each order is drawn from its supplier's state in the order's month
(`world.state(month)`), through the probabilities of `behaviour.py`, so the ground truth
can integrate over exactly the process used here.

The landing zone is a snapshot at the data horizon: an event is drawn with its true
time, then anything at or after the horizon is hidden (a later shipment leaves
`shipped_at` null and the order `placed`, a later resolution leaves the dispute `open`,
a later dispute or review is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthetic import behaviour as bh
from synthetic.arrow_columns import id_strings, labels, timestamps
from synthetic.world import BUYER_COUNTRY_WEIGHTS, DAY_US, SupplierWorld

ORDER_STATUSES = ("placed", "shipped", "completed", "cancelled")
CANCELLED_BY = ("buyer", "supplier", "platform")  # same order as the cancelled paths
PAYMENT_METHODS = ("tt", "credit_card", "paypal", "lc", "alipay", "ach", "escrow")
PAYMENT_WEIGHTS = np.array([0.42, 0.22, 0.12, 0.08, 0.07, 0.05, 0.04])
ASSURED_SHARE_ONCE_OPTED_IN = 0.8
REVIEW_PROBABILITY = 0.35
INQUIRY_FROM_POOL_SHARE = 0.6  # the rest come from buyers who may never order

SUPPLIER_ID_WIDTH = 6
BUYER_ID_WIDTH = 8
ORDER_ID_WIDTH = 10
DISPUTE_ID_WIDTH = 9
REVIEW_ID_WIDTH = 10
INQUIRY_ID_WIDTH = 10


@dataclass
class IdCounters:
    """Last id number used per table, carried from month to month."""

    orders: int = 0
    disputes: int = 0
    reviews: int = 0
    inquiries: int = 0


# An event that never happens to an order (a day or instant later than any as-of date).
NEVER = np.iinfo(np.int64).max // 2


@dataclass(frozen=True)
class OrderTimeline:
    """When each of a month's orders reaches each observable stage, for the truth.

    Days since the epoch (instants in microseconds where the landing zone has them to the
    microsecond), NEVER for a stage the order does not reach; true times, before the
    horizon hides anything. Everything here is what a snapshot at some later T shows of
    the order once the time has passed; the dispute's outcome and refund are left out on
    purpose: the truth may use only their probabilities.
    """

    supplier: np.ndarray
    created_us: np.ndarray
    created_day: np.ndarray
    promised_day: np.ndarray
    cancelled_us: np.ndarray
    shipped_day: np.ndarray
    delivered_day: np.ndarray
    dispute_reason: np.ndarray  # -1: never disputed
    dispute_opened_day: np.ndarray
    dispute_resolved_day: np.ndarray

    def take(self, orders: np.ndarray) -> "OrderTimeline":
        """The timeline of the orders at these positions."""
        return OrderTimeline(**{field: getattr(self, field)[orders] for field in self.__dataclass_fields__})


@dataclass
class MonthEvents:
    orders: pa.Table
    disputes: pa.Table
    reviews: pa.Table | None
    inquiries: pa.Table | None
    orders_per_supplier: np.ndarray  # every order created this month, for the truth
    timeline: OrderTimeline  # the same orders' stages, for the truth given the state at T


def sample_pmf(rng: np.random.Generator, pmf: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(pmf)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").astype(np.int64)


def sample_categories(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of a (n, k) probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities)) * cumulative[:, -1]
    return np.minimum((draws[:, None] >= cumulative).sum(axis=1), probabilities.shape[1] - 1)


def time_in_day(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """A uniformly random instant within each given day, in microseconds."""
    return days * DAY_US + (rng.random(len(days)) * DAY_US).astype(np.int64)


def draw_buyers(world: SupplierWorld, suppliers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pool = world.buyer_pool_size[suppliers]
    index = np.floor(pool * rng.random(len(suppliers)) ** world.buyer_concentration[suppliers])
    return (world.buyer_offset[suppliers] + index.astype(np.int64)) % world.n_buyers


def sample_month(
    world: SupplierWorld,
    month: int,
    rng: np.random.Generator,
    counters: IdCounters,
    inquiries_per_order: float,
    reviews_rng: np.random.Generator | None,
    inquiries_rng: np.random.Generator | None,
) -> MonthEvents:
    """Draw one month; `rng` drives orders and disputes, the optional tables have their
    own generators (None: table not produced) so leaving them out changes nothing else."""
    grid = world.grid
    horizon_us = grid.horizon_us
    month_start_us, month_end_us = int(grid.start_us[month]), int(grid.start_us[month + 1])
    n_suppliers = world.n_suppliers

    # ---------------------------------------------------------------- orders
    expected = world.expected_orders(month, world.z[:, month], world.fraud_age(month))
    orders_per_supplier = rng.poisson(expected)
    supplier = np.repeat(np.arange(n_suppliers), orders_per_supplier)
    created_us = month_start_us + (rng.random(len(supplier)) * (month_end_us - month_start_us)).astype(np.int64)
    chronological = np.argsort(created_us, kind="stable")
    supplier, created_us = supplier[chronological], created_us[chronological]
    n = len(supplier)
    created_day = created_us // DAY_US

    state = world.state(month, supplier)
    path = sample_categories(rng, bh.path_probabilities(state))
    lead = sample_pmf(rng, bh.PROMISE_LEAD_DAYS, n)
    early = sample_pmf(rng, bh.EARLY_DAYS, n)
    late_extra = sample_pmf(rng, bh.LATE_EXTRA_DAYS, n)
    is_late = np.isin(path, bh.LATE_PATHS)
    is_slow = np.isin(path, bh.SLOW_PATHS)
    ship_day = created_day + np.where(is_late, lead + late_extra, lead - early)
    transit = np.where(is_slow, sample_pmf(rng, bh.SLOW_TRANSIT_DAYS, n), sample_pmf(rng, bh.TRANSIT_DAYS, n))
    deliver_day = ship_day + transit
    shipped_us = time_in_day(rng, ship_day)
    delivered_us = time_in_day(rng, deliver_day)
    promised_us = (created_day + lead) * DAY_US  # the promised day, from its first instant
    # Cancellation happens some time before the promised ship day.
    cancel_us = created_us + (rng.random(n) * lead * DAY_US).astype(np.int64)

    is_cancelled = np.isin(path, bh.CANCELLED_PATHS)
    shipped_seen = np.isin(path, bh.SHIPPED_PATHS) & (shipped_us < horizon_us)
    delivered_seen = np.isin(path, bh.DELIVERED_PATHS) & (delivered_us < horizon_us)
    cancelled_seen = is_cancelled & (cancel_us < horizon_us)
    status = np.select([cancelled_seen, delivered_seen, shipped_seen], [3, 2, 1], default=0)

    amount = np.maximum(1.0, np.round(np.exp(world.ticket_log_mean[supplier] + 0.8 * rng.standard_normal(n)), 2))
    payment = rng.choice(len(PAYMENT_METHODS), size=n, p=PAYMENT_WEIGHTS / PAYMENT_WEIGHTS.sum())
    opt_in = world.opt_in_us[supplier]
    assured = (opt_in >= 0) & (opt_in <= created_us) & (rng.random(n) < ASSURED_SHARE_ONCE_OPTED_IN)
    buyer = draw_buyers(world, supplier, rng)

    order_numbers = counters.orders + 1 + np.arange(n)
    counters.orders += n
    order_ids = id_strings("O", order_numbers, ORDER_ID_WIDTH)
    orders = pa.table(
        {
            "order_id": order_ids,
            "supplier_id": id_strings("S", supplier + 1, SUPPLIER_ID_WIDTH),
            "buyer_id": id_strings("B", buyer + 1, BUYER_ID_WIDTH),
            "buyer_country": labels(tuple(BUYER_COUNTRY_WEIGHTS), world.buyer_country[buyer]),
            "created_at": timestamps(created_us),
            "amount_usd": pa.array(amount, type=pa.float64()),
            "payment_method": labels(PAYMENT_METHODS, payment),
            "assured": pa.array(assured, type=pa.bool_()),
            "promised_ship_by": timestamps(promised_us),
            "shipped_at": timestamps(shipped_us, missing=~shipped_seen),
            "delivered_at": timestamps(delivered_us, missing=~delivered_seen),
            "status": labels(ORDER_STATUSES, status),
            "cancelled_by": labels(CANCELLED_BY, np.where(cancelled_seen, path, 0), missing=~cancelled_seen),
            "cancelled_at": timestamps(cancel_us, missing=~cancelled_seen),
        }
    )

    # ---------------------------------------------------------------- disputes
    candidates = np.flatnonzero(~is_cancelled)
    candidate_state = world.state(month, supplier[candidates])
    disputed = candidates[rng.random(len(candidates)) < bh.dispute_probability(path[candidates], candidate_state)]
    d_path = path[disputed]
    d_z = world.z[supplier[disputed], month]
    reason = sample_categories(rng, bh.REASON_GIVEN_PATH[d_path])
    buyer_wins = rng.random(len(disputed)) < bh.buyer_favored_probability(d_path, reason, d_z)
    other_outcome = bh.O_SUPPLIER_FAVORED + rng.choice(
        len(bh.OTHER_OUTCOME_SHARES), size=len(disputed), p=bh.OTHER_OUTCOME_SHARES
    )
    outcome = np.where(buyer_wins, bh.O_BUYER_FAVORED, other_outcome)
    anchor_day = np.select(
        [np.isin(reason, (bh.R_LATE_SHIPMENT, bh.R_NOT_RECEIVED)), reason == bh.R_QUALITY],
        [created_day[disputed] + lead[disputed], deliver_day[disputed]],
        default=created_day[disputed],
    )
    open_lag = np.zeros(len(disputed), dtype=np.int64)
    for r, pmf in bh.OPEN_DAYS.items():
        of_reason = reason == r
        open_lag[of_reason] = sample_pmf(rng, pmf, int(of_reason.sum()))
    opened_day = anchor_day + open_lag
    resolved_day = opened_day + sample_pmf(rng, bh.RESOLVE_DAYS, len(disputed))
    opened_us = time_in_day(rng, opened_day)
    resolved_us = time_in_day(rng, resolved_day)
    d_amount = amount[disputed]
    refund_share = np.select(
        [outcome == bh.O_BUYER_FAVORED, outcome == bh.O_SETTLED],
        [np.where(rng.random(len(disputed)) < bh.REFUND_FULL_PROBABILITY, 1.0,
                  rng.uniform(*bh.REFUND_PARTIAL_SHARE, len(disputed))),
         rng.uniform(*bh.SETTLED_REFUND_SHARE, len(disputed))],
        default=0.0,
    )
    refund = np.minimum(d_amount, np.round(d_amount * refund_share, 2))

    resolved_seen = resolved_us < horizon_us
    outcome_seen = np.where(resolved_seen, outcome, bh.O_OPEN)
    refund_seen = np.where(resolved_seen, refund, 0.0)
    kept = np.flatnonzero(opened_us < horizon_us)
    kept = kept[np.argsort(opened_us[kept], kind="stable")]
    dispute_numbers = counters.disputes + 1 + np.arange(len(kept))
    counters.disputes += len(kept)
    disputes = pa.table(
        {
            "dispute_id": id_strings("D", dispute_numbers, DISPUTE_ID_WIDTH),
            "order_id": order_ids.take(pa.array(disputed[kept])),
            "opened_at": timestamps(opened_us[kept]),
            "reason": labels(bh.REASONS, reason[kept]),
            "outcome": labels(bh.OUTCOMES, outcome_seen[kept]),
            "resolved_at": timestamps(resolved_us[kept], missing=~resolved_seen[kept]),
            "refund_usd": pa.array(refund_seen[kept], type=pa.float64()),
        }
    )

    # ---------------------------------------------------------------- reviews
    reviews = None
    if reviews_rng is not None:
        rng = reviews_rng
        reviewed = np.flatnonzero(np.isin(path, bh.DELIVERED_PATHS) & (rng.random(n) < REVIEW_PROBABILITY))
        review_us = time_in_day(rng, deliver_day[reviewed] + sample_pmf(rng, bh.REVIEW_DAYS, len(reviewed)))
        has_dispute = np.zeros(n, dtype=bool)
        has_dispute[disputed] = True
        r_supplier = supplier[reviewed]
        score = (
            4.1
            + 0.5 * (world.z[r_supplier, month] - bh.Z_REF)
            + world.review_offset[r_supplier]
            - 0.7 * is_late[reviewed]
            - 0.4 * is_slow[reviewed]
            - 1.3 * has_dispute[reviewed]
            + 0.9 * rng.standard_normal(len(reviewed))
        )
        rating = np.clip(np.round(score), 1, 5).astype(np.int32)
        kept = np.flatnonzero(review_us < horizon_us)
        kept = kept[np.argsort(review_us[kept], kind="stable")]
        review_numbers = counters.reviews + 1 + np.arange(len(kept))
        counters.reviews += len(kept)
        reviews = pa.table(
            {
                "review_id": id_strings("R", review_numbers, REVIEW_ID_WIDTH),
                "order_id": order_ids.take(pa.array(reviewed[kept])),
                "created_at": timestamps(review_us[kept]),
                "rating": pa.array(rating[kept], type=pa.int32()),
            }
        )

    # ---------------------------------------------------------------- inquiries
    inquiries = None
    if inquiries_rng is not None:
        inquiries = sample_inquiries(world, month, inquiries_rng, counters, inquiries_per_order * expected)

    dispute_reason = np.full(n, -1, dtype=np.int64)
    dispute_reason[disputed] = reason
    dispute_opened_day = np.full(n, NEVER, dtype=np.int64)
    dispute_opened_day[disputed] = opened_day
    dispute_resolved_day = np.full(n, NEVER, dtype=np.int64)
    dispute_resolved_day[disputed] = resolved_day
    timeline = OrderTimeline(
        supplier=supplier,
        created_us=created_us,
        created_day=created_day,
        promised_day=created_day + lead,
        cancelled_us=np.where(is_cancelled, cancel_us, NEVER),
        shipped_day=np.where(np.isin(path, bh.SHIPPED_PATHS), ship_day, NEVER),
        delivered_day=np.where(np.isin(path, bh.DELIVERED_PATHS), deliver_day, NEVER),
        dispute_reason=dispute_reason,
        dispute_opened_day=dispute_opened_day,
        dispute_resolved_day=dispute_resolved_day,
    )
    return MonthEvents(orders, disputes, reviews, inquiries, orders_per_supplier, timeline)


def sample_inquiries(
    world: SupplierWorld, month: int, rng: np.random.Generator, counters: IdCounters, expected: np.ndarray
) -> pa.Table:
    grid = world.grid
    horizon_us = grid.horizon_us
    month_start_us, month_end_us = int(grid.start_us[month]), int(grid.start_us[month + 1])
    supplier = np.repeat(np.arange(world.n_suppliers), rng.poisson(expected))
    n = len(supplier)
    received_us = month_start_us + (rng.random(n) * (month_end_us - month_start_us)).astype(np.int64)
    chronological = np.argsort(received_us, kind="stable")
    supplier, received_us = supplier[chronological], received_us[chronological]

    from_pool = rng.random(n) < INQUIRY_FROM_POOL_SHARE
    buyer = np.where(from_pool, draw_buyers(world, supplier, rng), rng.integers(0, world.n_buyers, n))

    z = world.z[supplier, month]
    fraud = world.fraud_age(month)[supplier] >= 0
    # Reliability shows in responsiveness, blurred by each supplier's own habits;
    # fraudsters answer eagerly to lure buyers.
    answer_probability = np.where(fraud, 0.9, bh.sigmoid(1.8 + 0.7 * (z - bh.Z_REF) + world.response_offset[supplier]))
    answered = rng.random(n) < answer_probability
    median_hours = np.where(fraud, 2.0, np.exp(np.log(5.0) - 0.5 * (z - bh.Z_REF) + world.response_speed_offset[supplier]))
    response_hours = median_hours * np.exp(1.0 * rng.standard_normal(n))
    first_response_us = received_us + (response_hours * 3_600_000_000).astype(np.int64) + 1
    response_seen = answered & (first_response_us < horizon_us)

    numbers = counters.inquiries + 1 + np.arange(n)
    counters.inquiries += n
    return pa.table(
        {
            "inquiry_id": id_strings("Q", numbers, INQUIRY_ID_WIDTH),
            "supplier_id": id_strings("S", supplier + 1, SUPPLIER_ID_WIDTH),
            "buyer_id": id_strings("B", buyer + 1, BUYER_ID_WIDTH),
            "received_at": timestamps(received_us),
            "first_response_at": timestamps(first_response_us, missing=~response_seen),
        }
    )
