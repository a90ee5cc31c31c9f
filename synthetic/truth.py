r"""Ground truth: each supplier's true six-month breach probability at every month end.

Definition (DESIGN §4): at month end T (end of month m), a *breach* is a dispute on one
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

Checked against labels computed from the written files in
`tests/test_synthetic_truth.py`; `bench/results/generate.md` reports calibration per
decile and the oracle AUC.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
    since onset. Fraud starts in month j with probability hazard_j prod_{i<j}(1 - hazard_i)
    and then lasts; summing over the onset month is exact, where sampling it would leave
    the rare onsets to Monte Carlo luck and bias the lowest-risk suppliers' truth down.
    `fraud_age_at_t` is the months since onset at T (-1: honest at T).
    """
    n_future = len(breaches_if_honest)
    # fraud_from[j]: expected breaches in months j.. after an onset in month j.
    fraud_from = [np.zeros_like(breaches_if_honest[0])] * (n_future + 1)
    for j in range(n_future - 1, -1, -1):
        fraud_from[j] = breaches_if_fraud_onset[j] + FRAUD_ACTIVITY_DECAY * fraud_from[j + 1]
    honest_so_far = np.zeros_like(fraud_from[0])
    survival = np.zeros_like(fraud_from[0])
    still_honest = np.ones_like(fraud_from[0])
    for j, hazard in enumerate(onset_hazard):
        survival += still_honest * hazard * np.exp(-(honest_so_far + fraud_from[j]))
        honest_so_far = honest_so_far + breaches_if_honest[j]
        still_honest = still_honest * (1.0 - hazard)
    survival += still_honest * np.exp(-honest_so_far)
    age = fraud_age_at_t[:, None]
    already_fraudulent = np.exp(-(FRAUD_ACTIVITY_DECAY ** (np.maximum(age, 0) + 1)) * fraud_from[0])
    return np.where(age >= 0, already_fraudulent, survival)


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

    frames = []
    for m in range(n_months):
        # Orders already created: their count is known, each breaches independently.
        log_survival_past = np.zeros(n_suppliers)
        for c in range(m + 1):
            b = past_routes[c] @ window[:, c, m]
            log_survival_past += orders_per_supplier_month[:, c] * np.log1p(-b)

        # Future orders: Monte Carlo over continuations of the latent walk; fraud onset
        # along each continuation is integrated exactly (see module docstring).
        z = np.repeat(column(world.z[:, m]), 2 * half, axis=1)
        breaches_if_honest, breaches_if_fraud_onset, onset_hazard = [], [], []
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
            breaches_if_honest.append(orders_if_honest * bh.window_breach_probability(honest, window[:, f, m]))
            # In the month of onset the volume is boosted; later months decay from it.
            breaches_if_fraud_onset.append(
                orders_if_honest * FRAUD_ACTIVITY_BOOST * bh.fraud_window_breach_probability(window[:, f, m])
            )
            onset_hazard.append(np.where(column(f >= first_active), fraud_hazard(z), 0.0))
        survival_future = future_survival(
            breaches_if_honest, breaches_if_fraud_onset, onset_hazard, fraud_age_at_t=world.fraud_age(m)
        ).mean(axis=1)
        probability = 1.0 - np.exp(log_survival_past) * survival_future

        joined = np.flatnonzero(world.join_month <= m)
        frames.append(
            pa.table(
                {
                    "supplier_id": id_strings("S", joined + 1, SUPPLIER_ID_WIDTH),
                    "as_of_date": pa.array([grid.month_end(m)] * len(joined), type=pa.date32()),
                    "breach_probability_6m": pa.array(probability[joined], type=pa.float64()),
                    "latent_reliability": pa.array(world.z[joined, m], type=pa.float64()),
                    "reliability_drift": pa.array(world.drift[joined], type=pa.float64()),
                    "is_fraudulent": pa.array(world.fraud_age(m)[joined] >= 0, type=pa.bool_()),
                    "orders_in_month": pa.array(orders_per_supplier_month[joined, m], type=pa.int64()),
                }
            )
        )
    return pa.concat_tables(frames)
