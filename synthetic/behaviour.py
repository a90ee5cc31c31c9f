"""How a supplier's hidden state turns into observable trading behaviour.

This module is the single source of the generator's probabilities and delays. The event
sampler (`events.py`) draws from these functions and the ground truth (`truth.py`)
integrates over the very same functions, which is what makes `_truth/` exact rather than
an approximation of what was written.

Vocabulary
----------
* ``z``: latent reliability on a logit scale (higher is more reliable), one value per
  supplier and month, drifting month to month (see `world.py`).
* ``fraud``: an absorbing state; a fraudulent supplier takes orders and never ships.
* An order follows one **path** (cancelled by someone, shipped on time or late, normal
  or slow transit, lost in transit, never shipped). The path probabilities depend on
  the supplier's state; the delays within a path come from fixed day distributions.
* A non-cancelled order may get one **dispute**, with a **reason** that depends on its
  path, and an **outcome**; ``buyer_favored`` outcomes are the breaches of docs/design.md §4.

All delays are whole days added to the *day* of an anchor event, each at least one day,
and the time of day of every event is drawn afresh. That keeps every timestamp strictly
after the one it follows, and it makes the resolution day of a dispute the created day
plus a sum of independent day counts, whose distribution is an exact convolution
(`breach_lag_pmf`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------- paths
PATHS = (
    "cancelled_buyer",
    "cancelled_supplier",
    "cancelled_platform",
    "on_time",
    "on_time_slow",
    "late",
    "late_slow",
    "lost",
    "unshipped",
)
P_CANCELLED_BUYER, P_CANCELLED_SUPPLIER, P_CANCELLED_PLATFORM = 0, 1, 2
P_ON_TIME, P_ON_TIME_SLOW, P_LATE, P_LATE_SLOW, P_LOST, P_UNSHIPPED = 3, 4, 5, 6, 7, 8
CANCELLED_PATHS = (P_CANCELLED_BUYER, P_CANCELLED_SUPPLIER, P_CANCELLED_PLATFORM)
SHIPPED_PATHS = (P_ON_TIME, P_ON_TIME_SLOW, P_LATE, P_LATE_SLOW, P_LOST)
DELIVERED_PATHS = (P_ON_TIME, P_ON_TIME_SLOW, P_LATE, P_LATE_SLOW)
LATE_PATHS = (P_LATE, P_LATE_SLOW)
SLOW_PATHS = (P_ON_TIME_SLOW, P_LATE_SLOW)

REASONS = ("late_shipment", "quality", "not_received", "other")
R_LATE_SHIPMENT, R_QUALITY, R_NOT_RECEIVED, R_OTHER = 0, 1, 2, 3

OUTCOMES = ("open", "buyer_favored", "supplier_favored", "settled", "withdrawn")
O_OPEN, O_BUYER_FAVORED, O_SUPPLIER_FAVORED, O_SETTLED, O_WITHDRAWN = 0, 1, 2, 3, 4

# Reliability is centred here: a supplier at Z_REF behaves like the "typical" supplier.
Z_REF = 1.0

# P(reason | path, dispute); rows of cancelled paths are zero: cancelled orders are
# never disputed.
REASON_GIVEN_PATH = np.zeros((len(PATHS), len(REASONS)))
REASON_GIVEN_PATH[P_ON_TIME] = [0.00, 0.75, 0.00, 0.25]
REASON_GIVEN_PATH[P_ON_TIME_SLOW] = [0.00, 0.45, 0.35, 0.20]
REASON_GIVEN_PATH[P_LATE] = [0.60, 0.30, 0.00, 0.10]
REASON_GIVEN_PATH[P_LATE_SLOW] = [0.45, 0.20, 0.35, 0.00]
REASON_GIVEN_PATH[P_LOST] = [0.00, 0.00, 0.90, 0.10]
REASON_GIVEN_PATH[P_UNSHIPPED] = [0.00, 0.00, 1.00, 0.00]

# Dispute propensity per path (logit at z = Z_REF, before the supplier's own offset);
# cancelled orders are never disputed (-50: probability indistinguishable from 0).
DISPUTE_BASE_LOGIT = np.full(len(PATHS), -50.0)
DISPUTE_BASE_LOGIT[[P_ON_TIME, P_ON_TIME_SLOW, P_LATE, P_LATE_SLOW, P_LOST]] = [
    -5.6,
    -4.3,
    -4.0,
    -3.4,
    0.5,
]
DISPUTE_Z_SLOPE = 0.9
# A fraudulent supplier's unshipped orders: most buyers chase their money.
UNSHIPPED_DISPUTE_PROBABILITY = 0.7

# Outcome: logit of buyer_favored at z = Z_REF per reason; unreliable suppliers lose more.
BUYER_FAVORED_BASE_LOGIT = np.array([-0.2, -0.9, 0.6, -1.8])
BUYER_FAVORED_Z_SLOPE = 0.8
UNSHIPPED_BUYER_FAVORED_PROBABILITY = 0.92
# How the other outcomes share what buyer_favored leaves.
OTHER_OUTCOME_SHARES = np.array([0.45, 0.35, 0.20])  # supplier_favored, settled, withdrawn


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class SupplierState:
    """The hidden state that drives an order's path, dispute and outcome.

    Arrays broadcast against each other: per order in the sampler, (suppliers, continuations)
    in the truth's Monte Carlo continuation, with static offsets of shape (suppliers, 1).
    """

    z: np.ndarray
    fraud: np.ndarray
    cancel_offset: np.ndarray
    late_offset: np.ndarray
    transit_offset: np.ndarray
    dispute_offset: np.ndarray


CANCEL_BY_BUYER_PROBABILITY = 0.03
CANCEL_BY_PLATFORM_PROBABILITY = 0.004
# A fraudulent supplier ships nothing; buyers and the platform cancel some orders.
FRAUD_PATH_PROBABILITIES = np.zeros(len(PATHS))
FRAUD_PATH_PROBABILITIES[[P_CANCELLED_BUYER, P_CANCELLED_PLATFORM, P_UNSHIPPED]] = [0.08, 0.22, 0.70]


def shipped_path_probabilities(state: SupplierState) -> dict[int, np.ndarray]:
    """P(path | state) of a non-fraudulent supplier, for the cancelled-by-supplier path
    and the paths that ship (on time / late x normal / slow transit, lost)."""
    dz = state.z - Z_REF
    cancel_supplier = sigmoid(-3.1 - 0.7 * dz + state.cancel_offset)
    going = 1.0 - CANCEL_BY_BUYER_PROBABILITY - CANCEL_BY_PLATFORM_PROBABILITY - cancel_supplier
    lost = going * sigmoid(-5.0 - 0.6 * dz)
    shipped = going - lost
    late = sigmoid(-1.8 - 0.8 * dz + state.late_offset)
    slow = sigmoid(-2.3 + state.transit_offset - 0.4 * dz)
    return {
        P_CANCELLED_SUPPLIER: cancel_supplier,
        P_ON_TIME: shipped * (1 - late) * (1 - slow),
        P_ON_TIME_SLOW: shipped * (1 - late) * slow,
        P_LATE: shipped * late * (1 - slow),
        P_LATE_SLOW: shipped * late * slow,
        P_LOST: lost,
    }


def path_probabilities(state: SupplierState) -> np.ndarray:
    """P(path | state), shape state.shape + (len(PATHS),)."""
    shape = np.broadcast_shapes(
        np.shape(state.z), np.shape(state.fraud), np.shape(state.cancel_offset),
        np.shape(state.late_offset), np.shape(state.transit_offset),
    )
    probs = np.zeros(shape + (len(PATHS),))
    probs[..., P_CANCELLED_BUYER] = CANCEL_BY_BUYER_PROBABILITY
    probs[..., P_CANCELLED_PLATFORM] = CANCEL_BY_PLATFORM_PROBABILITY
    for path, p in shipped_path_probabilities(state).items():
        probs[..., path] = p
    fraud = np.broadcast_to(state.fraud, shape)
    if fraud.any():
        probs[fraud] = FRAUD_PATH_PROBABILITIES
    return probs


def dispute_probability(path: np.ndarray, state: SupplierState) -> np.ndarray:
    """P(dispute | path, state); zero on cancelled paths."""
    logit = DISPUTE_BASE_LOGIT[path] - DISPUTE_Z_SLOPE * (state.z - Z_REF) + state.dispute_offset
    p = sigmoid(logit)
    return np.where(path == P_UNSHIPPED, UNSHIPPED_DISPUTE_PROBABILITY, p)


def buyer_favored_probability(path: np.ndarray, reason: np.ndarray, z: np.ndarray) -> np.ndarray:
    """P(outcome = buyer_favored | dispute with this path and reason, reliability z)."""
    p = sigmoid(BUYER_FAVORED_BASE_LOGIT[reason] - BUYER_FAVORED_Z_SLOPE * (z - Z_REF))
    return np.where(path == P_UNSHIPPED, UNSHIPPED_BUYER_FAVORED_PROBABILITY, p)


# --------------------------------------------------------------------------- delays
def uniform_pmf(low: int, high: int) -> np.ndarray:
    """Whole days uniformly in [low, high]; index = days."""
    pmf = np.zeros(high + 1)
    pmf[low : high + 1] = 1.0 / (high - low + 1)
    return pmf


def geometric_pmf(low: int, high: int, mean_extra: float) -> np.ndarray:
    """Truncated geometric on [low, high] with roughly `mean_extra` days beyond low."""
    days = np.arange(high + 1)
    pmf = np.where(days >= low, (1 - 1 / (mean_extra + 1)) ** (days - low), 0.0)
    return pmf / pmf.sum()


PROMISE_LEAD_DAYS = uniform_pmf(3, 21)  # promised_ship_by = created day + lead
EARLY_DAYS = uniform_pmf(0, 2)  # on time: shipped this many days before the promise
LATE_EXTRA_DAYS = geometric_pmf(1, 45, 7.0)  # late: shipped this many days after it
TRANSIT_DAYS = uniform_pmf(4, 14)
SLOW_TRANSIT_DAYS = uniform_pmf(15, 45)
OPEN_DAYS = {  # dispute opened this many days after its anchor event
    R_LATE_SHIPMENT: uniform_pmf(1, 14),  # anchor: promised ship day
    R_NOT_RECEIVED: uniform_pmf(20, 50),  # anchor: promised ship day
    R_QUALITY: uniform_pmf(1, 30),  # anchor: delivery day
    R_OTHER: uniform_pmf(1, 45),  # anchor: order day
}
RESOLVE_DAYS = uniform_pmf(5, 45)  # resolved this many days after opening
REVIEW_DAYS = uniform_pmf(1, 30)  # review written this many days after delivery


def add_lags(*pmfs: np.ndarray) -> np.ndarray:
    """Distribution of the sum of independent day counts."""
    out = np.array([1.0])
    for pmf in pmfs:
        out = np.convolve(out, pmf)
    return out


def subtract_lag(pmf: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """Distribution of X - Y for independent X, Y, assuming X - Y >= 0."""
    out = np.zeros(len(pmf))
    for y, py in enumerate(minus):
        if py:
            out[: len(pmf) - y] += py * pmf[y:]
    return out


def ship_lag_pmf(path: int) -> np.ndarray:
    if path in (P_ON_TIME, P_ON_TIME_SLOW, P_LOST):
        return subtract_lag(PROMISE_LEAD_DAYS, EARLY_DAYS)
    return add_lags(PROMISE_LEAD_DAYS, LATE_EXTRA_DAYS)


def delivery_lag_pmf(path: int) -> np.ndarray:
    transit = SLOW_TRANSIT_DAYS if path in SLOW_PATHS else TRANSIT_DAYS
    return add_lags(ship_lag_pmf(path), transit)


def breach_lag_pmf(path: int, reason: int) -> np.ndarray:
    """Days from an order's created day to the day its dispute is resolved."""
    if reason in (R_LATE_SHIPMENT, R_NOT_RECEIVED):
        anchor = PROMISE_LEAD_DAYS
    elif reason == R_QUALITY:
        anchor = delivery_lag_pmf(path)
    else:
        anchor = np.array([1.0])
    return add_lags(anchor, OPEN_DAYS[reason], RESOLVE_DAYS)


