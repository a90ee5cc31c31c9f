"""Monitoring statistics: drift of the model inputs and scores, collapse of a score's
distribution, and calibration and ranking on outcomes as they complete (no Dagster).

Drift: the population stability index (PSI)
-------------------------------------------
Each column is cut into fixed bins taken from the *reference* sample (the months the
model learned from, or the previous month): up to ``DRIFT_BINS`` bins at the reference's
quantiles for a number (a mass point such as "0 disputes" keeps its own bin, as equal
quantiles merge), the most frequent reference values for a category (the rest pooled as
``<other>``), and missing values always in a bin of their own, so a feed that starts
sending NULLs drifts like any other change. With reference shares r and current shares c,
PSI = sum (c - r) ln(c / r) (half a row added to every count, so an empty bin is finite).

Why not the 0.1 / 0.25 rule of thumb: PSI from a finite sample is positive even when
nothing changed, and how positive depends on the sample sizes. Yurdakul (2018, "Statistical
properties of the population stability index") shows that with N reference and M current
rows, under no shift, PSI / (1/N + 1/M) is approximately chi-square with B - 1 degrees of
freedom (B bins). So 0.1 is far too strict for a segment of 50 suppliers (the noise alone
exceeds it often) and far too lax for 5,000 against 75,000. Under a true shift of size d
the same statistic is approximately *non-central* chi-square with non-centrality
d / (1/N + 1/M). We test H0: "the true PSI is at most ``TOLERATED_PSI``" against H1: "more",
at a false-alarm rate ``alpha`` per input:

    critical PSI(N, M, B) = (1/N + 1/M) * ncx2.ppf(1 - alpha, B - 1, TOLERATED_PSI / (1/N + 1/M))

For small samples the critical value is the sampling noise (an alarm needs a large
shift); as N and M grow it falls to ``TOLERATED_PSI``, the smallest drift worth a risk
analyst's look, so a large portfolio is not alarmed on shifts too small to matter (with
tolerance 0 every input of 5,000 suppliers drifts a little every month, and a check that
always warns is ignored). ``TOLERATED_PSI`` = 0 gives Yurdakul's test exactly.

The false-alarm rate is per month and comparison over all inputs: ``alpha`` is divided
among the columns tested (Bonferroni), so on an unchanged population a month raises a
drift warning with probability at most ``DRIFT_FALSE_ALARM_RATE``. Months in the
reference window repeat the same suppliers, which are not independent draws: the
reference size N is the number of distinct suppliers in it, not of supplier-months
(conservative: a smaller N widens the critical value). Fewer than ``MIN_DRIFT_ROWS``
current rows (five per bin: the chi-square approximation needs expected counts of about
five) are reported and never alarmed on.

Performance on completed outcomes
---------------------------------
Calibration compares what happened, O (events, or refund dollars), with what the model
predicted, E (sum of probabilities, or of predicted rate x order value), as O / E. Its
test is two one-sided tests of H0: |O / E - 1| <= tolerance, with the standard error of
O - E: sqrt(sum p (1 - p)) for a probability (the variance under a calibrated model),
sqrt(sum (refund - predicted refund)^2) for the loss rate (refund dollars are heavy
tailed: the residuals give the variance). Ranking is the AUC for the two probabilities
(with Hanley and McNeil's standard error) and the exposure-weighted Gini for the loss
rate (``models.metrics.weighted_gini``). A segment with fewer than ``MIN_SEGMENT_ROWS``
rows or ``MIN_SEGMENT_EVENTS`` events is reported and never alarmed on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from models.evaluation import TENURE_BANDS, VOLUME_BANDS, _band
from models.labels import add_months
from models.metrics import log_spread, top_value_share, weighted_gini

DRIFT_BINS = 10
# Per month and comparison, over every column tested (Bonferroni across the columns).
DRIFT_FALSE_ALARM_RATE = 0.01
# The smallest true PSI worth a look (H0 of the drift test). Well under the folklore 0.1:
# with sample-size-aware critical values it is where large samples converge, not a cut on
# noisy PSI values.
TOLERATED_PSI = 0.05
MIN_DRIFT_ROWS = 5 * DRIFT_BINS
# Shrunk rates (``*_shrunk``, features/specs.py) are left out of drift: a supplier without
# events sits at that month's population rate, which moves a little every month, so most
# suppliers jump a bin edge together and PSI measures the move of one value rather than a
# change of suppliers. Their raw rates and counts, also model inputs, carry the change.
DRIFT_EXCLUDED_SUFFIXES = ("_shrunk",)
MISSING_BIN = "<missing>"
OTHER_BIN = "<other>"
_HALF_ROW = 0.5

# Calibration: a month's realised O / E may stray this far from 1 before it is tested as a
# miscalibration (WARN); beyond the blocking bound (O / E outside [1/2, 2], significantly)
# the amounts rest on a model off by a factor of two (ERROR, for the loss rate and the
# default probability). Both tests at this false-alarm rate per model and month.
CALIBRATION_TOLERANCE = 0.25
CALIBRATION_BLOCKING_FACTOR = 2.0
PERFORMANCE_FALSE_ALARM_RATE = 0.01
# Ranking: WARN when the month's AUC is significantly below the model's own out-of-time
# AUC by more than this; the Gini likewise by twice it (Gini = 2 AUC - 1 on a binary
# outcome). Overall only: a segment ranks worse than the whole by construction (it is
# more alike), so its AUC is reported, never compared with the overall figure.
RANKING_TOLERANCE = 0.05
JACKKNIFE_GROUPS = 20
MIN_SEGMENT_ROWS = 200
MIN_SEGMENT_EVENTS = 10

# Collapse of a score's distribution (ERROR: the scores carry no information to publish):
# its spread (standard deviation of the log score) falls under this share of the
# reference's, more than this share of suppliers share a single value, or a score is
# missing or not finite. The spread's reference is the scoring model's own, on its
# out-of-time rows when it was trained, and so is the ties' (an isotonic calibrator's lowest
# step may hold half the suppliers of a small world, every month it scores): a new vintage
# that honestly knows less (on a small real source, a weak signal gives scores near the
# mean) is not a collapse, while a model whose scores lose the spread it had when it was
# judged is. Models whose run logged neither fall back on the scores published in their
# reference months.
COLLAPSE_SPREAD_RATIO = 0.25
COLLAPSE_TOP_VALUE_SHARE = 0.5


# --- binning and PSI -------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Fixed bins from a reference sample: numeric edges or categories; missing values last."""

    edges: tuple[float, ...] | None = None  # upper edges (inclusive) of all bins but the last
    categories: tuple[str, ...] | None = None  # reference values with a bin each, then <other>

    @property
    def labels(self) -> list[str]:
        if self.categories is not None:
            return [*self.categories, OTHER_BIN, MISSING_BIN]
        edges = self.edges or ()
        bounds = ["-inf", *(f"{e:.6g}" for e in edges), "inf"]
        return [f"({bounds[i]}, {bounds[i + 1]}]" for i in range(len(edges) + 1)] + [MISSING_BIN]


