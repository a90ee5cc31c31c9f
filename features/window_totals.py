"""Windowed totals from activity intervals: every count and sum of the feature catalogue
as one numpy accumulation instead of a (supplier, month) bucket rolled onto month ends.

Each point-in-time condition of ``features.window_aggregates`` has the same shape. An event
counts at month end T when T lies in a half-open run of months ``[start_m, end_m)``:

* an order is in the six-month window of T for ``created_m <= T < created_m + 6``;
* it is *completed* at T from the later of its created and delivered months until the
  earlier of ``created_m + 6`` and the month its cancellation became known;
* a dispute is *open* at T from its opened month until its resolved month; and so on.

A month that is not known (NULL) is ``NEVER``: an interval that starts never is empty,
one that ends never stays open. So a statistic at T is the sum of the values of the
events whose interval holds T, and for integers that is a cumulative sum over months of
"+value where an interval starts, -value where it ends": two ``bincount`` calls per
statistic over the events, no fan-out, no join and no hash aggregate. Integer sums are
exact (money arrives as integer micro-dollars), so the result never depends on the
order in which rows arrive. Float values are added at each month end of their interval
instead (at most the window's width of them), because a running sum that subtracts
expired floats would leave rounding residue where the exact total is 0; they are summed
in row order, so the same ordered input gives the same bits.

Plain numpy, so the same code serves notebooks, tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.window_quantiles import sorted_by_key_and_value, windowed_quantiles

# The month index standing for "not known": later than any month end, so an interval
# starting then is empty and one ending then never ends.
NEVER = 2**30

# Integer weights are summed exactly through float64 bincounts in two 26-bit halves. A
# weight must stay below 2**53 (9e15 micro-dollars: $9 billion on one row) and a call
# below 2**26 rows, so that no half's partial sum can exceed 2**53.
_LOW_BITS = 26
_MAX_EXACT_WEIGHT = 2**53
MAX_ROWS_PER_CALL = 2**26
# Float values are added month by month over their interval: only short intervals.
MAX_FLOAT_SPAN_MONTHS = 24


@dataclass(frozen=True)
class Interval:
    """Rows' intervals as month-end slots (``WindowTotals.interval``): ``first`` is the
    first month end inside, ``stop`` the first after (equal when empty); ``flat_*`` index
    the (key, slot) cells."""

    keys: np.ndarray
    start_m: np.ndarray
    end_m: np.ndarray
    first: np.ndarray
    stop: np.ndarray
    flat_first: np.ndarray
    flat_stop: np.ndarray


class WindowTotals:
    """Per (supplier key, month end) totals of values over activity intervals.

    ``as_of_ms``: the month ends computed (month indices, any order, de-duplicated);
    ``n_keys``: one more than the largest supplier key. Memory is one
    ``n_keys x month ends`` array per statistic.
    """

    def __init__(self, as_of_ms: Sequence[int], n_keys: int) -> None:
        self.as_of_ms = np.array(sorted(set(int(m) for m in as_of_ms)), dtype=np.int64)
        self.n_keys = int(n_keys)
        self._width = len(self.as_of_ms) + 1  # one slot past the last month end: "ended"
        # slot of a month: the first month end at or after it (len(as_of_ms) if none), as
        # a lookup over the months the month ends span (a binary search per row costs
        # several times more); months before the span take slot 0, after it the last
        first_month = int(self.as_of_ms[0]) if len(self.as_of_ms) else 0
        span = np.arange(first_month, (int(self.as_of_ms[-1]) if len(self.as_of_ms) else 0) + 2)
        self._first_month = first_month
        self._slot_of_month = np.searchsorted(self.as_of_ms, span, side="left").astype(np.int64)
        self._requested = np.full(max(len(span) - 1, 0), -1, dtype=np.int64)
        self._requested[self.as_of_ms - first_month] = np.arange(len(self.as_of_ms))
        self._last_keys: tuple[np.ndarray, np.ndarray] | None = None
        self._last_rows: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None
        self._int_deltas: dict[str, np.ndarray] = {}
        self._float_totals: dict[str, np.ndarray] = {}
        # quantile column -> (value set, q); value set -> collected (keys, values, first, last)
        self._quantile_of: dict[str, tuple[str, float]] = {}
        self._value_parts: dict[str, list[tuple[np.ndarray, ...]]] = {}
        self._quantile_results: dict[str, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        return [*self._int_deltas, *self._float_totals, *self._quantile_of]

    def interval(self, keys: np.ndarray, start_m: np.ndarray, end_m: np.ndarray) -> Interval:
        """Each row's interval ``[start_m, end_m)`` placed on the month ends: computed once
        and shared by every statistic over the same interval."""
        keys = self._checked_keys(keys)
        start_m, end_m = np.asarray(start_m, dtype=np.int64), np.asarray(end_m, dtype=np.int64)
        first, stop = self._slot(start_m), self._slot(end_m)
        # An empty interval starts where it stops: its +w and -w cancel, no mask needed.
        np.minimum(first, stop, out=first)
        # cells are key-major (key * width + slot): streams arrive grouped by supplier,
        # so a batch's cells lie close together (half the cost of slot-major bincounts)
        cells = keys * self._width
        return Interval(keys, start_m, end_m, first, stop, cells + first, cells + stop)

    def _checked_keys(self, keys) -> np.ndarray:
        """The keys as int64, checked; remembered for the last keys array seen, since a
        batch's statistics all share it."""
        if self._last_keys is not None and keys is self._last_keys[0]:
            return self._last_keys[1]
        checked = np.asarray(keys, dtype=np.int64)
        if len(checked) > MAX_ROWS_PER_CALL:
            raise ValueError(f"WindowTotals takes at most {MAX_ROWS_PER_CALL:,} rows at a time; pass batches")
        if len(checked) and (checked.min() < 0 or checked.max() >= self.n_keys):
            raise ValueError(f"supplier keys must lie in [0, {self.n_keys}); got {checked.min()}..{checked.max()}")
        # holding ``keys`` itself keeps its identity from being reused by another array
        self._last_keys = (keys, checked)
        return checked

    def _slot(self, months: np.ndarray) -> np.ndarray:
        """The first month end at or after each month (``len(as_of_ms)``: none)."""
        return self._slot_of_month.take(months - self._first_month, mode="clip")

    def add(self, name: str, interval: Interval, weights: np.ndarray | None = None,
            where: np.ndarray | None = None) -> None:
        """Add each row's weight (1 without ``weights``) to ``name`` at every month end of
        its ``interval``, for the rows where ``where`` holds. Integer weights (and counts)
        are summed exactly; float weights in row order."""
        if weights is not None and np.asarray(weights).dtype.kind == "f":
            self._add_float(name, interval, np.asarray(weights, dtype=np.float64), where)
            return
        first, stop = interval.flat_first, interval.flat_stop
        if where is not None:
            where = np.asarray(where, dtype=bool)
            first, stop = first[where], stop[where]
            if weights is not None:
                weights = np.asarray(weights)[where]
        if weights is not None:
            weights = weights.astype(np.int64, copy=False)
            if len(weights) and np.abs(weights).max() >= _MAX_EXACT_WEIGHT:
                raise ValueError(f"{name}: a weight of {np.abs(weights).max():,} is beyond exact summation (2**53)")
        size = self.n_keys * self._width
        deltas = self._int_deltas.setdefault(name, np.zeros(size, dtype=np.int64))
        deltas += _exact_bincount(first, weights, size)
        deltas -= _exact_bincount(stop, weights, size)

    def _add_float(self, name: str, interval: Interval, weights: np.ndarray, where) -> None:
        live = interval.first < interval.stop
        if where is not None:
            live &= np.asarray(where, dtype=bool)
        keys, start, end, weights = interval.keys[live], interval.start_m[live], interval.end_m[live], weights[live]
        longest = int((end - start).max()) if len(start) else 0
        if longest > MAX_FLOAT_SPAN_MONTHS:
            raise ValueError(f"{name}: float totals need intervals of at most {MAX_FLOAT_SPAN_MONTHS} months")
        self.add_by_month(name, keys, start,
                          [np.where(start + months_in < end, weights, 0.0) for months_in in range(longest)])

    def add_by_month(self, name: str, keys: np.ndarray, start_m: np.ndarray,
                     weights_by_month: Sequence[np.ndarray]) -> None:
        """Add float ``weights_by_month[d]`` of each row at month ``start_m + d`` when that
        is a month end computed: a value that changes along the window (a running sum).

        Walked in calendar months, not month-end slots: a month end then receives its
        values in the same order whichever other month ends are computed, so a month
        computed alone and inside a backfill get the same bits."""
        keys = np.asarray(keys, dtype=np.int64)
        start_m = np.asarray(start_m, dtype=np.int64)
        k = len(self.as_of_ms)
        totals = self._float_totals.setdefault(name, np.zeros(self.n_keys * k, dtype=np.float64))
        for months_in, weights in enumerate(weights_by_month):
            slot = self._requested_slot(start_m + months_in)
            inside = slot >= 0
            totals += np.bincount(keys[inside] * k + slot[inside], np.asarray(weights, dtype=np.float64)[inside],
                                  minlength=totals.size)

    def _requested_slot(self, months: np.ndarray) -> np.ndarray:
        """The slot of each month that is a requested month end, else -1."""
        offset = months - self._first_month
        inside = (offset >= 0) & (offset < len(self._requested))
        slots = np.full(len(months), -1, dtype=np.int64)
        slots[inside] = self._requested[offset[inside]]
        return slots

    def add_values(self, value_set: str, interval: Interval, values: np.ndarray, quantiles: dict[str, float],
                   where: np.ndarray | None = None) -> None:
        """Keep each row's value for the ``quantiles`` (column name -> q) of the values
        whose interval holds each month end: DuckDB's ``quantile_cont``, to the last bit
        (``features.window_quantiles``). NaN values are skipped, as SQL skips NULL. Rows
        that arrive in (key, value) order across calls are used as they are; any other
        order is sorted once, when a quantile is first read."""
        for column, q in quantiles.items():
            self._quantile_of[column] = (value_set, q)
        values = np.asarray(values, dtype=np.float64)
        live = (interval.first < interval.stop) & ~np.isnan(values)
        if where is not None:
            live &= np.asarray(where, dtype=bool)
        self._value_parts.setdefault(value_set, []).append((
            interval.keys[live].astype(np.int32), values[live],
            interval.first[live].astype(np.int16), (interval.stop[live] - 1).astype(np.int16),
        ))

    def _quantiles_of(self, value_set: str) -> None:
        """Every quantile column of ``value_set`` as an n_keys x month-ends array (NaN:
        no value in the window)."""
        parts = self._value_parts.pop(value_set, [])
        if parts:
            keys, values, first, last = (np.concatenate(column) for column in zip(*parts))
        else:
            keys, values = np.empty(0, np.int32), np.empty(0)
            first, last = np.empty(0, np.int16), np.empty(0, np.int16)
        if not sorted_by_key_and_value(keys, values):
            # sorted by value, then stably by key: (key, value) order without a two-key sort
            order = np.argsort(values)
            order = order[np.argsort(keys[order], kind="stable")]
            keys, values, first, last = keys[order], values[order], first[order], last[order]
        columns = [c for c, (s, _) in self._quantile_of.items() if s == value_set]
        qs = [self._quantile_of[c][1] for c in columns]
        k = len(self.as_of_ms)
        found = windowed_quantiles(keys, values, first, last, range(k), qs)
        for slot, column in enumerate(columns):
            dense = np.full(self.n_keys * k, np.nan)
            dense[found["key"].astype(np.int64) * k + found["as_of_m"]] = found[f"q{slot}"]
            self._quantile_results[column] = dense

    def _located(self, as_of_m, keys) -> tuple[np.ndarray, np.ndarray]:
        """(keys, month-end slots) of the rows, checked; remembered for the last rows
        asked, since a gather reads every statistic at the same rows."""
        if self._last_rows is not None and self._last_rows[0] is as_of_m and self._last_rows[1] is keys:
            return self._last_rows[2]
        months = np.asarray(as_of_m, dtype=np.int64)
        slot = self._requested_slot(months)
        if len(slot) and slot.min() < 0:
            raise ValueError("values_at: a requested as_of_m is not among the month ends computed")
        checked = np.asarray(keys, dtype=np.int64)
        if len(checked) and (checked.min() < 0 or checked.max() >= self.n_keys):
            raise ValueError(f"values_at: supplier keys must lie in [0, {self.n_keys})")
        self._last_rows = (as_of_m, keys, (checked, slot))
        return checked, slot

    def values_at(self, name: str, as_of_m: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The totals of ``name`` at the rows (as_of_m, key); 0 where nothing counted.
        Every ``as_of_m`` must be one of the month ends given at construction."""
        keys, slot = self._located(as_of_m, keys)
        k = len(self.as_of_ms)
        if name in self._quantile_of:
            if name not in self._quantile_results:
                self._quantiles_of(self._quantile_of[name][0])
            return self._quantile_results[name].take(keys * k + slot)
        if name in self._float_totals:
            return self._float_totals[name].take(keys * k + slot)
        if name in self._int_deltas:
            running = np.cumsum(self._int_deltas[name].reshape(self.n_keys, self._width), axis=1)
            return running.ravel().take(keys * self._width + slot)
        raise KeyError(f"no totals named {name!r}; have {self.names}")


def _exact_bincount(index: np.ndarray, weights: np.ndarray | None, size: int) -> np.ndarray:
    """``np.bincount`` with exact int64 sums of integer weights (bincount's own weighted
    sums are float64, exact only below 2**53)."""
    if weights is None:
        return np.bincount(index, minlength=size)
    if np.abs(weights).sum(dtype=np.float64) < 2**52:
        # every partial sum is an integer below 2**53: float64 holds it exactly
        return np.bincount(index, weights.astype(np.float64), minlength=size).astype(np.int64)
    low = weights & ((1 << _LOW_BITS) - 1)
    high = weights >> _LOW_BITS  # arithmetic shift: negative weights keep their sign here
    low_sums = np.bincount(index, low.astype(np.float64), minlength=size).astype(np.int64)
    high_sums = np.bincount(index, high.astype(np.float64), minlength=size).astype(np.int64)
    return (high_sums << _LOW_BITS) + low_sums
