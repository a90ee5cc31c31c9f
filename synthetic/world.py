"""The synthetic world: the month grid, the suppliers and their hidden, drifting state.

Each supplier has static attributes (country, tier, category, capacity, ticket size,
buyer pool, behavioural quirks) and a latent reliability ``z`` on a logit scale that
moves as a random walk with a supplier-specific drift: some suppliers improve, some
deteriorate, most wander. A few turn fraudulent at some month (an absorbing state whose
monthly hazard grows as ``z`` falls); a fraudster's order flow spikes, then shrinks as
buyers and the platform catch on. ``z`` drives every observable behaviour through
`behaviour.py`; tier and country add mild effects. Nothing here is written to the
landing zone except the supplier attributes; the latent path feeds the event sampler and
the ground truth.

Trading starts with the grid: suppliers who joined earlier (up to four years before)
have their tenure but no orders before the first month, so the first month ends see
little history, as a fresh extract would. A supplier joining during the range trades
from the month after it joins, ramping up over a few months.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from data_contracts.contracts import EARLIEST_PLAUSIBLE_TIMESTAMP
from synthetic.behaviour import SupplierState, Z_REF

DAY_US = 86_400_000_000
# Months beyond the last generated one that the grid knows about: the truth looks six
# months ahead and a dispute can resolve some months after its order.
EXTRA_MONTHS = 16
HISTORY_BEFORE_START_MONTHS = 48

COUNTRY_WEIGHTS = {
    "CN": 0.52, "IN": 0.10, "VN": 0.07, "TR": 0.05, "US": 0.05, "DE": 0.03, "BR": 0.03,
    "MX": 0.03, "TH": 0.03, "PK": 0.02, "ID": 0.02, "IT": 0.02, "BD": 0.02, "KR": 0.01,
}
# Slow transit is likelier from some origins (logit offset); a mild, observable effect.
COUNTRY_TRANSIT_OFFSET = {
    "CN": 0.0, "IN": 0.4, "VN": 0.1, "TR": 0.0, "US": -0.6, "DE": -0.6, "BR": 0.6,
    "MX": 0.3, "TH": 0.2, "PK": 0.5, "ID": 0.3, "IT": -0.4, "BD": 0.5, "KR": -0.3,
}
TIER_WEIGHTS = {"free": 0.50, "gold": 0.30, "verified": 0.15, "unknown": 0.05}
# Verified suppliers start a little more reliable; the effect is mild on purpose.
TIER_RELIABILITY_OFFSET = {"free": 0.0, "gold": 0.2, "verified": 0.4, "unknown": -0.3}
CATEGORIES = (
    "electronics", "apparel", "machinery", "home_garden", "beauty_personal_care",
    "packaging_printing", "chemicals", "auto_parts", "sports_entertainment", "food_beverage",
)
CATEGORY_WEIGHTS = (0.18, 0.16, 0.12, 0.12, 0.08, 0.07, 0.06, 0.08, 0.07, 0.06)
BUYER_COUNTRY_WEIGHTS = {
    "US": 0.26, "DE": 0.07, "GB": 0.07, "FR": 0.05, "CA": 0.04, "AU": 0.04, "AE": 0.04,
    "SA": 0.03, "NG": 0.03, "BR": 0.04, "MX": 0.04, "IN": 0.05, "JP": 0.04, "KR": 0.03,
    "ES": 0.04, "IT": 0.04, "NL": 0.04, "PL": 0.03,
}
# Order volume by calendar month (Chinese New Year dip, autumn peak); mean 1.
SEASONALITY = np.array([1.0, 0.75, 1.05, 1.0, 1.0, 0.95, 0.95, 1.0, 1.1, 1.1, 1.15, 0.95])
SEASONALITY = SEASONALITY / SEASONALITY.mean()

INITIAL_RELIABILITY_MEAN = 1.3
INITIAL_RELIABILITY_SD = 0.9
DRIFT_SD = 0.03  # per month: over 30 months a one-sd supplier drifts ~0.9 logits
WALK_SD = 0.12  # per month
ACTIVITY_Z_SLOPE = 0.25  # reliable suppliers win a little more business
FRAUD_ACTIVITY_BOOST = 1.3  # fraudsters push volume in their first month...
FRAUD_ACTIVITY_DECAY = 0.6  # ...then buyers and the platform catch on: -40% a month
CAPACITY_LOG_SD = 1.0


def fraud_hazard(z: np.ndarray) -> np.ndarray:
    """Monthly probability that a not-yet-fraudulent supplier turns fraudulent."""
    return np.minimum(0.05, 0.0008 * np.exp(-0.9 * (z - Z_REF)))


def fraud_activity(fraud_age: np.ndarray) -> np.ndarray:
    """Order-volume multiplier by months since fraud onset (-1: not fraudulent)."""
    return np.where(fraud_age >= 0, FRAUD_ACTIVITY_BOOST * FRAUD_ACTIVITY_DECAY ** np.maximum(fraud_age, 0), 1.0)


def ramp_up(age_months: np.ndarray) -> np.ndarray:
    """New suppliers take a few months to reach their capacity (age >= 1 when active)."""
    return 1.0 - 0.6 * np.exp(-(np.maximum(age_months, 1) - 1) / 3.0)


@dataclass(frozen=True)
class MonthGrid:
    """Calendar months from `first_month`, month 0 .. n_months - 1 generated."""

    first_month: np.datetime64
    n_months: int

    @classmethod
    def from_start(cls, start: str, n_months: int) -> "MonthGrid":
        return cls(np.datetime64(start, "M"), n_months)

    @property
    def start_days(self) -> np.ndarray:
        """Days since 1970-01-01 of each month's first day, with EXTRA_MONTHS beyond."""
        months = self.first_month + np.arange(self.n_months + EXTRA_MONTHS + 1)
        return months.astype("datetime64[D]").astype(np.int64)

    @property
    def start_us(self) -> np.ndarray:
        return self.start_days * DAY_US

    @property
    def horizon_us(self) -> int:
        """The snapshot instant: the end of the last month (exclusive bound)."""
        return int(self.start_us[self.n_months])

    def calendar_month(self, month: int) -> int:
        return int((self.first_month + month).astype(object).month)

    def label(self, month: int) -> str:
        return str(self.first_month + month)

    def month_end(self, month: int) -> date:
        return (self.first_month + month + 1).astype("datetime64[D]").astype(object) - \
            (np.timedelta64(1, "D")).astype(object)

    def month_of_day(self, days: np.ndarray) -> np.ndarray:
        """Month index (negative before the grid) of days since the epoch."""
        months = days.astype("datetime64[D]").astype("datetime64[M]")
        return (months - self.first_month).astype(np.int64)


