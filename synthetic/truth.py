r"""Ground truth: each supplier's true six-month breach probability, loss rate and default
probability at every month end.

Definition (docs/design.md §4): at month end T (end of month m), a *breach* is a dispute on one
of the supplier's orders with outcome ``buyer_favored`` whose ``resolved_at`` falls in
(T, T + 6 months], i.e. whose resolution day lies in calendar months m+1 .. m+6.

What the truth conditions on
----------------------------
The information at T is the supplier's static attributes, its latent path up to and
including month m (reliability ``z`` and fraud state), and how many orders it received
in each month up to m. It does *not* condition on the future of the latent walk (unknown
at T), nor on the realised fates of individual past orders (which disputes were already
opened). A probability conditional on any such information set is calibrated against the
realised labels, which is what the tests check.

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

import numpy as np
import pyarrow as pa
from scipy import special

from synthetic import behaviour as bh
from synthetic.arrow_columns import id_strings
from synthetic.events import SUPPLIER_ID_WIDTH
from synthetic.world import FRAUD_ACTIVITY_BOOST, FRAUD_ACTIVITY_DECAY, WALK_SD, SupplierWorld, fraud_hazard

HORIZON_MONTHS = 6
DEFAULT_CONTINUATIONS = 8


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


def breach_probability_table(
    world: SupplierWorld,
    orders_per_supplier_month: np.ndarray,
    rng: np.random.Generator,
    continuations: int = DEFAULT_CONTINUATIONS,
) -> pa.Table:
    """One row per supplier joined by each month end: the true six-month breach
    probability plus the latent state behind it (for evaluation, never for features)."""
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

        joined = np.flatnonzero(world.join_month <= m)
        frames.append(
            pa.table(
                {
                    "supplier_id": id_strings("S", joined + 1, SUPPLIER_ID_WIDTH),
                    "as_of_date": pa.array([grid.month_end(m)] * len(joined), type=pa.date32()),
                    "breach_probability_6m": pa.array(probability[joined], type=pa.float64()),
                    "loss_rate_6m": pa.array(loss_rate[0, joined], type=pa.float64()),
                    "loss_rate_pre_shipment_6m": pa.array(loss_rate[1, joined], type=pa.float64()),
                    "loss_rate_post_delivery_6m": pa.array(loss_rate[2, joined], type=pa.float64()),
                    "default_probability_6m": pa.array(default_probability[joined], type=pa.float64()),
                    "latent_reliability": pa.array(world.z[joined, m], type=pa.float64()),
                    "reliability_drift": pa.array(world.drift[joined], type=pa.float64()),
                    "is_fraudulent": pa.array(world.fraud_age(m)[joined] >= 0, type=pa.bool_()),
                    "orders_in_month": pa.array(orders_per_supplier_month[joined, m], type=pa.int64()),
                }
            )
        )
    return pa.concat_tables(frames)
