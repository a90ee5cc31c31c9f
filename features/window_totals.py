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
"+value where an interval starts, -value where it ends": one pass over the events per
statistic, no fan-out, no join and no hash aggregate. Integer sums are exact int64
(money arrives as integer micro-dollars), so the result never depends on the order in
which rows arrive. Float values are added at each month end of their interval
instead (at most the window's width of them), because a running sum that subtracts
expired floats would leave rounding residue where the exact total is 0; they are summed
in row order, so the same ordered input gives the same bits.

The per-row passes are small numba kernels (below); the class takes and returns numpy
arrays, so the same code serves notebooks, tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from features.window_quantiles import group_window_quantiles, sorted_by_key_and_value

# The month index standing for "not known": later than any month end, so an interval
# starting then is empty and one ending then never ends.
NEVER = 2**30

# Integer weights are summed exactly in int64. A weight must stay below 2**53 (9e15
# micro-dollars: $9 billion on one row), so that no plausible total can overflow.
_MAX_EXACT_WEIGHT = 2**53
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


@dataclass
class _ValueStream:
    """A value set of ``WindowTotals.add_values``: rows waiting (all of them, or with
    ``ordered`` only the last key's) and the quantiles of the keys already complete."""

    quantiles: dict[str, float]
    ordered: bool
    parts: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    found: np.ndarray | None = None  # n_keys x month ends x quantiles


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
        self._cell_type = np.int32 if self.n_keys * self._width < 2**31 else np.int64
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
        # quantile column -> (value set, q); value set -> its rows and quantiles so far
        self._quantile_of: dict[str, tuple[str, float]] = {}
        self._value_streams: dict[str, _ValueStream] = {}
        self._quantile_results: dict[str, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        return [*self._int_deltas, *self._float_totals, *self._quantile_of]

    def interval(self, keys: np.ndarray, start_m: np.ndarray, end_m: np.ndarray) -> Interval:
        """Each row's interval ``[start_m, end_m)`` placed on the month ends: computed once
        and shared by every statistic over the same interval."""
        keys = self._checked_keys(keys)
        start_m, end_m = np.asarray(start_m), np.asarray(end_m)
        n = len(keys)
        # the compiled loops below do not check bounds or types: refuse here what they would misread
        if start_m.shape != (n,) or end_m.shape != (n,) or start_m.dtype.kind not in "iu" or end_m.dtype.kind not in "iu":
            raise ValueError(f"interval: start_m and end_m must be integer month indices, one per key ({n})")
        # int32 where the cells fit: half the memory written and read per statistic
        first, stop = np.empty(n, np.int32), np.empty(n, np.int32)
        flat_first, flat_stop = np.empty(n, self._cell_type), np.empty(n, self._cell_type)
        _place(keys, start_m, end_m, self._slot_of_month, self._first_month, self._width,
               first, stop, flat_first, flat_stop)
        return Interval(keys, start_m, end_m, first, stop, flat_first, flat_stop)

    def _checked_keys(self, keys) -> np.ndarray:
        """The keys as int64, checked; remembered for the last keys array seen, since a
        batch's statistics all share it."""
        if self._last_keys is not None and keys is self._last_keys[0]:
            return self._last_keys[1]
        checked = np.asarray(keys, dtype=np.int64)
        if len(checked) and (checked.min() < 0 or checked.max() >= self.n_keys):
            raise ValueError(f"supplier keys must lie in [0, {self.n_keys}); got {checked.min()}..{checked.max()}")
        # holding ``keys`` itself keeps its identity from being reused by another array
        self._last_keys = (keys, checked)
        return checked

    def add(self, name: str, interval: Interval, weights: np.ndarray | None = None,
            where: np.ndarray | None = None) -> None:
        """Add each row's weight (1 without ``weights``) to ``name`` at every month end of
        its ``interval``, for the rows where ``where`` holds. Integer weights (and counts)
        are summed exactly; float weights in row order."""
        if weights is not None and np.asarray(weights).dtype.kind == "f":
            self._add_float(name, interval, np.asarray(weights, dtype=np.float64), where)
            return
        n = len(interval.keys)
        if (weights is not None and np.shape(weights) != (n,)) or (where is not None and np.shape(where) != (n,)):
            raise ValueError(f"{name}: weights and where must have one value per row of the interval ({n})")
        if weights is not None:
            weights = np.asarray(weights)
            if n and (weights.max() >= _MAX_EXACT_WEIGHT or weights.min() <= -_MAX_EXACT_WEIGHT):
                raise ValueError(f"{name}: a weight of {np.abs(weights).max():,} is beyond exact summation (2**53)")
        deltas = self._int_deltas.get(name)
        if deltas is None:
            deltas = self._int_deltas[name] = np.zeros(self.n_keys * self._width, dtype=np.int64)
        _scatter(interval.flat_first, interval.flat_stop,
                 _EMPTY_INT if weights is None else weights.astype(np.int64, copy=False), weights is not None,
                 _EMPTY_BOOL if where is None else np.asarray(where, dtype=bool), where is not None, deltas)

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
                     weights_by_month: Sequence[np.ndarray] | np.ndarray) -> None:
        """Add float ``weights_by_month[d]`` of each row at month ``start_m + d`` when that
        is a month end computed: a value that changes along the window (a running sum).

        Walked in calendar months, not month-end slots: a month end then receives its
        values in the same order whichever other month ends are computed, so a month
        computed alone and inside a backfill get the same bits."""
        keys = np.asarray(keys, dtype=np.int64)
        start_m = np.asarray(start_m, dtype=np.int64)
        # a (months, rows) float array is used as it is; a list of rows' arrays is stacked
        weights = np.asarray(weights_by_month, dtype=np.float64).reshape(len(weights_by_month), len(keys))
        _add_by_month(keys, start_m, weights, self._requested, self._first_month, len(self.as_of_ms),
                      self._float_totals_of(name))

    def _float_totals_of(self, name: str) -> np.ndarray:
        if name not in self._float_totals:
            self._float_totals[name] = np.zeros(self.n_keys * len(self.as_of_ms), dtype=np.float64)
        return self._float_totals[name]

    def _requested_slot(self, months: np.ndarray) -> np.ndarray:
        """The slot of each month that is a requested month end, else -1."""
        offset = months - self._first_month
        inside = (offset >= 0) & (offset < len(self._requested))
        slots = np.full(len(months), -1, dtype=np.int64)
        slots[inside] = self._requested[offset[inside]]
        return slots

    def add_values(self, value_set: str, interval: Interval, values: np.ndarray, quantiles: dict[str, float],
                   where: np.ndarray | None = None, ordered: bool = False) -> None:
        """Keep each row's value for the ``quantiles`` (column name -> q) of the values
        whose interval holds each month end: DuckDB's ``quantile_cont``, to the last bit
        (``features.window_quantiles``). NaN values are skipped, as SQL skips NULL.

        ``ordered=True``: the caller sends the rows in (key, value) order across calls
        (checked). Each key's quantiles are then computed as soon as a later key arrives,
        and only the last key's rows are held. Otherwise every row is kept and sorted
        once, when a quantile is first read."""
        stream = self._value_streams.get(value_set)
        if stream is None:
            stream = self._value_streams[value_set] = _ValueStream(dict(quantiles), ordered)
            for column, q in quantiles.items():
                self._quantile_of[column] = (value_set, q)
        elif stream.quantiles != dict(quantiles) or stream.ordered != ordered:
            raise ValueError(f"{value_set}: every add_values call must pass the same quantiles and ordered flag")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != interval.keys.shape or (where is not None and np.shape(where) != values.shape):
            raise ValueError(f"{value_set}: values and where must have one value per row of the interval")
        live = (interval.first < interval.stop) & ~np.isnan(values)
        if where is not None:
            live &= np.asarray(where, dtype=bool)
        rows = (interval.keys[live], values[live], interval.first[live], interval.stop[live] - 1)
        if not ordered:
            stream.parts.append(rows)
            return
        if stream.parts:
            rows = tuple(np.concatenate(pair) for pair in zip(stream.parts[0], rows))
        keys, values = rows[0], rows[1]
        if not sorted_by_key_and_value(keys, values):
            raise ValueError(f"{value_set}: rows added with ordered=True must come in (key, value) order across "
                             "calls; pass ordered=False to have them sorted")
        # the last key may go on in the next call: hold its rows back
        last_key_starts = int(np.searchsorted(keys, keys[-1], side="left")) if len(keys) else 0
        self._reduce(stream, tuple(column[:last_key_starts] for column in rows))
        stream.parts = [tuple(column[last_key_starts:] for column in rows)]

    def _reduce(self, stream: "_ValueStream", rows: tuple[np.ndarray, ...]) -> None:
        """Quantiles of whole keys' rows, sorted by (key, value), into ``stream.found``."""
        if not len(rows[0]):
            return
        if stream.found is None:
            stream.found = np.full((self.n_keys, len(self.as_of_ms), len(stream.quantiles)), np.nan)
        _, group_keys, found, present = group_window_quantiles(
            *rows, range(len(self.as_of_ms)), list(stream.quantiles.values()))
        slot, group = np.nonzero(present)
        stream.found[group_keys[group], slot] = found[slot, group]

    def _quantiles_of(self, value_set: str) -> None:
        """Every quantile column of ``value_set`` as an n_keys x month-ends array (NaN:
        no value in the window)."""
        stream = self._value_streams[value_set]
        if stream.parts:
            keys, values, first, last = (np.concatenate(column) for column in zip(*stream.parts))
            stream.parts = []
            if not stream.ordered:
                # sorted by value, then stably by key: (key, value) order without a two-key sort
                order = np.argsort(values)
                order = order[np.argsort(keys[order], kind="stable")]
                keys, values, first, last = keys[order], values[order], first[order], last[order]
            self._reduce(stream, (keys, values, first, last))
        for slot, column in enumerate(stream.quantiles):
            self._quantile_results[column] = (
                np.full(self.n_keys * len(self.as_of_ms), np.nan) if stream.found is None
                else np.ascontiguousarray(stream.found[:, :, slot]).ravel())

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


# The kernels below are compiled (numba, cached beside this file): each is one pass over
# a batch's rows doing what several numpy passes (masking, bincounts, adds) did, in
# int64 for integer weights, so the sums are exact without splitting them into limbs.
# ``nogil``: a stream's producer thread keeps running while they do.
_EMPTY_INT = np.empty(0, np.int64)
_EMPTY_BOOL = np.empty(0, np.bool_)


@njit(cache=True, nogil=True)
def _place(keys, start_m, end_m, slot_of_month, first_month, width, first, stop, flat_first, flat_stop):
    """Each row's first and stop slot (the first month end at or after its start and end
    month; an empty interval starts where it stops, so its +w and -w cancel) and their
    key-major cells ``key * width + slot``: streams arrive grouped by supplier, so a
    batch's cells lie close together."""
    last = slot_of_month.shape[0] - 1
    for i in range(keys.shape[0]):
        a = min(max(start_m[i] - first_month, 0), last)
        b = min(max(end_m[i] - first_month, 0), last)
        stop_slot = slot_of_month[b]
        first_slot = min(slot_of_month[a], stop_slot)
        first[i] = first_slot
        stop[i] = stop_slot
        flat_first[i] = keys[i] * width + first_slot
        flat_stop[i] = keys[i] * width + stop_slot


@njit(cache=True, nogil=True)
def _scatter(flat_first, flat_stop, weights, has_weights, where, has_where, deltas):
    """+weight at each row's first cell, -weight at its stop cell."""
    for i in range(flat_first.shape[0]):
        if has_where and not where[i]:
            continue
        w = weights[i] if has_weights else 1
        deltas[flat_first[i]] += w
        deltas[flat_stop[i]] -= w


@njit(cache=True, nogil=True)
def _add_by_month(keys, start_m, weights, requested, first_month, k, totals):
    """``weights[d]`` of each row added at month ``start_m + d`` when that is a month end
    computed (``requested``: its slot, else -1); months in the outer loop, rows in order."""
    for d in range(weights.shape[0]):
        for i in range(keys.shape[0]):
            offset = start_m[i] + d - first_month
            if 0 <= offset < requested.shape[0] and requested[offset] >= 0:
                totals[keys[i] * k + requested[offset]] += weights[d, i]