# Every (path, reason) pair that can end in a breach, in a fixed order.
BREACH_ROUTES: tuple[tuple[int, int], ...] = tuple(
    (p, r) for p in range(len(PATHS)) for r in range(len(REASONS)) if REASON_GIVEN_PATH[p, r] > 0
)


def routes_with_reasons(reasons: tuple[int, ...]) -> np.ndarray:
    """1.0 for the breach routes whose reason is one of `reasons`, else 0.0."""
    return np.array([1.0 if r in reasons else 0.0 for _, r in BREACH_ROUTES])


# The two covers Trade Assurance sells (docs/design.md §4); 'other' belongs to neither.
PRE_SHIPMENT_REASONS = (R_LATE_SHIPMENT, R_NOT_RECEIVED)
POST_DELIVERY_REASONS = (R_QUALITY,)

# A buyer-won dispute refunds the whole order with this probability, else a share drawn
# uniformly from REFUND_PARTIAL_SHARE; a settled one a share from SETTLED_REFUND_SHARE.
REFUND_FULL_PROBABILITY = 0.5
REFUND_PARTIAL_SHARE = (0.3, 1.0)
SETTLED_REFUND_SHARE = (0.1, 0.6)
MEAN_BUYER_FAVORED_REFUND_SHARE = (
    REFUND_FULL_PROBABILITY + (1 - REFUND_FULL_PROBABILITY) * sum(REFUND_PARTIAL_SHARE) / 2
)


