r"""Ground truth: each supplier's true six-month breach probability, loss rate and default
probability at every month end, and the loss rate given what T shows of the orders taken.

Definition (docs/design.md §4): at month end T (end of month m), a *breach* is a dispute on one
of the supplier's orders with outcome ``buyer_favored`` whose ``resolved_at`` falls in
(T, T + 6 months], i.e. whose resolution day lies in calendar months m+1 .. m+6.

What the truth conditions on
----------------------------
The information at T is the supplier's static attributes, its latent path up to and
including month m (reliability ``z`` and fraud state), and how many orders it received
in each month up to m. It does *not* condition on the future of the latent walk (unknown
at T), nor on the realised fates of individual past orders (which disputes were already
opened), except the ``*_given_open_at_t`` loss rates (below), which also condition on
each past order's observable state at T. A probability conditional on any such
information set is calibrated against the realised labels, which is what the tests check.

Derivation
----------
Each order's fate is drawn independently given its supplier's state in the order's
month ``c``: a path, a dispute, a reason, an outcome and day delays (`behaviour.py`).
Write ``w_k(x)`` for the probability that an order from a supplier in state ``x`` takes
breach route ``k`` = (path, reason) and ends ``buyer_favored``, and ``W_k[c, m]`` for the
probability that the resolution day of such an order, created uniformly in month ``c``,
lands in months m+1..m+6 (an exact convolution of the day-delay distributions,
`behaviour.route_window_probabilities`). An order created in month c then breaches in
T's window with probability

    b(x_c, c, m) = sum_k w_k(x_c) W_k[c, m],

and orders breach independently of one another given the latent path. Hence

* orders already created (months c <= m, n_c of them, state x_c known):
      P(none of them breaches in the window) = prod_c (1 - b(x_c, c, m)) ** n_c;
* orders of a future month f = m+j (j = 1..6): their number is Poisson(lambda(x_f)) and
  each breaches in the window with probability b(x_f, f, m), so by Poisson thinning the
  number of breaching ones is Poisson(lambda(x_f) b(x_f, f, m)) and
      P(none | future path) = exp(-sum_j lambda(x_{m+j}) b(x_{m+j}, m+j, m)).

The two parts are independent given the path, and the past part does not depend on the
future path, so

    P(breach) = 1 - prod_c (1 - b_c)^{n_c} * E[ exp(-sum_j lambda_j b_j) | x_m ],

where the expectation runs over continuations of the latent walk (drift + Gaussian
steps) and of fraud onset (monthly hazard given z), exactly as `world.build_world`
simulates them. Along one continuation z_{m+1..m+6} the fraud onset is summed exactly:
with hazards h_j = h(z_{m+j}), onset in month j has probability h_j prod_{i<j}(1 - h_i),
after which orders follow the fraud process, their volume boosted in the onset month and
shrinking geometrically after it (`future_survival`); a supplier already fraudulent at T
continues from its months since onset. The walk itself is averaged over `continuations`
Monte Carlo paths per supplier and month end (antithetic pairs of Gaussian steps); that
average is the only approximation, and its error is small next to the label noise
because the walk moves little in six months and the survival is a smooth function of it
(rare events such as fraud onset are deliberately not left to sampling: with a handful
of paths they would bias the truth of the safest suppliers downwards).

Loss rate
---------
``loss_rate_6m`` is defined as a ratio of expectations given the same information:

    loss_rate = E[refunds of buyer-won disputes resolved in (T, T + 6 months]]
                / E[amount_usd of the orders created in (T, T + 6 months]],

and ``loss_rate_pre_shipment_6m`` / ``loss_rate_post_delivery_6m`` restrict the
numerator to the routes whose reason is late_shipment or not_received / quality (the
total also holds 'other'). An order's amount is drawn i.i.d. per supplier, independently
of its fate, and a buyer-won refund is the amount times a share independent of both
(1 with probability 1/2, else uniform in [0.3, 1]: mean
``behaviour.MEAN_BUYER_FAVORED_REFUND_SHARE`` = 0.825; rounding to cents moves it by
less than half a cent either way and ``min(amount, ...)`` never binds, the amount being
rounded already), so the mean amount cancels:

    loss_rate = 0.825 * E[# buyer-won resolutions in the window] / E[# orders created in it].

Both expectations come from the pieces above, as sums instead of survivals: past orders
contribute n_c * sum_k w_k(x_c) W_k[c, m]; future month m+j contributes
lambda(x_{m+j}) (orders) and lambda(x_{m+j}) b(x_{m+j}, m+j, m) (won resolutions), with
fraud onset summed exactly and the walk averaged over the same continuations
(`onset_mixture` with the identity). The window's orders are exactly those of months
m+1..m+6. It can exceed 1: a fraudster's past orders are refunded while it takes few new
ones.

Loss rate given the orders' state at T
--------------------------------------
``loss_rate_6m`` does not condition on what T already shows of the orders taken: a
dispute open at T will mostly resolve in the window, an order delivered without a
dispute weeks ago will mostly never be disputed, yet both count at their unconditional
rate. ``loss_rate_6m_given_open_at_t`` (and ``loss_rate_pre_shipment_6m_given_open_at_t``
/ ``loss_rate_post_delivery_6m_given_open_at_t``) is the same ratio of expectations
given the latent path up to T *and* each past order's observable state at T: its created
and promised days, whether and when it was cancelled, shipped and delivered, and whether
and when a dispute was opened (with its reason) and resolved, each as a snapshot at T
shows it (a stage dated before T). The future orders' part and the denominator are
exactly those of ``loss_rate_6m``; the past orders' part becomes

    sum over past orders i of P(buyer-won resolution of i in the window | x_{c_i}, S_i),

S_i the order's state at T, since orders are independent given the path. The drawn
outcome never enters (`events.OrderTimeline` does not hold it), only its probability:

* resolved by T, or cancelled by T: 0;
* a dispute open at T with reason r: P(buyer_favored | r, x_c) (the outcome depends on
  the path only through unshipped or not, which the fraud state tells) times
  P(resolved in the window | opened on its day, open at T), which is 1 whenever the
  resolution delay (at most 45 days) is shorter than the window;
* no dispute and no cancellation by T: by Bayes over path k and reason r,

      sum_{k,r} P(k) P(dispute | k) P(r | k) P(won | k, r) P(S, opens >= T, resolves in window | k, r)
      / sum_k P(k) [(1 - P(dispute | k)) P(S | k) + P(dispute | k) sum_r P(r | k) P(S, opens >= T | k, r)].

  S says which paths remain: not shipped by T (a cancelled path whose cancellation,
  uniform before the promised day, is still to come, a path shipping on time or late
  after T, or a fraudster's unshipped order), shipped on or before the promised day and
  not delivered (on time, normal or slow transit still under way, or lost), shipped late
  and not delivered, or delivered (which, the transit ranges being disjoint, fixes the
  path). A dispute's opening is anchored on the promised day (late_shipment,
  not_received), the created day (other), both known, or the delivery day (quality), known
  once delivered and otherwise summed over the ship and transit delays that agree with S.
  Every such probability is an exact sum over `behaviour`'s day distributions, tabled per
  as-of month against the anchor's day offset from T (`StateAtTTables`);
  factors common to all the paths S leaves (the observed ship and transit days' own
  probability) cancel in the ratio.

The generator adds each month's orders' terms as it draws them (`won_given_state_at_t`):
an order adds to the as-of months from its own to the last one a resolution can still
reach. For a supplier without past orders both loss rates are equal; summed over suppliers
both are unbiased, but per bucket of what T shows (disputes open, orders in transit) only
this one is calibrated.

Default probability
-------------------
``default_probability_6m`` is P(default_6m | the latent path up to T), the event of
`models.labels` (mirrored in `behaviour.py`: at least DEFAULT_MIN_ORDERS_DUE orders
falling due in the window and at least half of them failed). Only orders created in
months m..m+6 can fall due in (T, window end - grace] (a promise is 3..21 days out), and
each one independently (given its month's state) falls due and fails, falls due and
succeeds, or neither, with probabilities from `behaviour.due_order_probabilities` (exact
timing convolutions in `behaviour.due_window_probabilities`). Month m's orders are
counted as Poisson given the state at m: this truth does not condition on month m's
realised count (a coarser information set, still exactly calibrated). By Poisson
thinning, given the path and the fraud onset, the failed and the successful orders due
are independent Poisson(F), Poisson(O), so

    P(default | path, onset) = P(Skellam(F, O) >= 0) - P(F >= O, F + O < MIN)

(`default_probability_given_means`), mixed exactly over the onset month and averaged
over the walk's continuations (`onset_mixture`). A fraudster fails every order due; an
honest supplier defaults by chance (supplier or platform cancellations, shipments later
than the grace, lost parcels refunded), mostly when it has few orders due; a fraudster
whose volume has withered has too few orders due to default.

Checked against labels computed from the written files in
`tests/test_synthetic_truth.py`; `bench/results/generate.md` reports calibration per
decile and the oracle AUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import special

from synthetic import behaviour as bh
from synthetic.arrow_columns import id_strings
from synthetic.events import SUPPLIER_ID_WIDTH, OrderTimeline
from synthetic.world import (
    DAY_US, FRAUD_ACTIVITY_BOOST, FRAUD_ACTIVITY_DECAY, WALK_SD, MonthGrid, SupplierWorld, fraud_hazard,
)

HORIZON_MONTHS = 6
DEFAULT_CONTINUATIONS = 8
# The loss rates given the latent path and each past order's observable state at T, in
# REASON_GROUPS order.
LOSS_RATE_GIVEN_STATE_AT_T_COLUMNS = (
    "loss_rate_6m_given_open_at_t",
    "loss_rate_pre_shipment_6m_given_open_at_t",
    "loss_rate_post_delivery_6m_given_open_at_t",
)
# The loss-rate groups of the truth's won-resolution arrays: all routes, then pre-shipment
# and post-delivery reasons (REASON_GROUPS[g][r]: reason r counts in group g).
REASON_GROUPS = np.array([
    [1.0] * len(bh.REASONS),
    [1.0 if r in bh.PRE_SHIPMENT_REASONS else 0.0 for r in range(len(bh.REASONS))],
    [1.0 if r in bh.POST_DELIVERY_REASONS else 0.0 for r in range(len(bh.REASONS))],
])


def future_survival(
    breaches_if_honest: list[np.ndarray],
    breaches_if_fraud_onset: list[np.ndarray],
    onset_hazard: list[np.ndarray],
    fraud_age_at_t: np.ndarray,
) -> np.ndarray:
    """P(no breach from future orders | one continuation of the reliability walk).

    Lists run over the future months j = 0..5 (months m+1..m+6). An honest supplier's
    month-j orders breach as Poisson(breaches_if_honest[j]); a fraudster's as
    Poisson(breaches_if_fraud_onset[j] * DECAY^age), its volume shrinking with the months
    since onset. See `onset_mixture` for how the onset month is summed over.
    """
    return onset_mixture(
        breaches_if_honest, breaches_if_fraud_onset, onset_hazard, fraud_age_at_t, outcome=lambda total: np.exp(-total)
    )


def onset_mixture(
    if_honest: list[np.ndarray],
    if_fraud_onset: list[np.ndarray],
    onset_hazard: list[np.ndarray],
    fraud_age_at_t: np.ndarray,
    outcome,
    offset: np.ndarray | float = 0.0,
) -> np.ndarray:
    """E[outcome(window totals) | one continuation of the reliability walk], exact over
    the month of fraud onset.

    Lists run over the future months j = 0..5 (months m+1..m+6); each entry holds the
    Poisson means a month adds to the window's totals, shape (..., suppliers,
    continuations), leading axes for several totals at once: `if_honest[j]` for an
    honest supplier, `if_fraud_onset[j]` for a supplier whose fraud starts that month
    (volume boosted); a fraudster's later months shrink by DECAY a month. Fraud starts in
    month j with probability hazard_j prod_{i<j}(1 - hazard_i) and then lasts; summing
    over the onset month is exact, where sampling it would leave the rare onsets to Monte
    Carlo luck and bias the lowest-risk suppliers' truth down. `outcome` maps the totals
    (plus `offset`, a part known not to depend on the future path) to the quantity
    averaged: exp(-total) for a survival, the identity for an expectation.
    `fraud_age_at_t` is the months since onset at T (-1: honest at T).
    """
    n_future = len(if_honest)
    # fraud_from[j]: what months j.. add after an onset in month j.
    fraud_from = [np.zeros_like(if_honest[0])] * (n_future + 1)
    for j in range(n_future - 1, -1, -1):
        fraud_from[j] = if_fraud_onset[j] + FRAUD_ACTIVITY_DECAY * fraud_from[j + 1]
    honest_so_far = np.zeros_like(fraud_from[0])
    mixture = 0.0
    still_honest = np.ones_like(onset_hazard[0])
    for j, hazard in enumerate(onset_hazard):
        mixture = mixture + still_honest * hazard * outcome(offset + honest_so_far + fraud_from[j])
        honest_so_far = honest_so_far + if_honest[j]
        still_honest = still_honest * (1.0 - hazard)
    mixture = mixture + still_honest * outcome(offset + honest_so_far)
    age = fraud_age_at_t[:, None]
    already_fraudulent = outcome(offset + FRAUD_ACTIVITY_DECAY ** (np.maximum(age, 0) + 1) * fraud_from[0])
    return np.where(age >= 0, already_fraudulent, mixture)


def default_probability_given_means(means: np.ndarray) -> np.ndarray:
    """P(default) when the orders falling due that fail and that do not are independent
    Poisson(means[0]) and Poisson(means[1]): P(F >= O and F + O >= MIN), i.e. a failed
    share of at least one half among at least MIN orders due.

    P(F - O >= 0) is a Skellam tail; the pairs with fewer than MIN orders are subtracted.
    """
    if bh.DEFAULT_FAILED_SHARE != 0.5:  # the Skellam form is F >= O; another share needs another form
        raise ValueError(f"default_probability_given_means handles a failed share of 0.5, not {bh.DEFAULT_FAILED_SHARE}")
    failed, ok = means[0], means[1]
    # P(F - O <= -1) = chndtr(2 O, 2, 2 F), the Skellam cdf as scipy computes it
    # (called directly: the generic distribution machinery costs more than the truth).
    at_least_half = 1.0 - special.chndtr(2.0 * ok, 2.0, 2.0 * failed)
    too_few = 0.0
    for n_failed in range(bh.DEFAULT_MIN_ORDERS_DUE):
        for n_ok in range(min(n_failed, bh.DEFAULT_MIN_ORDERS_DUE - 1 - n_failed) + 1):
            too_few = too_few + failed**n_failed * ok**n_ok / (math.factorial(n_failed) * math.factorial(n_ok))
    too_few = too_few * np.exp(-(failed + ok))
    return np.clip(at_least_half - too_few, 0.0, 1.0)


# --------------------------------------------------------------------------- state at T
# Day offsets from T (the first day after the month end) that the tables below cover;
# beyond them every table is constant (an anchor 400 days before T is long resolved, one
# 400 days after it lies beyond any window), so lookups clip to the ends.
OFFSET_MIN, OFFSET_MAX = -400, 400
OFFSETS = np.arange(OFFSET_MIN, OFFSET_MAX + 1)
# Path groups as the files tell them apart: shipped on or before the promised day (or
# not shipped by T with such a path), shipped after it; normal or slow transit.
ON_TIME_TRANSIT = {bh.P_ON_TIME: bh.TRANSIT_DAYS, bh.P_ON_TIME_SLOW: bh.SLOW_TRANSIT_DAYS}
LATE_TRANSIT = {bh.P_LATE: bh.TRANSIT_DAYS, bh.P_LATE_SLOW: bh.SLOW_TRANSIT_DAYS}
NORMAL_TRANSIT_MAX_DAYS = len(bh.TRANSIT_DAYS) - 1
if bh.SLOW_TRANSIT_DAYS[: NORMAL_TRANSIT_MAX_DAYS + 1].any():  # a delivered order's transit must tell its path
    raise ValueError("normal and slow transit days overlap: the truth given the state at T needs them disjoint")


def at(table: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """table[offset] for day offsets from T (clipped to the covered range, where tables are flat)."""
    return table[..., np.clip(offset - OFFSET_MIN, 0, len(OFFSETS) - 1)]


def shifted(table: np.ndarray, days: int) -> np.ndarray:
    """table[a + days] for every covered offset a."""
    return at(table, OFFSETS + days)


@dataclass(frozen=True)
class StateAtTTables:
    """Per as-of month m (first axis), probabilities of an order's remaining stages as
    functions of a known anchor's day offset from T (last axis; exact sums over
    `behaviour`'s day distributions):

    * ``opens[m, r, a]``: P(a dispute of reason r whose anchor is a days from T opens at or
      after T); ``wins_window[m, r, a]``: P(it opens at or after T and resolves in the window);
    * ``resolves_in_window[m, a]``: P(a dispute opened a < 0 days from T and still open at T
      resolves in the window);
    * per shipped path, ``in_transit[path][m, s]``, ``quality_opens[path][m, s]``,
      ``quality_window[path][m, s]``: for an order of that path shipped s days from T,
      P(delivered at or after T), and that jointly with a quality dispute (anchored on the
      delivery) opening at or after T, and also resolving in the window;
    * per shipped path, ``unshipped[path][m, p]``, ``unshipped_quality_opens[path][m, p]``,
      ``unshipped_quality_window[path][m, p]``: the same for an order of that path not
      shipped by T whose promised day is p days from T (on-time paths ship up to two days
      early, late ones after the promise).
    """

    opens: np.ndarray  # (n_asof, reasons, offsets)
    wins_window: np.ndarray
    resolves_in_window: np.ndarray  # (n_asof, offsets)
    in_transit: dict[int, np.ndarray]  # path -> (n_asof, offsets), every shipped path (lost: never delivered)
    quality_opens: dict[int, np.ndarray]
    quality_window: dict[int, np.ndarray]
    unshipped: dict[int, np.ndarray]  # path -> (n_asof, offsets), every shipped path
    unshipped_quality_opens: dict[int, np.ndarray]
    unshipped_quality_window: dict[int, np.ndarray]
    starts: np.ndarray  # T per as-of month, days since the epoch

    @classmethod
    def build(cls, grid: MonthGrid) -> "StateAtTTables":
        n = grid.n_months
        starts = grid.start_days
        resolve_below = np.concatenate([[0.0], np.cumsum(bh.RESOLVE_DAYS)])  # [y] = P(resolve lag < y)

        def below(days: np.ndarray) -> np.ndarray:
            return resolve_below[np.clip(days, 0, len(resolve_below) - 1)]

        opens = np.zeros((n, len(bh.REASONS), len(OFFSETS)))
        wins_window = np.zeros_like(opens)
        resolves_in_window = np.zeros((n, len(OFFSETS)))
        tables = {name: {p: np.zeros((n, len(OFFSETS))) for p in bh.SHIPPED_PATHS} for name in
                  ("in_transit", "quality_opens", "quality_window", "unshipped", "unshipped_quality_opens",
                   "unshipped_quality_window")}
        # Every as-of month at once (rows); only the window's length differs between them.
        window_days = (starts[1 + HORIZON_MONTHS : n + 1 + HORIZON_MONTHS] - starts[1 : n + 1])[:, None]
        for r, pmf in bh.OPEN_DAYS.items():
            for lag in np.flatnonzero(pmf):
                opened = OFFSETS + lag >= 0
                opens[:, r] += pmf[lag] * opened
                wins_window[:, r] += pmf[lag] * opened * below(window_days - OFFSETS - lag)
        # opened at a < 0, resolved a + lag: in the window given not before T
        still_open = 1.0 - below(-OFFSETS)
        resolves_in_window[:] = np.divide(below(window_days - OFFSETS) - below(-OFFSETS), still_open,
                                          out=np.zeros((n, len(OFFSETS))), where=still_open > 0)
        transit_of = {**ON_TIME_TRANSIT, **LATE_TRANSIT}
        for path in bh.SHIPPED_PATHS:
            transit = transit_of.get(path)
            if transit is None:  # lost: never delivered, never a quality dispute
                tables["in_transit"][path][:] = 1.0
            else:
                for days in np.flatnonzero(transit):
                    arrives_later = transit[days] * (OFFSETS + days >= 0)
                    tables["in_transit"][path] += arrives_later
                    tables["quality_opens"][path] += arrives_later * shifted(opens[:, bh.R_QUALITY], days)
                    tables["quality_window"][path] += arrives_later * shifted(wins_window[:, bh.R_QUALITY], days)
            # not shipped by T: the ship day is the promised day minus early days or plus late ones
            ship_shift = bh.EARLY_DAYS if path not in LATE_TRANSIT else bh.LATE_EXTRA_DAYS
            sign = -1 if path not in LATE_TRANSIT else 1
            for days in np.flatnonzero(ship_shift):
                weight = ship_shift[days] * (OFFSETS + sign * days >= 0)
                tables["unshipped"][path] += weight
                tables["unshipped_quality_opens"][path] += weight * shifted(tables["quality_opens"][path], sign * days)
                tables["unshipped_quality_window"][path] += weight * shifted(tables["quality_window"][path], sign * days)
        return cls(opens=opens, wins_window=wins_window, resolves_in_window=resolves_in_window,
                   starts=starts[1 : n + 1], **tables)


def months_an_order_stays_open(grid: MonthGrid) -> int:
    """How many as-of months after its creation month an order can still add a buyer-won
    resolution at or after T: its longest route from created day to resolution."""
    longest = max(len(bh.breach_lag_pmf(p, r)) - 1 for p, r in bh.BREACH_ROUTES)
    return int(np.ceil(longest / 28)) + 1


def won_given_state_at_t(
    world: SupplierWorld, month: int, timeline: OrderTimeline, tables: StateAtTTables
) -> np.ndarray:
    """Expected buyer-won resolutions in each as-of month's window from the orders created
    in `month`, per supplier: `order_wins_given_state_at_t` summed over its orders, for
    every as-of month the orders can still add to (zero in the others).

    Returns shape (len(REASON_GROUPS), suppliers, months): all, pre-shipment, post-delivery.
    """
    n_months = world.grid.n_months
    out = np.zeros((len(REASON_GROUPS), world.n_suppliers, n_months))
    if not len(timeline.supplier):
        return out
    probabilities = OrderProbabilities.of(world, month, timeline)
    for m in range(month, min(n_months, month + months_an_order_stays_open(world.grid))):
        # orders with nothing left to win by T stay so: drop them (cheaper as T moves on)
        live = np.flatnonzero(may_still_win(timeline, int(tables.starts[m])))
        if not len(live):
            break
        if len(live) < len(timeline.supplier) // 2:
            timeline, probabilities = timeline.take(live), probabilities.take(live)
        value = order_wins_given_state_at_t(timeline, probabilities, tables, m)
        for g in range(len(REASON_GROUPS)):
            out[g, :, m] = np.bincount(timeline.supplier, weights=value[g], minlength=world.n_suppliers)
    return out


@dataclass(frozen=True)
class OrderProbabilities:
    """Per order of one creation month, from its supplier's state then: P(path, no dispute)
    ``(paths, orders)``; per dispute route k = (path, reason) of `behaviour.BREACH_ROUTES`
    (every pair a dispute can take) P(path, dispute, reason) and that with buyer_favored
    ``(routes, orders)``; and P(buyer_favored | the order's own dispute reason). Orders run
    along the last axis: the truth fills and reads them one path or route at a time."""

    undisputed: np.ndarray
    disputed: np.ndarray
    disputed_won: np.ndarray
    own_reason_wins: np.ndarray

    @classmethod
    def of(cls, world: SupplierWorld, month: int, timeline: OrderTimeline) -> "OrderProbabilities":
        n = len(timeline.supplier)
        state = world.state(month, timeline.supplier)
        path_p = bh.path_probabilities(state)
        dispute_p = np.stack([bh.dispute_probability(np.full(n, p), state) for p in range(len(bh.PATHS))], axis=1)
        disputed = np.stack([path_p[:, p] * dispute_p[:, p] * bh.REASON_GIVEN_PATH[p, r] for p, r in bh.BREACH_ROUTES])
        # P(buyer_favored) depends on the path only through unshipped or not: one per reason and kind
        wins_of = {(p == bh.P_UNSHIPPED, r): None for p, r in bh.BREACH_ROUTES}
        for unshipped, r in wins_of:
            path = bh.P_UNSHIPPED if unshipped else bh.P_ON_TIME
            wins_of[unshipped, r] = bh.buyer_favored_probability(np.full(n, path), np.full(n, r), state.z)
        wins = np.stack([wins_of[p == bh.P_UNSHIPPED, r] for p, r in bh.BREACH_ROUTES])
        # the outcome depends on the path only through unshipped (a fraudster's) or not
        own_reason_wins = bh.buyer_favored_probability(
            np.where(state.fraud, bh.P_UNSHIPPED, bh.P_ON_TIME), np.maximum(timeline.dispute_reason, 0), state.z
        )
        return cls((path_p * (1.0 - dispute_p)).T.copy(), disputed, disputed * wins, own_reason_wins)

    def take(self, orders: np.ndarray) -> "OrderProbabilities":
        return OrderProbabilities(self.undisputed[:, orders], self.disputed[:, orders], self.disputed_won[:, orders],
                                  self.own_reason_wins[orders])


ROUTE_PATHS = np.array([p for p, _ in bh.BREACH_ROUTES])
# The last day, counted from its anchor, a dispute of each reason can open; a quality
# dispute's anchor (delivery) comes at most this many days after the promised day.
LAST_OPEN_DAY = {r: len(pmf) - 1 for r, pmf in bh.OPEN_DAYS.items()}
LAST_DELIVERY_AFTER_PROMISE = len(bh.LATE_EXTRA_DAYS) - 1 + len(bh.SLOW_TRANSIT_DAYS) - 1


def order_wins_given_state_at_t(
    timeline: OrderTimeline, probabilities: OrderProbabilities, tables: StateAtTTables, m: int
) -> np.ndarray:
    """P(the order has a buyer-won dispute resolved in as-of month m's window | its supplier's
    state in its creation month, what a snapshot at T shows of it), per reason group,
    shape (len(REASON_GROUPS), orders).

    Only stages dated before T are read (the timeline holds no outcome at all): resolved
    by T or cancelled by T: 0; a dispute open at T: P(won | its reason) x P(resolved in the
    window | open at T); otherwise `undisputed_order_wins`.
    """
    t_day = int(tables.starts[m])
    opened = timeline.dispute_opened_day < t_day
    value = np.zeros((len(REASON_GROUPS), len(timeline.supplier)))
    rows = np.flatnonzero(opened & (timeline.dispute_resolved_day >= t_day))
    won = probabilities.own_reason_wins[rows] * at(tables.resolves_in_window[m], timeline.dispute_opened_day[rows] - t_day)
    value[:, rows] = REASON_GROUPS[:, timeline.dispute_reason[rows]] * won
    # No dispute by T and one could still come (the others are 0 without computing).
    rows = np.flatnonzero(~opened & may_still_win(timeline, t_day))
    value[:, rows] = undisputed_order_wins(m, t_day, timeline, rows, tables, probabilities)
    return value


def may_still_win(timeline: OrderTimeline, t_day: int) -> np.ndarray:
    """Orders that T shows with a dispute still open, or with no dispute and no cancellation
    yet while a dispute could still open at or after T (by the latest day each reason can
    open after its anchor; a delivery not seen by T is bounded by the longest ship and
    transit delays). Every other order has nothing left to win, at T and later."""
    opened = timeline.dispute_opened_day < t_day
    promised = timeline.promised_day
    delivered_by = np.where(timeline.delivered_day < t_day, timeline.delivered_day, promised + LAST_DELIVERY_AFTER_PROMISE)
    last_open = np.maximum(
        promised + max(LAST_OPEN_DAY[bh.R_LATE_SHIPMENT], LAST_OPEN_DAY[bh.R_NOT_RECEIVED]),
        np.maximum(timeline.created_day + LAST_OPEN_DAY[bh.R_OTHER], delivered_by + LAST_OPEN_DAY[bh.R_QUALITY]),
    )
    undisputed = ~opened & (timeline.cancelled_us >= t_day * DAY_US) & (last_open >= t_day)
    return undisputed | (opened & (timeline.dispute_resolved_day >= t_day))


def undisputed_order_wins(
    m: int, t_day: int, timeline: OrderTimeline, rows: np.ndarray, tables: StateAtTTables,
    probabilities: OrderProbabilities,
) -> np.ndarray:
    """P(a dispute opened at or after T is won in the window | the order's stages seen at T,
    none of them a dispute or a cancellation), per reason group, for the orders `rows`.

    By Bayes over the path k and reason r: sum_{k,r} P(k, dispute, r, won) P(seen, opens
    after T, resolves in window | k, r) / P(seen, no dispute by T), where
    P(seen, no dispute by T) = sum_k P(k) [(1 - P(dispute | k)) P(seen | k)
    + P(dispute | k) sum_r P(r | k) P(seen, opens after T | k, r)].

    The stages seen leave a few paths (`STAGE_CLASSES`); each class sums over its own.
    P(seen | k) is known up to a factor common to the paths left (the observed ship and
    transit days' own probability), which cancels.
    """
    promised_day, shipped_day = timeline.promised_day[rows], timeline.shipped_day[rows]
    delivered_day = timeline.delivered_day[rows]
    unshipped = shipped_day >= t_day
    delivered = delivered_day < t_day
    late = shipped_day > promised_day  # only meaningful once shipped
    slow = (delivered_day - shipped_day) > NORMAL_TRANSIT_MAX_DAYS
    in_class = {
        "not shipped": unshipped,
        "in transit, shipped by the promised day": ~unshipped & ~delivered & ~late,
        "in transit, shipped late": ~unshipped & ~delivered & late,
        **{f"delivered by {bh.PATHS[path]}": delivered & (late == (path in LATE_TRANSIT)) & (slow == (path in bh.SLOW_PATHS))
           for path in bh.DELIVERED_PATHS},
    }
    value = np.zeros((len(REASON_GROUPS), len(rows)))
    for name, paths in STAGE_CLASSES.items():
        members = np.flatnonzero(in_class[name])
        if len(members):
            value[:, members] = _class_wins(m, t_day, timeline, rows[members], tables, probabilities, name, paths)
    return value


# What the stages seen at T (no dispute, no cancellation) leave of an order's path.
STAGE_CLASSES = {
    # a cancelled path whose cancellation (uniform before the promised day) is still to
    # come, a path that ships after T, or a fraudster's unshipped order
    "not shipped": tuple(range(len(bh.PATHS))),
    "in transit, shipped by the promised day": (bh.P_ON_TIME, bh.P_ON_TIME_SLOW, bh.P_LOST),
    "in transit, shipped late": (bh.P_LATE, bh.P_LATE_SLOW),
    # the transit ranges are disjoint: a delivery fixes the path
    **{f"delivered by {bh.PATHS[path]}": (path,) for path in bh.DELIVERED_PATHS},
}


def _class_wins(
    m: int, t_day: int, timeline: OrderTimeline, rows: np.ndarray, tables: StateAtTTables,
    probabilities: OrderProbabilities, stage_class: str, paths: tuple[int, ...],
) -> np.ndarray:
    """`undisputed_order_wins` for orders of one stage class, summing over its `paths`."""
    n = len(rows)

    def index(offset: np.ndarray) -> np.ndarray:  # into the tables' offset axis
        return np.clip(offset - OFFSET_MIN, 0, len(OFFSETS) - 1)

    promised = index(timeline.promised_day[rows] - t_day)
    seen, quality = {}, {}  # per path: P(seen | path); (P(seen, quality opens after T), ... and resolves in window)
    if stage_class == "not shipped":
        lead_us = (timeline.promised_day[rows] - timeline.created_day[rows]) * DAY_US
        cancels_later = np.clip(1.0 - (t_day * DAY_US - timeline.created_us[rows]) / lead_us, 0.0, 1.0)
        seen = {path: cancels_later for path in bh.CANCELLED_PATHS} | {bh.P_UNSHIPPED: np.ones(n)}
        for path in bh.SHIPPED_PATHS:
            seen[path] = tables.unshipped[path][m, promised]
            quality[path] = (tables.unshipped_quality_opens[path][m, promised],
                             tables.unshipped_quality_window[path][m, promised])
    elif stage_class.startswith("in transit"):
        shipped_at = index(timeline.shipped_day[rows] - t_day)
        for path in paths:
            seen[path] = tables.in_transit[path][m, shipped_at]
            quality[path] = (tables.quality_opens[path][m, shipped_at], tables.quality_window[path][m, shipped_at])
    else:
        delivered_at = index(timeline.delivered_day[rows] - t_day)
        (path,) = paths
        seen[path] = np.ones(n)
        quality[path] = (tables.opens[m, bh.R_QUALITY, delivered_at], tables.wins_window[m, bh.R_QUALITY, delivered_at])
    # Reasons anchored on a known day (promised or created) are independent of the stages seen.
    created = index(timeline.created_day[rows] - t_day)
    anchored = {r: (tables.opens[m, r, days], tables.wins_window[m, r, days])
                for r, days in ((bh.R_LATE_SHIPMENT, promised), (bh.R_NOT_RECEIVED, promised), (bh.R_OTHER, created))}

    evidence = np.zeros(n)
    won = np.zeros((len(REASON_GROUPS), n))
    for path in paths:
        evidence += probabilities.undisputed[path, rows] * seen[path]
    for k in np.flatnonzero(np.isin(ROUTE_PATHS, paths)):
        path, reason = bh.BREACH_ROUTES[k]
        if reason == bh.R_QUALITY:
            opens, in_window = quality[path]
        else:
            opens, in_window = seen[path] * anchored[reason][0], seen[path] * anchored[reason][1]
        evidence += probabilities.disputed[k, rows] * opens
        won += np.outer(REASON_GROUPS[:, reason], probabilities.disputed_won[k, rows] * in_window)
    return np.divide(won, evidence, out=np.zeros_like(won), where=evidence > 0)


def breach_probability_table(
    world: SupplierWorld,
    orders_per_supplier_month: np.ndarray,
    rng: np.random.Generator,
    continuations: int = DEFAULT_CONTINUATIONS,
    past_won_given_state_at_t: np.ndarray | None = None,
) -> pa.Table:
    """One row per supplier joined by each month end: the true six-month breach
    probability plus the latent state behind it (for evaluation, never for features).

    `past_won_given_state_at_t` (groups, suppliers, months), the sum of
    `won_given_state_at_t` over the creation months, adds the loss rates given the orders'
    state at T; without it those columns are left out."""
    grid = world.grid
    n_months = grid.n_months
    n_suppliers = world.n_suppliers
    window = bh.route_window_probabilities(grid.start_days, n_months + HORIZON_MONTHS, n_months)
    first_active = world.first_active_month
    half = max(1, continuations // 2)

    past_routes = [bh.breach_route_probabilities(world.state(c)) for c in range(n_months)]
    column = lambda a: a[:, None]  # noqa: E731  static per-supplier arrays against continuations
    # Route weights of the two coverage groups (the total is every route).
    due, claim = bh.due_window_probabilities(grid.start_days, n_months + HORIZON_MONTHS, n_months)
    group_masks = np.stack([bh.routes_with_reasons(bh.PRE_SHIPMENT_REASONS), bh.routes_with_reasons(bh.POST_DELIVERY_REASONS)])

    frames = []
    for m in range(n_months):
        # Orders already created: their count is known, each breaches independently.
        log_survival_past = np.zeros(n_suppliers)
        # Expected buyer-won resolutions in the window from them: all, pre, post.
        won_past = np.zeros((1 + len(group_masks), n_suppliers))
        for c in range(m + 1):
            b = past_routes[c] @ window[:, c, m]
            log_survival_past += orders_per_supplier_month[:, c] * np.log1p(-b)
            by_group = past_routes[c] @ (group_masks * window[:, c, m]).T
            won_past += orders_per_supplier_month[:, c] * np.vstack([b, by_group.T])

        # Future orders: Monte Carlo over continuations of the latent walk; fraud onset
        # along each continuation is integrated exactly (see module docstring).
        z = np.repeat(column(world.z[:, m]), 2 * half, axis=1)
        breaches_if_honest, breaches_if_fraud_onset, onset_hazard = [], [], []
        # Expected (orders created, won resolutions all / pre / post) per future month.
        volume_if_honest, volume_if_fraud_onset = [], []
        # Default: Poisson means of the orders falling due that fail / do not, per month.
        # Month m's orders can fall due too; given the state at m their count is
        # Poisson (the default truth does not condition on month m's realised count).
        month_orders = world.expected_orders(m, world.z[:, m], world.fraud_age(m))
        due_now = month_orders * np.stack(bh.due_order_probabilities(world.state(m), due[m, m], claim[m, m]))
        due_if_honest, due_if_fraud_onset = [], []
        for j in range(1, HORIZON_MONTHS + 1):
            f = m + j
            noise = rng.standard_normal((n_suppliers, half))
            step = column(world.drift) + WALK_SD * np.concatenate([noise, -noise], axis=1)
            z = z + np.where(column(f > first_active), step, 0.0)
            honest = bh.SupplierState(
                z=z, fraud=np.False_,
                cancel_offset=column(world.cancel_offset), late_offset=column(world.late_offset),
                transit_offset=column(world.transit_offset), dispute_offset=column(world.dispute_offset),
            )
            orders_if_honest = world.expected_orders(f, z, -1)
            route_windows = [window[:, f, m], *(group_masks * window[:, f, m])]
            won_if_honest = bh.window_breach_probabilities(honest, route_windows)
            breaches_if_honest.append(orders_if_honest * won_if_honest[0])
            # In the month of onset the volume is boosted; later months decay from it.
            breaches_if_fraud_onset.append(
                orders_if_honest * FRAUD_ACTIVITY_BOOST * bh.fraud_window_breach_probability(window[:, f, m])
            )
            volume_if_honest.append(orders_if_honest * np.stack([np.ones_like(z), *won_if_honest]))
            volume_if_fraud_onset.append(
                orders_if_honest * FRAUD_ACTIVITY_BOOST
                * np.array([1.0, *(bh.fraud_window_breach_probability(w) for w in route_windows)])[:, None, None]
            )
            due_if_honest.append(orders_if_honest * np.stack(bh.due_order_probabilities(honest, due[f, m], claim[f, m])))
            due_if_fraud_onset.append(
                orders_if_honest * FRAUD_ACTIVITY_BOOST
                * np.array([bh.fraud_due_failed_probability(due[f, m]), 0.0])[:, None, None]
            )
            onset_hazard.append(np.where(column(f >= first_active), fraud_hazard(z), 0.0))
        survival_future = future_survival(
            breaches_if_honest, breaches_if_fraud_onset, onset_hazard, fraud_age_at_t=world.fraud_age(m)
        ).mean(axis=1)
        probability = 1.0 - np.exp(log_survival_past) * survival_future
        # Loss rate: expectations are linear, so the same mixture with the identity.
        expected = onset_mixture(
            volume_if_honest, volume_if_fraud_onset, onset_hazard, world.fraud_age(m), outcome=lambda total: total
        ).mean(axis=-1)
        expected_orders, expected_won = expected[0], won_past + expected[1:]
        default_probability = onset_mixture(
            due_if_honest, due_if_fraud_onset, onset_hazard, world.fraud_age(m),
            outcome=default_probability_given_means, offset=due_now[:, :, None],
        ).mean(axis=-1)
        # (suppliers not yet joined expect no orders; their rows are not written)
        loss_rate = bh.MEAN_BUYER_FAVORED_REFUND_SHARE * np.divide(
            expected_won, expected_orders, out=np.full_like(expected_won, np.nan), where=expected_orders > 0
        )
        given_state = None
        if past_won_given_state_at_t is not None:
            # the same future part; the past orders' part given what T shows of each of them
            won_given_state = past_won_given_state_at_t[:, :, m] + expected[1:]
            given_state = bh.MEAN_BUYER_FAVORED_REFUND_SHARE * np.divide(
                won_given_state, expected_orders, out=np.full_like(won_given_state, np.nan), where=expected_orders > 0
            )

        joined = np.flatnonzero(world.join_month <= m)
        given_state_columns = {} if given_state is None else {
            column: pa.array(given_state[g, joined], type=pa.float64())
            for g, column in enumerate(LOSS_RATE_GIVEN_STATE_AT_T_COLUMNS)
        }
        frames.append(
            pa.table(
                {
                    "supplier_id": id_strings("S", joined + 1, SUPPLIER_ID_WIDTH),
                    "as_of_date": pa.array([grid.month_end(m)] * len(joined), type=pa.date32()),
                    "breach_probability_6m": pa.array(probability[joined], type=pa.float64()),
                    "loss_rate_6m": pa.array(loss_rate[0, joined], type=pa.float64()),
                    "loss_rate_pre_shipment_6m": pa.array(loss_rate[1, joined], type=pa.float64()),
                    "loss_rate_post_delivery_6m": pa.array(loss_rate[2, joined], type=pa.float64()),
                    **given_state_columns,
                    "default_probability_6m": pa.array(default_probability[joined], type=pa.float64()),
                    "latent_reliability": pa.array(world.z[joined, m], type=pa.float64()),
                    "reliability_drift": pa.array(world.drift[joined], type=pa.float64()),
                    "is_fraudulent": pa.array(world.fraud_age(m)[joined] >= 0, type=pa.bool_()),
                    "orders_in_month": pa.array(orders_per_supplier_month[joined, m], type=pa.int64()),
                }
            )
        )
    return pa.concat_tables(frames)
