"""Exact quantiles over rolling month windows without copying a value per window.

The SQL definition (``features.window_aggregates.create_rolled_response_times_sql``) places every
answered inquiry on each of the at most six month ends whose window holds it and lets the
engine's ``quantile_cont`` collect the copies: about six copies of forty million values at
full scale, the largest single cost of the feature build. This kernel gives the same
numbers from one sorted copy:

* the values arrive sorted by (group key, value), once;
* a value belongs to the window of month end T when ``first_m <= T <= last_m`` (for the
  response times: answered by T, received in T's six months), a contiguous run of month
  ends;
* per group, one pass over its values counts each month end's window, which fixes the
  ranks the quantiles interpolate between; a second pass, in value order, numbers each
  month end's values as they come and keeps the ones at those ranks. Each value is
  visited once per month end of its window, and no window is copied.

Interpolation is DuckDB's ``quantile_cont``, to the last bit: with n values
v[0] <= ... <= v[n-1], position r = (n - 1) * q and w = r - floor r, the result is
v[floor r] * (1 - w) + v[ceil r] * w (numpy's "linear" method is the same quantile but
rounds differently in the last bit). Windows with no value give no row, as the SQL
GROUP BY does. The passes are compiled with numba; the function is plain numpy to its
callers, so notebooks, tests and benchmarks call the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit


def windowed_quantiles(
    keys: np.ndarray,
    values: np.ndarray,
    first_m: np.ndarray,
    last_m: np.ndarray,
    as_of_ms: Sequence[int],
    quantiles: Sequence[float],
) -> dict[str, np.ndarray]:
    """Quantiles of ``values`` per (as_of_m, key) over the rows with ``first_m <= as_of_m
    <= last_m``.

    ``keys`` and ``values`` must be sorted by (key, value), ascending; unsorted input is
    refused with a ValueError, since the ranks counted below would silently pick wrong
    values. Returns columns ``as_of_m``, ``key`` and ``q0``, ``q1``, ... in the order of
    ``quantiles``, rows ordered by (as_of_m, key), as the SQL's GROUP BY gives them.
    """
    months, group_keys, found, present = group_window_quantiles(keys, values, first_m, last_m, as_of_ms, quantiles)
    month_of, group_of = np.nonzero(present)
    result = {"as_of_m": months[month_of], "key": group_keys[group_of]}
    for slot in range(len(quantiles)):
        result[f"q{slot}"] = found[month_of, group_of, slot]
    return result


def group_window_quantiles(
    keys: np.ndarray,
    values: np.ndarray,
    first_m: np.ndarray,
    last_m: np.ndarray,
    as_of_ms: Sequence[int],
    quantiles: Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``windowed_quantiles`` as dense arrays: the sorted month ends, each group's key,
    ``found[month, group, quantile]`` (NaN where the window is empty) and
    ``present[month, group]``."""
    keys = np.asarray(keys)
    values = np.asarray(values, dtype=np.float64)
    first_m = np.asarray(first_m)
    last_m = np.asarray(last_m)
    n_rows = len(keys)
    if not (len(values) == len(first_m) == len(last_m) == n_rows):
        raise ValueError("keys, values, first_m and last_m must have the same length")
    if n_rows and (first_m.dtype.kind not in "iu" or last_m.dtype.kind not in "iu"):
        raise ValueError("first_m and last_m must be integer month indices")
    if not sorted_by_key_and_value(keys, values):
        raise ValueError("windowed_quantiles needs rows sorted by (key, value)")
    if np.isnan(values).any():
        raise ValueError("windowed_quantiles got NaN values; drop unknown values first")
    months = np.array(sorted(set(int(m) for m in as_of_ms)), dtype=np.int64)
    group_starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n_rows else np.empty(0, np.int64)
    found = np.full((len(months), len(group_starts), len(quantiles)), np.nan)
    present = np.zeros((len(months), len(group_starts)), dtype=np.bool_)
    if len(months) and n_rows:
        # a row's month ends are the run of ``months`` from the first at or after
        # first_m to the last at or before last_m: looked up per month of the span
        span = np.arange(months[0], months[-1] + 1)
        first_at_or_after = np.searchsorted(months, span, side="left")
        last_at_or_before = np.searchsorted(months, span, side="right") - 1
        _group_quantiles(values, first_m, last_m, months[0], first_at_or_after, last_at_or_before,
                         group_starts, np.r_[group_starts[1:], n_rows], np.asarray(quantiles, dtype=np.float64),
                         found, present)
    return months, keys[group_starts], found, present


@njit(cache=True, nogil=True)
def _month_run(first_m, last_m, first_month, first_at_or_after, last_at_or_before):
    """The indices (lo, hi) of the month ends in [first_m, last_m]; lo > hi when none."""
    n_span, n_months = first_at_or_after.shape[0], last_at_or_before[-1] + 1
    a, b = first_m - first_month, last_m - first_month
    lo = 0 if a < 0 else (n_months if a >= n_span else first_at_or_after[a])
    hi = -1 if b < 0 else (n_months - 1 if b >= n_span else last_at_or_before[b])
    return lo, hi


@njit(cache=True, nogil=True)
def _group_quantiles(values, first_m, last_m, first_month, first_at_or_after, last_at_or_before,
                     group_starts, group_ends, qs, found, present):
    n_months, n_qs = found.shape[0], qs.shape[0]
    counts = np.zeros(n_months, np.int64)
    seen = np.zeros(n_months, np.int64)
    lower_rank = np.zeros((n_months, n_qs), np.int64)
    upper_rank = np.zeros((n_months, n_qs), np.int64)
    lower = np.zeros((n_months, n_qs))
    upper = np.zeros((n_months, n_qs))
    for g in range(group_starts.shape[0]):
        start, end = group_starts[g], group_ends[g]
        counts[:] = 0
        seen[:] = 0
        for i in range(start, end):
            lo, hi = _month_run(first_m[i], last_m[i], first_month, first_at_or_after, last_at_or_before)
            for t in range(lo, hi + 1):
                counts[t] += 1
        for t in range(n_months):
            for j in range(n_qs):
                position = (counts[t] - 1) * qs[j]
                lower_rank[t, j] = np.int64(np.floor(position))
                upper_rank[t, j] = np.int64(np.ceil(position))
        for i in range(start, end):
            lo, hi = _month_run(first_m[i], last_m[i], first_month, first_at_or_after, last_at_or_before)
            for t in range(lo, hi + 1):
                rank = seen[t]
                seen[t] += 1
                for j in range(n_qs):
                    if rank == lower_rank[t, j]:
                        lower[t, j] = values[i]
                    if rank == upper_rank[t, j]:
                        upper[t, j] = values[i]
        for t in range(n_months):
            if counts[t] == 0:
                continue
            present[t, g] = True
            for j in range(n_qs):
                position = (counts[t] - 1) * qs[j]
                weight = position - np.floor(position)
                found[t, g, j] = lower[t, j] * (1.0 - weight) + upper[t, j] * weight


def sorted_by_key_and_value(keys: np.ndarray, values: np.ndarray) -> bool:
    return not (np.any(keys[1:] < keys[:-1]) or np.any((keys[1:] == keys[:-1]) & (values[1:] < values[:-1])))