def breach_route_probabilities(state: SupplierState) -> np.ndarray:
    """P(an order takes route (path, reason) and ends buyer_favored), last axis = routes."""
    paths = path_probabilities(state)
    shape = paths.shape[:-1]
    out = np.empty(shape + (len(BREACH_ROUTES),))
    disputed: dict[int, np.ndarray] = {}  # P(path and dispute), per path
    buyer_wins: dict[tuple[bool, int], np.ndarray] = {}  # P(buyer_favored), per reason
    for k, (p, r) in enumerate(BREACH_ROUTES):
        if p not in disputed:
            disputed[p] = paths[..., p] * dispute_probability(np.full(shape, p), state)
        key = (p == P_UNSHIPPED, r)
        if key not in buyer_wins:
            buyer_wins[key] = buyer_favored_probability(np.full(shape, p), np.full(shape, r), state.z)
        out[..., k] = disputed[p] * REASON_GIVEN_PATH[p, r] * buyer_wins[key]
    return out


def route_window_probabilities(month_start_days: np.ndarray, n_created: int, n_asof: int) -> np.ndarray:
    """P(resolution day in the six months after month end T | route, created month c).

    Returns shape (routes, n_created, n_asof): entry [k, c, m] is the probability that an
    order created uniformly in month c, taking route k, has its dispute resolved in
    months m+1 .. m+6, i.e. in (T_m, T_m + 6 months] in days. `month_start_days` needs
    at least max(n_created, n_asof + 7) + 1 entries.
    """
    out = np.zeros((len(BREACH_ROUTES), n_created, n_asof))
    for k, (p, r) in enumerate(BREACH_ROUTES):
        cdf = np.concatenate([[0.0], np.cumsum(breach_lag_pmf(p, r))])  # cdf[x] = P(L < x)

        def p_below(x):
            return cdf[np.clip(x, 0, len(cdf) - 1)]

        for c in range(n_created):
            days = np.arange(month_start_days[c], month_start_days[c + 1])
            lo = month_start_days[1 : n_asof + 1][:, None] - days[None, :]
            hi = month_start_days[7 : n_asof + 7][:, None] - days[None, :]
            out[k, c, :] = (p_below(hi) - p_below(lo)).mean(axis=1)
    return np.clip(out, 0.0, 1.0)  # cumulative sums can overshoot 1 by rounding