@dataclass
class SupplierWorld:
    """Static supplier attributes plus the latent monthly path (suppliers x months)."""

    grid: MonthGrid
    base_rate: float
    country: np.ndarray  # codes into COUNTRY_WEIGHTS
    tier: np.ndarray
    category: np.ndarray
    joined_us: np.ndarray
    join_month: np.ndarray  # month index of joining, negative before the grid
    opt_in_us: np.ndarray  # -1: never (or not by the horizon)
    capacity: np.ndarray
    ticket_log_mean: np.ndarray
    drift: np.ndarray
    cancel_offset: np.ndarray
    late_offset: np.ndarray
    transit_offset: np.ndarray
    dispute_offset: np.ndarray
    response_offset: np.ndarray
    response_speed_offset: np.ndarray
    review_offset: np.ndarray
    buyer_pool_size: np.ndarray
    buyer_concentration: np.ndarray
    buyer_offset: np.ndarray
    n_buyers: int
    buyer_country: np.ndarray  # per buyer, codes into BUYER_COUNTRY_WEIGHTS
    z: np.ndarray  # (suppliers, months)
    fraud_onset: np.ndarray  # month the supplier turned fraudulent, -1: never (in the grid)

    @property
    def n_suppliers(self) -> int:
        return len(self.country)

    @property
    def first_active_month(self) -> np.ndarray:
        """Suppliers trade from the month after they join (or from month 0)."""
        return np.maximum(self.join_month + 1, 0)

    @property
    def fraud(self) -> np.ndarray:
        """(suppliers, months) bool: fraudulent in that month."""
        months = np.arange(self.grid.n_months)
        return (self.fraud_onset[:, None] >= 0) & (months[None, :] >= self.fraud_onset[:, None])

    def fraud_age(self, month: int) -> np.ndarray:
        """Months since fraud onset at `month`, -1 for suppliers not fraudulent then."""
        turned = (self.fraud_onset >= 0) & (self.fraud_onset <= month)
        return np.where(turned, month - self.fraud_onset, -1)

    def state(self, month: int, suppliers: np.ndarray | slice = slice(None)) -> SupplierState:
        return SupplierState(
            z=self.z[suppliers, month],
            fraud=self.fraud_age(month)[suppliers] >= 0,
            cancel_offset=self.cancel_offset[suppliers],
            late_offset=self.late_offset[suppliers],
            transit_offset=self.transit_offset[suppliers],
            dispute_offset=self.dispute_offset[suppliers],
        )

    def expected_orders(self, month: int, z: np.ndarray, fraud_age: np.ndarray | int) -> np.ndarray:
        """Poisson mean of a supplier's orders in `month` given its state then.

        `z` is (suppliers,) or (suppliers, continuations), `fraud_age` broadcasts against it
        (-1: not fraudulent); zero before activity starts.
        """
        extra_dims = (1,) * (np.ndim(z) - 1)
        capacity = self.capacity.reshape(-1, *extra_dims)
        age = (month - self.join_month).reshape(-1, *extra_dims)
        active = (month >= self.first_active_month).reshape(-1, *extra_dims)
        season = SEASONALITY[self.grid.calendar_month(month) - 1]
        activity = np.exp(ACTIVITY_Z_SLOPE * (z - Z_REF)) * fraud_activity(np.asarray(fraud_age))
        return np.where(active, self.base_rate * capacity * season * ramp_up(age) * activity, 0.0)