def is_categorical(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def _numeric(values: pd.Series) -> np.ndarray:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    array[~np.isfinite(array)] = np.nan
    return array


def reference_bins(reference: pd.Series, n_bins: int = DRIFT_BINS) -> Bins:
    """Bins at the reference's quantiles (numbers) or its most frequent values (categories)."""
    if is_categorical(reference):
        counts = reference.dropna().astype(str).value_counts(sort=False).sort_index()
        top = counts.sort_values(ascending=False, kind="mergesort").index[: n_bins - 1]
        return Bins(categories=tuple(sorted(top)))
    values = _numeric(reference)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Bins(edges=())
    quantiles = np.quantile(values, np.arange(1, n_bins) / n_bins, method="inverted_cdf")
    # Keep an edge only below the maximum: a bin above the largest value would stay empty.
    return Bins(edges=tuple(float(e) for e in np.unique(quantiles) if e < values.max()))


def bin_index(values: pd.Series, bins: Bins) -> np.ndarray:
    """Each value's bin: its position in ``bins.labels`` (missing values in the last)."""
    index = np.full(len(values), len(bins.labels) - 1, dtype=np.int64)
    if bins.categories is not None:
        present = values.notna().to_numpy()
        known = {category: i for i, category in enumerate(bins.categories)}
        index[present] = values[present].astype(str).map(known).fillna(len(bins.categories)).to_numpy(dtype=np.int64)
        return index
    array = _numeric(values)
    present = ~np.isnan(array)
    index[present] = np.searchsorted(np.asarray(bins.edges or (), dtype=float), array[present], side="left")
    return index


def bin_counts(values: pd.Series, bins: Bins) -> np.ndarray:
    """Rows per bin of ``bins`` (order of ``bins.labels``)."""
    return np.bincount(bin_index(values, bins), minlength=len(bins.labels))


def population_stability(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (bins empty in both are ignored)."""
    reference_counts = np.asarray(reference_counts, dtype=float)
    current_counts = np.asarray(current_counts, dtype=float)
    used = (reference_counts + current_counts) > 0
    r = reference_counts[used] + _HALF_ROW
    c = current_counts[used] + _HALF_ROW
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


@functools.lru_cache(maxsize=65_536)  # a month's columns share their sample sizes: ppf is the cost
def critical_psi(
    n_reference: float, n_current: float, n_bins: int, alpha: float = DRIFT_FALSE_ALARM_RATE,
    tolerated_psi: float = TOLERATED_PSI,
) -> float:
    """The PSI above which "true PSI <= tolerated_psi" is rejected at ``alpha`` (module docstring)."""
    if n_bins < 2 or n_reference <= 0 or n_current <= 0:
        return math.inf
    scale = 1.0 / n_reference + 1.0 / n_current
    df = n_bins - 1
    if tolerated_psi <= 0:
        return float(scale * stats.chi2.ppf(1 - alpha, df))
    return float(scale * stats.ncx2.ppf(1 - alpha, df, tolerated_psi / scale))


@dataclass(frozen=True)
class DriftResult:
    column: str
    psi: float
    critical_psi: float
    drifted: bool
    n_reference: int
    n_current: int
    bins: int
    missing_share_reference: float
    missing_share_current: float
    most_changed_bin: str  # the bin whose share moved most

    @property
    def psi_to_critical(self) -> float:
        """PSI over its critical value: above 1 is an alarm; comparable across sample sizes."""
        return self.psi / self.critical_psi if math.isfinite(self.critical_psi) and self.critical_psi > 0 else 0.0


def _drift(column: str, bins: Bins, ref_counts: np.ndarray, cur_counts: np.ndarray, alpha: float,
           tolerated_psi: float, reference_size: float | None) -> DriftResult:
    used = (ref_counts + cur_counts) > 0
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    psi = population_stability(ref_counts, cur_counts) if n_ref and n_cur else 0.0
    size = min(reference_size, n_ref) if reference_size is not None else n_ref
    critical = critical_psi(size, n_cur, int(used.sum()), alpha, tolerated_psi)
    if n_cur < MIN_DRIFT_ROWS:
        critical = math.inf  # reported, never alarmed on: too few rows for the approximation
    shares_moved = np.abs(cur_counts / max(n_cur, 1) - ref_counts / max(n_ref, 1))
    return DriftResult(
        column=column,
        psi=psi,
        critical_psi=critical,
        drifted=bool(psi > critical),
        n_reference=n_ref,
        n_current=n_cur,
        bins=int(used.sum()),
        missing_share_reference=float(ref_counts[-1] / max(n_ref, 1)),
        missing_share_current=float(cur_counts[-1] / max(n_cur, 1)),
        most_changed_bin=bins.labels[int(np.argmax(shares_moved))] if len(shares_moved) else "",
    )


def drift_test(
    column: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    alpha: float = DRIFT_FALSE_ALARM_RATE,
    tolerated_psi: float = TOLERATED_PSI,
    reference_size: float | None = None,
) -> DriftResult:
    """PSI of ``current`` against ``reference`` on the reference's bins, and the verdict.

    ``reference_size`` is the reference's effective sample size when its rows are not
    independent draws (repeated suppliers); default: its row count."""
    bins = reference_bins(reference)
    return _drift(column, bins, bin_counts(reference, bins), bin_counts(current, bins), alpha, tolerated_psi,
                  reference_size)


@dataclass(frozen=True)
class Profile:
    """A reference sample reduced to what drift needs: per column its bins and counts, pooled
    and per month (the months the reference holds)."""

    bins: dict[str, Bins]
    counts: dict[str, np.ndarray]  # pooled counts per bin
    size: float  # effective sample size (distinct suppliers when they repeat over months)
    monthly_counts: dict[str, np.ndarray]  # months x bins
    months: tuple[date, ...] = ()


def profile(reference: pd.DataFrame, columns: Sequence[str], size: float | None = None) -> Profile:
    """Bins from ``reference`` for every column and its counts in them, pooled and per
    ``as_of_date`` (computed once, then compared with any number of months)."""
    bins = {column: reference_bins(reference[column]) for column in columns}
    months = tuple(sorted(reference["as_of_date"].unique())) if "as_of_date" in reference else ()
    # Each row's month as a number, so that one bincount per column counts every month at
    # once (rather than filtering the frame once per month and column).
    month_of_row = pd.Categorical(reference["as_of_date"], categories=months).codes.astype(np.int64) \
        if months else np.zeros(0, dtype=np.int64)
    counts, monthly = {}, {}
    for column in columns:
        index, width = bin_index(reference[column], bins[column]), len(bins[column].labels)
        counts[column] = np.bincount(index, minlength=width)
        monthly[column] = np.bincount(month_of_row * width + index, minlength=len(months) * width).reshape(
            len(months), width) if months else np.zeros((0, width), dtype=np.int64)
    return Profile(bins, counts, float(size if size is not None else len(reference)), monthly, months)


def drift_table(
    reference: Profile,
    current: pd.DataFrame,
    *,
    alpha: float = DRIFT_FALSE_ALARM_RATE,
    tolerated_psi: float = TOLERATED_PSI,
) -> pd.DataFrame:
    """One row per column of ``reference``: PSI against the pooled reference, critical PSI at
    ``alpha`` shared over the columns (Bonferroni), verdict; and the same against the
    reference month the current month is closest to (``nearest_month``): ``unlike_every_month``
    is true when it drifts even from that one, so a seasonal month that resembles the same
    season in the reference is not new. Sorted worst first (by PSI over its critical value)."""
    columns = list(reference.bins)
    per_column = alpha / max(len(columns), 1)
    rows = []
    for column in columns:
        current_counts = bin_counts(current[column], reference.bins[column])
        pooled = _drift(column, reference.bins[column], reference.counts[column], current_counts, per_column,
                        tolerated_psi, reference.size)
        row = {**pooled.__dict__, "psi_to_critical": pooled.psi_to_critical}
        monthly = reference.monthly_counts[column]
        if len(monthly):
            # The same test against each reference month, vectorised: PSI per month, then its
            # critical value for that month's size (cached: the sizes repeat over columns).
            used = (monthly + current_counts) > 0
            r = np.where(used, monthly + _HALF_ROW, 0.0)
            c = np.where(used, current_counts + _HALF_ROW, 0.0)
            r, c = r / r.sum(axis=1, keepdims=True), c / c.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                psi = np.where(used, (c - r) * np.log(c / r), 0.0).sum(axis=1)
            n_cur = int(current_counts.sum())
            critical = np.array([
                critical_psi(int(n_ref), n_cur, int(bins), per_column, tolerated_psi) if n_cur >= MIN_DRIFT_ROWS else math.inf
                for n_ref, bins in zip(monthly.sum(axis=1), used.sum(axis=1), strict=True)
            ])
            ratio = np.where(np.isfinite(critical) & (critical > 0), psi / critical, 0.0)
            best = int(np.argmin(ratio))
            row.update(nearest_month=reference.months[best], nearest_month_psi=float(psi[best]),
                       unlike_every_month=bool(psi[best] > critical[best]))
        else:
            row.update(nearest_month=None, nearest_month_psi=math.nan, unlike_every_month=pooled.drifted)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*DriftResult.__dataclass_fields__, "psi_to_critical", "nearest_month",
                                        "nearest_month_psi", "unlike_every_month"])
    return frame.sort_values(["psi_to_critical", "column"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def drift_columns(model_inputs: Iterable[str]) -> list[str]:
    """The model inputs whose drift is tested (all but the shrunk rates, see above)."""
    return [name for name in model_inputs if not name.endswith(DRIFT_EXCLUDED_SUFFIXES)]


# --- collapse of a score's distribution --------------------------------------------------


@dataclass(frozen=True)
class CollapseResult:
    collapsed: bool
    reason: str
    spread_ratio: float  # std of log score, current over reference
    top_value_share: float  # share of rows holding the most common value
    non_finite_share: float


NOT_SCORED = "not scored: no model vintage knew this month"


def score_collapse(reference: Iterable[float], current: Iterable[float],
                   reference_spread: float | None = None, reference_top_share: float | None = None) -> CollapseResult:
    """Has this month's score lost its spread, or gone missing (module constants)? The spread
    and the share of one value are judged against the reference (a source whose suppliers
    were always alike is not a collapse); without a reference only missing values count.
    ``reference_spread``, when given and positive (the scoring model's own out-of-time
    ``log_spread``), is the spread's reference instead of the reference scores', and
    ``reference_top_share`` (its own ``top_value_share``), when given, the ties' reference."""
    ref = np.asarray(list(reference) if not isinstance(reference, np.ndarray) else reference, dtype=float)
    cur = np.asarray(list(current) if not isinstance(current, np.ndarray) else current, dtype=float)
    if cur.size == 0:
        return CollapseResult(True, "no scores", 0.0, 0.0, 0.0)
    non_finite = float(np.mean(~np.isfinite(cur)))
    top_share = top_value_share(cur)
    own = reference_spread is not None and math.isfinite(reference_spread) and reference_spread > 0
    ref_spread = float(reference_spread) if own else log_spread(ref)
    ratio = log_spread(cur) / ref_spread if ref_spread > 0 else 1.0
    reasons = []
    if non_finite > 0:
        reasons.append(f"{non_finite:.1%} of scores missing or not finite")
    own_ties = reference_top_share is not None and math.isfinite(reference_top_share)
    ref_share = float(reference_top_share) if own_ties else top_value_share(ref) if ref.size else None
    tie_bound = max(COLLAPSE_TOP_VALUE_SHARE, 2 * ref_share) if ref_share is not None else None
    if tie_bound is not None and cur.size > 1 and top_share > tie_bound:
        reasons.append(f"{top_share:.1%} of suppliers share one score (bound {tie_bound:.0%})")
    if ratio < COLLAPSE_SPREAD_RATIO:
        whose = "the model's own out of time" if own else "the reference months'"
        reasons.append(f"spread {ratio:.2f} of {whose} (bound {COLLAPSE_SPREAD_RATIO})")
    return CollapseResult(bool(reasons), "; ".join(reasons) or "ok", ratio, top_share, non_finite)


# --- calibration and ranking on completed outcomes -----------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    observed: float
    expected: float
    ratio: float  # observed / expected
    z_high: float  # evidence that O / E > 1 + tolerance (standard errors)
    z_low: float  # evidence that O / E < 1 - tolerance
    miscalibrated: bool  # beyond CALIBRATION_TOLERANCE, significantly
    beyond_blocking_bound: bool  # beyond a factor CALIBRATION_BLOCKING_FACTOR, significantly


def calibration_test(
    observed: float, expected: float, standard_error: float, *,
    tolerance: float = CALIBRATION_TOLERANCE, blocking_factor: float = CALIBRATION_BLOCKING_FACTOR,
    alpha: float = PERFORMANCE_FALSE_ALARM_RATE,
) -> CalibrationResult:
    """Two one-sided tests of |O / E - 1| <= tolerance, and of O / E within the blocking factor."""
    z_crit = stats.norm.ppf(1 - alpha / 2)
    se = max(standard_error, 1e-12)

    def beyond(high: float, low: float) -> tuple[float, float, bool]:
        z_high, z_low = (observed - high * expected) / se, (low * expected - observed) / se
        return z_high, z_low, bool(max(z_high, z_low) > z_crit)

    z_high, z_low, miscalibrated = beyond(1 + tolerance, 1 - tolerance)
    *_, blocking = beyond(blocking_factor, 1 / blocking_factor)
    ratio = observed / expected if expected > 0 else math.inf if observed > 0 else 1.0
    return CalibrationResult(float(observed), float(expected), float(ratio), float(z_high), float(z_low),
                             miscalibrated, blocking)


def probability_calibration(y: np.ndarray, p: np.ndarray, **kwargs) -> CalibrationResult:
    """Events against the sum of predicted probabilities (variance under calibration)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return calibration_test(y.sum(), p.sum(), math.sqrt(float(np.sum(p * (1 - p)))), **kwargs)


def loss_rate_calibration(refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray, **kwargs) -> CalibrationResult:
    """Refund dollars against predicted rate x order value (variance from the residuals)."""
    refund, expected = np.asarray(refund, dtype=float), np.asarray(predicted_rate, dtype=float) * np.asarray(exposure, dtype=float)
    return calibration_test(refund.sum(), expected.sum(), math.sqrt(float(np.sum((refund - expected) ** 2))), **kwargs)


def auc_with_standard_error(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC and Hanley & McNeil's (1982) standard error; (nan, nan) with a single class."""
    y = np.asarray(y, dtype=int)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        return math.nan, math.nan
    # Mann-Whitney on mid-ranks: the AUC with ties counted half, as roc_auc_score, without its
    # input validation (a month is scored per model and segment value: hundreds of calls).
    ranks = stats.rankdata(np.asarray(p, dtype=float))
    auc = float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (positives * negatives)
    return auc, math.sqrt(max(variance, 0.0))


def gini_with_standard_error(refund: np.ndarray, exposure: np.ndarray, predicted_rate: np.ndarray) -> tuple[float, float]:
    """Exposure-weighted Gini and its delete-a-group jackknife standard error (rows dealt
    into ``JACKKNIFE_GROUPS`` groups in a fixed pseudo-random order: deterministic)."""
    refund, exposure, predicted_rate = (np.asarray(a, dtype=float) for a in (refund, exposure, predicted_rate))
    gini = weighted_gini(refund, exposure, predicted_rate)
    if not math.isfinite(gini) or len(refund) < 2 * JACKKNIFE_GROUPS:
        return gini, math.nan
    group = np.random.default_rng(0).permutation(len(refund)) % JACKKNIFE_GROUPS
    leave_out = np.array([weighted_gini(refund[group != g], exposure[group != g], predicted_rate[group != g])
                          for g in range(JACKKNIFE_GROUPS)])
    leave_out = leave_out[np.isfinite(leave_out)]
    k = len(leave_out)
    return gini, math.sqrt((k - 1) / k * np.sum((leave_out - leave_out.mean()) ** 2)) if k > 1 else math.nan


def ranking_degraded(value: float, standard_error: float, reference: float | None,
                     tolerance: float = RANKING_TOLERANCE, alpha: float = PERFORMANCE_FALSE_ALARM_RATE) -> bool:
    """Is ``value`` significantly below ``reference - tolerance`` (one-sided at ``alpha``)?"""
    if reference is None or not math.isfinite(value) or not math.isfinite(reference) or not math.isfinite(standard_error):
        return False
    return bool(value + stats.norm.ppf(1 - alpha) * standard_error < reference - tolerance)


# --- per model, per segment -----------------------------------------------------------------

# The three monitored scores: published column, kind, and the realised outcome it forecasts.
BINARY = "probability"
LOSS_RATE = "loss_rate"


@dataclass(frozen=True)
class MonitoredScore:
    column: str  # the published score column
    kind: str  # BINARY or LOSS_RATE
    outcome: str  # the label column of models.labels
    version_column: str  # the published column naming the model version
    blocks_publishing: bool  # the amount rests on it (docs/design.md §7); the breach model is information
    ranking_metric: str  # the model's own out-of-time ranking, as its training run logged it (MLflow)
    spread_metric: str  # the model's own out-of-time log_spread, likewise: the collapse check's reference
    ties_metric: str  # the model's own out-of-time top_value_share, likewise


MONITORED_SCORES: tuple[MonitoredScore, ...] = (
    MonitoredScore("loss_rate_6m", LOSS_RATE, "breach_refund_usd_6m", "loss_rate_model_version", True,
                   "evaluation_total_gini", "evaluation_total_log_spread", "evaluation_total_top_value_share"),
    MonitoredScore("default_probability_6m", BINARY, "default_6m", "default_model_version", True, "evaluation_auc",
                   "evaluation_log_spread", "evaluation_top_value_share"),
    MonitoredScore("breach_probability_6m", BINARY, "breach_6m", "model_version", False, "evaluation_auc",
                   "evaluation_log_spread", "evaluation_top_value_share"),
)
EXPOSURE_COLUMN = "forward_order_value_6m_usd"
SEGMENT_COLUMNS = ("country", "tenure_band", "volume_band", "category")


def with_segments(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the segment columns: country and category as they are, tenure and
    volume (orders in six months) in the bands of models.evaluation."""
    out = frame.copy()
    for column in ("country", "category"):
        out[column] = out[column].astype(object).where(out[column].notna(), "unknown") if column in out else "unknown"
    out["tenure_band"] = _band(out["tenure_months"], TENURE_BANDS) if "tenure_months" in out else "unknown"
    out["volume_band"] = _band(out["orders_6m"], VOLUME_BANDS) if "orders_6m" in out else "unknown"
    return out


def _performance_row(rows: pd.DataFrame, score: MonitoredScore, reference_ranking: float | None, alpha: float,
                     overall: bool) -> dict:
    if score.kind == LOSS_RATE:
        rows = rows[rows[EXPOSURE_COLUMN] > 0]
        refund, exposure = rows[score.outcome].to_numpy(float), rows[EXPOSURE_COLUMN].to_numpy(float)
        predicted = rows[score.column].to_numpy(float)
        calibration = loss_rate_calibration(refund, exposure, predicted, alpha=alpha)
        events = int((refund > 0).sum())
        ranking, ranking_se = gini_with_standard_error(refund, exposure, predicted) if overall else \
            (weighted_gini(refund, exposure, predicted), math.nan)
        ranking_name, tolerance = "gini", 2 * RANKING_TOLERANCE
    else:
        y, p = rows[score.outcome].astype(int).to_numpy(), rows[score.column].to_numpy(float)
        calibration = probability_calibration(y, p, alpha=alpha)
        events = int(y.sum())
        ranking, ranking_se = auc_with_standard_error(y, p)
        ranking_name, tolerance = "auc", RANKING_TOLERANCE
    alarmable = len(rows) >= MIN_SEGMENT_ROWS and events >= MIN_SEGMENT_EVENTS
    degraded = overall and alarmable and ranking_degraded(ranking, ranking_se, reference_ranking, tolerance, alpha)
    return {
        "rows": len(rows), "events": events,
        "expected": calibration.expected, "observed": calibration.observed, "observed_to_expected": calibration.ratio,
        "ranking_metric": ranking_name, "ranking": ranking, "ranking_standard_error": ranking_se,
        "ranking_reference": reference_ranking,
        "alarmable": alarmable,
        "miscalibrated": alarmable and calibration.miscalibrated,
        "beyond_blocking_bound": alarmable and calibration.beyond_blocking_bound,
        "ranking_degraded": degraded,
    }


def performance_by_segment(
    scored: pd.DataFrame,
    score: MonitoredScore,
    reference_ranking: float | None = None,
    *,
    alpha: float = PERFORMANCE_FALSE_ALARM_RATE,
    segments: Sequence[str] = SEGMENT_COLUMNS,
) -> pd.DataFrame:
    """Calibration (O / E) and ranking of one score on rows with completed outcomes: overall
    (segment "all") and per value of each segment. ``alpha`` is shared over the segment
    values tested (Bonferroni); the overall row gets it whole. Rows: scores, outcomes and
    the supplier features of the same month (``with_segments``)."""
    frame = with_segments(scored)
    frame = frame[frame[score.outcome].notna() & frame[score.column].notna()]
    values = {segment: sorted(frame[segment].astype(str).unique()) for segment in segments}
    per_value_alpha = alpha / max(sum(len(v) for v in values.values()), 1)
    rows = [{"segment": "all", "value": "all", **_performance_row(frame, score, reference_ranking, alpha, True)}]
    for segment, segment_values in values.items():
        labels = frame[segment].astype(str)
        for value in segment_values:
            rows.append({"segment": segment, "value": value,
                         **_performance_row(frame[labels == value], score, reference_ranking, per_value_alpha, False)})
    return pd.DataFrame(rows)


# --- one month, everything together ---------------------------------------------------------

SCORE_COLUMNS = tuple(score.column for score in MONITORED_SCORES)


@dataclass
class MonthMonitoring:
    """Everything monitored for one as-of month (what the checks and the report show)."""

    as_of_date: date
    reference_months: tuple[date, ...]
    input_drift_previous: pd.DataFrame | None  # drift_table against the month before (None: no such month)
    input_drift_reference: pd.DataFrame | None  # against the model versions' fitted months (None: unknown)
    score_drift_previous: pd.DataFrame | None
    score_drift_reference: pd.DataFrame | None
    collapse: dict[str, CollapseResult]  # per score column
    performance: dict[str, pd.DataFrame] | None  # per score column; None while outcomes are incomplete

    def drift(self, which: str) -> pd.DataFrame:
        """Per column of ``which`` ("input" or "score"): PSI against the previous month and the
        training window, and whether it alarms. A column alarms when it drifted from the
        previous month *and* is unlike every month of the training window (a change that
        happened now, into something the model did not learn from). A month inside the
        training window is part of the reference and never alarms, and so is a month without
        both comparisons: the first month, or models whose training months are not in this
        warehouse (trained on another source), are reported only."""
        previous, reference = getattr(self, f"{which}_drift_previous"), getattr(self, f"{which}_drift_reference")
        tables = [t.set_index("column") for t in (previous, reference) if t is not None]
        if not tables:
            return pd.DataFrame(columns=["column", "psi_previous", "critical_previous", "psi_reference",
                                         "critical_reference", "nearest_month", "nearest_month_psi", "alarm"])
        index = tables[0].index
        out = pd.DataFrame(index=index)
        new_now = pd.Series(True, index=index)
        if previous is not None:
            p = previous.set_index("column").reindex(index)
            out["psi_previous"], out["critical_previous"] = p["psi"], p["critical_psi"]
            new_now &= p["drifted"].astype(bool)
        if reference is not None:
            r = reference.set_index("column").reindex(index)
            out["psi_reference"], out["critical_reference"] = r["psi"], r["critical_psi"]
            out["nearest_month"], out["nearest_month_psi"] = r["nearest_month"], r["nearest_month_psi"]
            new_now &= r["unlike_every_month"].astype(bool)
        both = previous is not None and reference is not None
        out["alarm"] = new_now & both & (self.as_of_date not in self.reference_months)
        ratio = out.filter(like="psi_").div(out.filter(like="critical_").to_numpy()).max(axis=1)
        return out.assign(_order=ratio.fillna(0)).sort_values("_order", ascending=False, kind="mergesort") \
            .drop(columns="_order").reset_index()


class Monitor:
    """Monitors months of supplier features and scores already loaded (all the months asked
    about, the month before each, and the reference months), reusing each reference's bins."""

    def __init__(self, features: pd.DataFrame, scores: pd.DataFrame, input_columns: Sequence[str]):
        self.features = features
        self.scores = scores
        self.input_columns = list(input_columns)
        self._profiles: dict[tuple, Profile] = {}

    def _rows(self, frame: pd.DataFrame, months: Iterable[date]) -> pd.DataFrame:
        return frame[frame["as_of_date"].isin(set(months))]

    def _profile(self, kind: str, months: tuple[date, ...]) -> Profile | None:
        key = (kind, months)
        if key not in self._profiles:
            frame, columns = (self.features, self.input_columns) if kind == "input" else (self.scores, SCORE_COLUMNS)
            rows = self._rows(frame, months)
            if rows.empty:
                return None
            self._profiles[key] = profile(rows, columns, size=rows["supplier_id"].nunique())
        return self._profiles[key]

    def month(
        self,
        as_of_date: date,
        reference_months: Sequence[date],
        outcomes: pd.DataFrame | None = None,
        reference_rankings: Mapping[str, float] | None = None,
        compare_scores_with_previous: bool = True,
        reference_spreads: Mapping[str, float] | None = None,
        reference_top_shares: Mapping[str, float] | None = None,
    ) -> MonthMonitoring:
        """Drift of inputs and scores against the month before and the reference months,
        collapse of each score (its spread and ties against ``reference_spreads`` and
        ``reference_top_shares``, the scoring models' own, where known), and (with
        ``outcomes``: that month's labels, complete) the performance of each score overall
        and per segment."""
        reference = tuple(sorted(set(reference_months)))
        previous = (add_months(as_of_date, -1),)
        current_features, current_scores = self._rows(self.features, [as_of_date]), self._rows(self.scores, [as_of_date])

        def drift(kind: str, months: tuple[date, ...], current: pd.DataFrame) -> pd.DataFrame | None:
            base = self._profile(kind, months) if months else None
            return drift_table(base, current) if base is not None and len(current) else None

        reference_scores = self._rows(self.scores, reference)
        if len(current_scores) == 0 and not reference:
            # not scored by design: no model vintage knew the month (models/vintages.py)
            collapse = {column: CollapseResult(False, NOT_SCORED, 0.0, 0.0, 0.0) for column in SCORE_COLUMNS}
        else:
            collapse = {column: score_collapse(reference_scores[column].to_numpy(float), current_scores[column].to_numpy(float),
                                               (reference_spreads or {}).get(column),
                                               (reference_top_shares or {}).get(column))
                        for column in SCORE_COLUMNS}
        performance = None
        if outcomes is not None and len(outcomes):
            rows = current_scores.merge(current_features, on=["as_of_date", "supplier_id"], how="left",
                                        suffixes=("", "_feature"))
            rows = rows.merge(outcomes, on=["as_of_date", "supplier_id"], how="inner", suffixes=("", "_outcome"))
            performance = {score.column: performance_by_segment(rows, score, (reference_rankings or {}).get(score.column))
                           for score in MONITORED_SCORES}
        return MonthMonitoring(
            as_of_date=as_of_date,
            reference_months=reference,
            input_drift_previous=drift("input", previous, current_features),
            input_drift_reference=drift("input", reference, current_features),
            score_drift_previous=drift("score", previous, current_scores) if compare_scores_with_previous else None,
            score_drift_reference=drift("score", reference, current_scores),
            collapse=collapse,
            performance=performance,
        )


# --- the month as tables: what the warehouse keeps, the checks read and the report shows ---

DRIFT_TABLE_COLUMNS = ("as_of_date", "kind", "column", "psi_previous", "critical_previous", "psi_reference",
                       "critical_reference", "nearest_month", "nearest_month_psi", "in_training_window", "alarm")


def monitoring_tables(month: MonthMonitoring) -> dict[str, pd.DataFrame]:
    """``drift`` (one row per input and score), ``collapse`` (per score) and ``performance``
    (per score and segment value; empty while the outcomes are incomplete), each with its
    verdict: ``alarm`` (WARN) and, for performance, ``blocking`` (ERROR)."""
    inside = month.as_of_date in month.reference_months
    drift = pd.concat([month.drift(kind).assign(kind=kind) for kind in ("input", "score")], ignore_index=True)
    drift = drift.assign(as_of_date=month.as_of_date, in_training_window=inside).reindex(columns=list(DRIFT_TABLE_COLUMNS))
    drift["nearest_month"] = pd.to_datetime(drift["nearest_month"]).dt.date
    collapse = pd.DataFrame([
        {"as_of_date": month.as_of_date, "score": column, "collapsed": result.collapsed, "reason": result.reason,
         "spread_ratio": result.spread_ratio, "top_value_share": result.top_value_share,
         "non_finite_share": result.non_finite_share}
        for column, result in month.collapse.items()
    ])
    frames = []
    for score in MONITORED_SCORES:
        table = (month.performance or {}).get(score.column)
        if table is None:
            continue
        table = table.assign(as_of_date=month.as_of_date, score=score.column, in_training_window=inside)
        out_of_sample = not inside
        table["alarm"] = out_of_sample & (table["miscalibrated"] | table["ranking_degraded"]).astype(bool)
        table["blocking"] = (out_of_sample and score.blocks_publishing) & (table["segment"] == "all") \
            & table["beyond_blocking_bound"].astype(bool)
        frames.append(table)
    performance = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return {"drift": drift, "collapse": collapse, "performance": performance}


def drift_alarm_lines(drift: pd.DataFrame) -> list[str]:
    return [
        f"{row.column}: PSI {row.psi_previous:.3f} vs previous month (critical {row.critical_previous:.3f}), "
        f"{row.psi_reference:.3f} vs training window, {row.nearest_month_psi:.3f} vs its nearest month {row.nearest_month}"
        for row in drift[drift["alarm"].astype(bool)].itertuples()
    ]


def performance_alarm_lines(performance: pd.DataFrame, blocking: bool = False) -> list[str]:
    if performance.empty:
        return []
    lines = []
    for row in performance[performance["blocking" if blocking else "alarm"].astype(bool)].itertuples():
        where = "overall" if row.segment == "all" else f"{row.segment}={row.value}"
        if blocking or row.miscalibrated:
            lines.append(f"{row.score} {where}: realised / predicted {row.observed_to_expected:.2f} over {row.rows:,} "
                         f"supplier-months (tolerance {CALIBRATION_TOLERANCE:.0%}"
                         f"{f', blocking beyond x{CALIBRATION_BLOCKING_FACTOR:g}' if blocking else ''})")
        if not blocking and row.ranking_degraded:
            lines.append(f"{row.score} {where}: {row.ranking_metric} {row.ranking:.3f} against {row.ranking_reference:.3f} "
                         "out of time at training")
    return lines


def collapse_alarm_lines(collapse: pd.DataFrame) -> list[str]:
    return [f"{row.score}: {row.reason}" for row in collapse[collapse["collapsed"].astype(bool)].itertuples()]
