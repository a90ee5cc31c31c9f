"""Exact quantiles over rolling month windows without copying a value per window.

The SQL definition (``features.window_aggregates.create_rolled_response_times_sql``) places every
answered inquiry on each of the at most six month ends whose window holds it and lets the
engine's ``quantile_cont`` collect the copies: about six copies of forty million values at
full scale, the largest single cost of the feature build. This kernel gives the same
numbers from one sorted copy:

* the values arrive sorted by (group key, value), once;
* a value belongs to the window of month end T when ``first_m <= T <= last_m`` (for the
  response times: answered by T, received in T's six months), a contiguous run of month
  ends, so for each requested T a running count of the values in T's window, along the
  sorted order, is a cumulative sum over one boolean mask;
* the k-th smallest value of group g at T is where that running count, restarted at g's
  first row, first reaches k: a binary search per group, no per-window copy.

Interpolation is DuckDB's ``quantile_cont``, to the last bit: with n values
v[0] <= ... <= v[n-1], position r = (n - 1) * q and w = r - floor r, the result is
v[floor r] * (1 - w) + v[ceil r] * w (numpy's "linear" method is the same quantile but
rounds differently in the last bit). Windows with no value give no row, as the SQL
GROUP BY does. Plain numpy, so the same code serves notebooks, tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
    refused with a ValueError, since the search below would silently return wrong values. Returns columns ``as_of_m``, ``key``
    and ``q0``, ``q1``, ... in the order of ``quantiles``, rows ordered by (as_of_m, key).
    """
    keys = np.asarray(keys)
    values = np.asarray(values, dtype=np.float64)
    first_m = np.asarray(first_m)
    last_m = np.asarray(last_m)
    n_rows = len(keys)
    # int32 running counts halve the memory traffic of the per-month passes; searchsorted
    # targets get the same dtype, so numpy never converts (copies) the big array.
    count_type = np.int32 if n_rows < np.iinfo(np.int32).max else np.int64
    if not (len(values) == len(first_m) == len(last_m) == n_rows):
        raise ValueError("keys, values, first_m and last_m must have the same length")
    if not sorted_by_key_and_value(keys, values):
        raise ValueError("windowed_quantiles needs rows sorted by (key, value)")
    if np.isnan(values).any():
        raise ValueError("windowed_quantiles got NaN values; drop unknown values first")

    group_starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n_rows else np.empty(0, np.int64)
    group_ends = np.r_[group_starts[1:], n_rows].astype(np.int64)
    group_keys = keys[group_starts] if n_rows else keys[:0]

    out_as_of: list[np.ndarray] = []
    out_keys: list[np.ndarray] = []
    out_quantiles: list[list[np.ndarray]] = [[] for _ in quantiles]
    running = np.empty(n_rows + 1, dtype=count_type)
    running[0] = 0
    after_row = running[1:]  # after_row[i]: window values among rows 0..i
    for as_of_m in sorted(set(int(m) for m in as_of_ms)):
        in_window = (first_m <= as_of_m) & (last_m >= as_of_m)
        # running[i] = values of rows < i in the window; per group, the count before its
        # first row is the base the k-th value is counted from.
        np.cumsum(in_window, out=after_row)
        base = running[group_starts]
        counts = running[group_ends] - base
        present = counts > 0
        if not present.any():
            continue
        base, counts = base[present], counts[present]
        out_as_of.append(np.full(len(counts), as_of_m, dtype=np.int64))
        out_keys.append(group_keys[present])
        for slot, q in enumerate(quantiles):
            position = (counts - 1).astype(np.float64) * q
            lower_rank = np.floor(position)
            upper_rank = np.ceil(position)
            # The row holding the group's (rank + 1)-th window value is the first i with
            # after_row[i] = base + rank + 1.
            lower = values[np.searchsorted(after_row, (base + lower_rank + 1).astype(count_type))]
            upper = values[np.searchsorted(after_row, (base + upper_rank + 1).astype(count_type))]
            weight = position - lower_rank
            out_quantiles[slot].append(lower * (1.0 - weight) + upper * weight)

    def joined(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    result = {"as_of_m": joined(out_as_of, np.int64), "key": joined(out_keys, keys.dtype)}
    for slot, parts in enumerate(out_quantiles):
        result[f"q{slot}"] = joined(parts, np.float64)
    return result


def sorted_by_key_and_value(keys: np.ndarray, values: np.ndarray) -> bool:
    return not (np.any(keys[1:] < keys[:-1]) or np.any((keys[1:] == keys[:-1]) & (values[1:] < values[:-1])))