def window_breach_probability(state: SupplierState, route_window: np.ndarray) -> np.ndarray:
    """sum_k P(route k | state) * route_window[k]: one order's chance of a breach in a window.

    The same numbers as `breach_route_probabilities(state) @ route_window`, computed
    lean for the truth's Monte Carlo (millions of states per month end): sigmoids that
    share their z-dependence share one exp, since sigmoid(a - t) = 1 / (1 + e^-a e^t).
    """
    return window_breach_probabilities(state, [route_window])[0]


def window_breach_probabilities(state: SupplierState, route_windows: list[np.ndarray]) -> list[np.ndarray]:
    """`window_breach_probability` for several route weightings at once (the state's
    sigmoids are computed once): e.g. the window probability masked by a reason group."""
    dz = state.z - Z_REF
    paths = shipped_path_probabilities(state)
    dispute_exp = np.exp(DISPUTE_Z_SLOPE * dz - state.dispute_offset)
    buyer_exp = np.exp(BUYER_FAVORED_Z_SLOPE * dz)
    buyer_wins = {
        r: 1.0 / (1.0 + np.exp(-BUYER_FAVORED_BASE_LOGIT[r]) * buyer_exp) for r in range(len(REASONS))
    }
    totals = [0.0] * len(route_windows)
    for p in SHIPPED_PATHS:
        routes = [(k, r) for k, (route_path, r) in enumerate(BREACH_ROUTES) if route_path == p]
        disputed = paths[p] / (1.0 + np.exp(-DISPUTE_BASE_LOGIT[p]) * dispute_exp)
        for i, route_window in enumerate(route_windows):
            totals[i] = totals[i] + disputed * sum(
                REASON_GIVEN_PATH[p, r] * route_window[k] * buyer_wins[r] for k, r in routes
            )
    return [
        np.where(state.fraud, fraud_window_breach_probability(route_window), total)
        for route_window, total in zip(route_windows, totals)
    ]