def codes(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    w = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, float)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int16)


def earliest_plausible_day() -> int:
    """The contracts' earliest plausible timestamp as days since 1970-01-01."""
    return int(np.datetime64(EARLIEST_PLAUSIBLE_TIMESTAMP.date(), "D").astype(np.int64))


def build_world(n_suppliers: int, grid: MonthGrid, base_rate: float, rng: np.random.Generator) -> SupplierWorld:
    n = n_suppliers
    start_day = int(grid.start_days[0])
    horizon_day = int(grid.start_days[grid.n_months])
    history_start_day = int((grid.first_month - HISTORY_BEFORE_START_MONTHS).astype("datetime64[D]").astype(np.int64))
    # A join before the contracts' plausibility floor would be quarantined: an early world's
    # history starts at the floor (the same draws, so later worlds are unchanged).
    history_start_day = max(history_start_day, earliest_plausible_day())

    country = codes(rng, COUNTRY_WEIGHTS, n)
    tier = codes(rng, TIER_WEIGHTS, n)
    category = codes(rng, CATEGORY_WEIGHTS, n)

    # Most suppliers predate the extract; about a fifth join while it runs.
    joins_during = rng.random(n) < 0.22
    join_day_frac = rng.random(n)
    joined_us = np.where(
        joins_during,
        (start_day + join_day_frac * (horizon_day - start_day)) * DAY_US,
        (history_start_day + join_day_frac * (start_day - history_start_day)) * DAY_US,
    ).astype(np.int64)
    join_month = grid.month_of_day(joined_us // DAY_US)

    tier_offset = np.array(list(TIER_RELIABILITY_OFFSET.values()))[tier]
    z0 = INITIAL_RELIABILITY_MEAN + tier_offset + INITIAL_RELIABILITY_SD * rng.standard_normal(n)

    # Most suppliers volunteer for assurance at some point, reliable ones a bit more often.
    opts_in = rng.random(n) < 1 / (1 + np.exp(-(1.6 + 0.4 * (z0 - Z_REF))))
    opt_in_lag_us = (rng.exponential(240.0, n) * DAY_US).astype(np.int64)
    opt_in_us = joined_us + opt_in_lag_us
    opt_in_us = np.where(opts_in & (opt_in_us < grid.horizon_us), opt_in_us, -1)

    capacity = np.exp(CAPACITY_LOG_SD * rng.standard_normal(n) - CAPACITY_LOG_SD**2 / 2)
    ticket_log_mean = np.log(1500.0) + 0.9 * rng.standard_normal(n)
    drift = DRIFT_SD * rng.standard_normal(n)
    transit_offset = np.array(list(COUNTRY_TRANSIT_OFFSET.values()))[country] + 0.3 * rng.standard_normal(n)
    cancel_offset = 0.5 * rng.standard_normal(n)
    late_offset = 0.4 * rng.standard_normal(n)
    dispute_offset = 0.35 * rng.standard_normal(n)
    response_offset = 0.8 * rng.standard_normal(n)
    response_speed_offset = 0.6 * rng.standard_normal(n)
    review_offset = 0.3 * rng.standard_normal(n)

    # Buyers: each supplier draws from its own pool (a window onto the global buyer ids),
    # skewed towards its first buyers; pool size and skew vary, so repeat business and
    # buyer concentration vary across suppliers.
    n_buyers = max(1000, 60 * n)
    expected_lifetime_orders = base_rate * capacity * grid.n_months
    buyer_pool_size = np.maximum(
        3, np.round(expected_lifetime_orders * np.exp(np.log(0.35) + 0.6 * rng.standard_normal(n)))
    ).astype(np.int64)
    buyer_concentration = rng.uniform(1.0, 4.0, n)
    buyer_offset = rng.integers(0, n_buyers, n)
    buyer_country = codes(rng, BUYER_COUNTRY_WEIGHTS, n_buyers)

    # The latent walk: frozen until the supplier becomes active, then drift + noise.
    n_months = grid.n_months
    first_active = np.maximum(join_month + 1, 0)
    z = np.empty((n, n_months))
    fraud_onset = np.full(n, -1, dtype=np.int64)
    current_z = z0
    for m in range(n_months):
        step = drift + WALK_SD * rng.standard_normal(n)
        hazard_draw = rng.random(n)
        if m > 0:
            current_z = current_z + np.where(m > first_active, step, 0.0)
        turns = (m >= first_active) & (fraud_onset < 0) & (hazard_draw < fraud_hazard(current_z))
        fraud_onset[turns] = m
        z[:, m] = current_z

    return SupplierWorld(
        grid=grid, base_rate=base_rate, country=country, tier=tier, category=category,
        joined_us=joined_us, join_month=join_month, opt_in_us=opt_in_us, capacity=capacity,
        ticket_log_mean=ticket_log_mean, drift=drift, cancel_offset=cancel_offset,
        late_offset=late_offset, transit_offset=transit_offset, dispute_offset=dispute_offset,
        response_offset=response_offset, response_speed_offset=response_speed_offset,
        review_offset=review_offset, buyer_pool_size=buyer_pool_size,
        buyer_concentration=buyer_concentration, buyer_offset=buyer_offset, n_buyers=n_buyers,
        buyer_country=buyer_country, z=z, fraud_onset=fraud_onset,
    )