def fraud_window_breach_probability(route_window: np.ndarray) -> float:
    """The same for an order of a fraudulent supplier (which does not depend on z)."""
    p = P_UNSHIPPED
    return float(
        FRAUD_PATH_PROBABILITIES[p] * UNSHIPPED_DISPUTE_PROBABILITY * UNSHIPPED_BUYER_FAVORED_PROBABILITY
        * sum(REASON_GIVEN_PATH[p, r] * route_window[k] for k, (q, r) in enumerate(BREACH_ROUTES) if q == p)
    )


# --------------------------------------------------------------------------- default
# The default label (models/labels.py, mirrored here: synthetic/ never imports models/;
# tests/test_synthetic_truth.py checks they agree). An order *falls due* in T's window
# when its promised day lies in (T, window end - DEFAULT_GRACE_DAYS]; it *fails* when
# cancelled by the supplier or the platform, not shipped by the end of its promised day
# + DEFAULT_GRACE_DAYS, or refunded on a not_received claim resolved by the window end;
# buyer-cancelled orders do not count. Default: at least DEFAULT_MIN_ORDERS_DUE orders
# due and at least DEFAULT_FAILED_SHARE of them failed.
DEFAULT_GRACE_DAYS = 14
DEFAULT_MIN_ORDERS_DUE = 3
DEFAULT_FAILED_SHARE = 0.5


def late_beyond_grace_probability(grace_days: int = DEFAULT_GRACE_DAYS) -> float:
    """P(a late order ships after its promised day + grace): LATE_EXTRA_DAYS > grace."""
    return float(LATE_EXTRA_DAYS[grace_days + 1 :].sum())


def due_window_probabilities(
    month_start_days: np.ndarray, n_created: int, n_asof: int, grace_days: int = DEFAULT_GRACE_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """Timing of the default label, per created month c and as-of month m, shape
    (n_created, n_asof), for an order created uniformly in month c:

    * ``due[c, m]``: P(its promised day lies in (T_m, window end - grace]);
    * ``claim[c, m]``: P(that, and a not_received claim on it, opened and resolved with
      the generator's delays counted from the promised day, is resolved by the window end).
    """
    lead = PROMISE_LEAD_DAYS
    claim_cdf = np.cumsum(add_lags(OPEN_DAYS[R_NOT_RECEIVED], RESOLVE_DAYS))  # P(open + resolve <= x)
    due = np.zeros((n_created, n_asof))
    claim = np.zeros((n_created, n_asof))
    for m in range(n_asof):
        first, after_due, window_end = month_start_days[m + 1], month_start_days[m + 7] - grace_days, month_start_days[m + 7]
        for c in range(max(0, m - 1), min(n_created, m + 7)):
            promised = np.arange(month_start_days[c], month_start_days[c + 1])[:, None] + np.arange(len(lead))[None, :]
            weight = lead[None, :] * ((promised >= first) & (promised < after_due))
            slack = window_end - 1 - promised  # days a claim may take and still resolve in the window
            resolved = np.where(slack >= 0, claim_cdf[np.clip(slack, 0, len(claim_cdf) - 1)], 0.0)
            due[c, m] = weight.sum(axis=1).mean()
            claim[c, m] = (weight * resolved).sum(axis=1).mean()
    return due, claim


def due_order_probabilities(state: SupplierState, due: float, claim: float) -> tuple[np.ndarray, np.ndarray]:
    """(P(falls due and fails), P(falls due and does not fail)) for one order of a
    supplier in `state`, given the timing probabilities of `due_window_probabilities`.

    Honest: cancelled by the supplier or the platform (fails if due); late beyond the
    grace (a late path's extra days are independent of the rest); otherwise a buyer-won
    not_received claim resolved in the window (its timing runs from the promised day, so
    it is independent of the late delay). Fraudulent: every order that is not cancelled
    by its buyer goes unshipped or is cancelled by the platform: all fail.
    """
    dz = state.z - Z_REF
    paths = shipped_path_probabilities(state)
    beyond_grace = late_beyond_grace_probability()
    wins = sigmoid(BUYER_FAVORED_BASE_LOGIT[R_NOT_RECEIVED] - BUYER_FAVORED_Z_SLOPE * dz)
    claim_won = 0.0
    for p in SHIPPED_PATHS:
        if REASON_GIVEN_PATH[p, R_NOT_RECEIVED] > 0:
            disputed = paths[p] * sigmoid(DISPUTE_BASE_LOGIT[p] - DISPUTE_Z_SLOPE * dz + state.dispute_offset)
            in_time = 1.0 - beyond_grace if p in LATE_PATHS else 1.0
            claim_won = claim_won + disputed * REASON_GIVEN_PATH[p, R_NOT_RECEIVED] * wins * in_time
    cancelled = paths[P_CANCELLED_SUPPLIER] + CANCEL_BY_PLATFORM_PROBABILITY
    late = (paths[P_LATE] + paths[P_LATE_SLOW]) * beyond_grace
    failed = due * (cancelled + late) + claim * claim_won
    ok = due * (1.0 - CANCEL_BY_BUYER_PROBABILITY) - failed
    return np.where(state.fraud, fraud_due_failed_probability(due), failed), np.where(state.fraud, 0.0, ok)


def fraud_due_failed_probability(due: float) -> float:
    """P(falls due and fails) for an order of a fraudulent supplier (none falls due and
    succeeds: the rest are cancelled by their buyers)."""
    return due * (FRAUD_PATH_PROBABILITIES[P_CANCELLED_PLATFORM] + FRAUD_PATH_PROBABILITIES[P_UNSHIPPED])
