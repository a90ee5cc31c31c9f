"""The in-process response-time quantiles equal the SQL definition to the last bit."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.window_quantiles import windowed_quantiles
from features.window_totals import WindowTotals


def sql_quantiles(rows: pa.Table, as_of_ms: list[int], quantiles: list[float]) -> pa.Table:
    con = duckdb.connect()
    con.register("facts", rows)
    con.register("calendar", pa.table({"as_of_m": pa.array(as_of_ms, pa.int64())}))
    picks = ", ".join(f"q[{slot + 1}] AS q{slot}" for slot in range(len(quantiles)))
    return con.execute(f"""
        SELECT as_of_m, key, {picks} FROM (
            SELECT c.as_of_m, f.key, quantile_cont(f.value, {list(quantiles)}) AS q
            FROM facts AS f JOIN calendar AS c ON f.first_m <= c.as_of_m AND c.as_of_m <= f.last_m
            GROUP BY ALL)
        ORDER BY as_of_m, key
    """).to_arrow_table()


def random_rows(seed: int, n_rows: int, n_keys: int, tie_decimals: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    placed = rng.integers(100, 112, n_rows)
    rows = pa.table({
        "key": rng.integers(1, n_keys + 1, n_rows).astype(np.int32),
        # Rounding makes ties common, and ties are where an ordering slip would show.
        "value": np.round(rng.exponential(12.0, n_rows), tie_decimals),
        "first_m": placed + rng.integers(0, 3, n_rows),
        "last_m": placed + 5,
    })
    return rows.sort_by([("key", "ascending"), ("value", "ascending")])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(0, 400),
    n_keys=st.integers(1, 12),
    tie_decimals=st.integers(0, 3),
    as_of_ms=st.lists(st.integers(98, 120), min_size=1, max_size=8, unique=True),
    quantiles=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0]), min_size=1, max_size=3),
)
def test_kernel_equals_duckdb_quantile_cont_bit_for_bit(seed, n_rows, n_keys, tie_decimals, as_of_ms, quantiles):
    rows = random_rows(seed, n_rows, n_keys, tie_decimals)
    want = sql_quantiles(rows, as_of_ms, quantiles)
    got = windowed_quantiles(*(rows.column(c).to_numpy() for c in ("key", "value", "first_m", "last_m")),
                             as_of_ms, quantiles)
    assert got["as_of_m"].tolist() == want.column("as_of_m").to_pylist()
    assert got["key"].tolist() == want.column("key").to_pylist()
    for slot in range(len(quantiles)):
        assert got[f"q{slot}"].tolist() == want.column(f"q{slot}").to_pylist(), f"quantile {quantiles[slot]}"


def test_kernel_refuses_unsorted_values():
    with pytest.raises(ValueError, match="sorted by \\(key, value\\)"):
        windowed_quantiles(np.array([1, 1]), np.array([2.0, 1.0]), np.array([0, 0]), np.array([5, 5]), [0], [0.5])
    with pytest.raises(ValueError, match="sorted by \\(key, value\\)"):
        windowed_quantiles(np.array([2, 1]), np.array([1.0, 2.0]), np.array([0, 0]), np.array([5, 5]), [0], [0.5])


@pytest.mark.parametrize("ordered", [False, True])
def test_window_totals_quantiles_in_batches_equal_duckdb(ordered):
    # Unordered, WindowTotals collects values batch by batch, in whatever order they
    # stream, and sorts them itself; ordered, it reduces each key once a later key
    # arrives (batches of 37 rows split keys across calls). Intervals are [first_m, last_m + 1).
    rows = random_rows(seed=5, n_rows=300, n_keys=6, tie_decimals=1)
    sent = rows if ordered else rows.take(np.random.default_rng(0).permutation(rows.num_rows))
    as_of_ms = [103, 106, 109]
    totals = WindowTotals(as_of_ms, 7)
    for batch in sent.to_batches(max_chunksize=37):
        key, value, first, last = (batch.column(c).to_numpy() for c in ("key", "value", "first_m", "last_m"))
        totals.add_values("v", totals.interval(key, first, last + 1), value, {"median": 0.5, "p90": 0.9},
                          ordered=ordered)
    want = sql_quantiles(rows, as_of_ms, [0.5, 0.9])
    m, k = want.column("as_of_m").to_numpy(), want.column("key").to_numpy()
    assert totals.values_at("median", m, k).tolist() == want.column("q0").to_pylist()
    assert totals.values_at("p90", m, k).tolist() == want.column("q1").to_pylist()
    # a month end with no values in its window is NaN (NULL once published)
    assert np.isnan(totals.values_at("median", np.array([103]), np.array([0]))).all()


def test_no_month_ends_or_no_rows_give_no_windows():
    keys, values, months = np.array([1, 1]), np.array([1.0, 2.0]), np.array([5, 5])
    for got in (windowed_quantiles(keys, values, months, months + 1, [], [0.5]),
                windowed_quantiles(keys[:0], values[:0], months[:0], months[:0], [5], [0.5])):
        assert [len(column) for column in got.values()] == [0, 0, 0]


def test_misshapen_or_non_integer_inputs_are_refused_before_the_compiled_loops():
    with pytest.raises(ValueError, match="integer month indices"):
        windowed_quantiles(np.array([1]), np.array([1.0]), np.array([5.0]), np.array([6]), [5], [0.5])
    totals = WindowTotals([10], 3)
    window = totals.interval(np.array([1, 2]), np.array([10, 10]), np.array([11, 11]))
    with pytest.raises(ValueError, match="one value per row"):
        totals.add_values("v", window, np.array([1.0]), {"median": 0.5})


def test_ordered_values_out_of_order_or_mixed_flags_are_refused():
    totals = WindowTotals([10], 3)
    window = totals.interval(np.array([1, 2]), np.array([10, 10]), np.array([11, 11]))
    totals.add_values("v", window, np.array([1.0, 2.0]), {"median": 0.5}, ordered=True)
    earlier_key = totals.interval(np.array([1]), np.array([10]), np.array([11]))
    with pytest.raises(ValueError, match=r"\(key, value\) order across calls"):
        totals.add_values("v", earlier_key, np.array([5.0]), {"median": 0.5}, ordered=True)
    with pytest.raises(ValueError, match="same quantiles and ordered flag"):
        totals.add_values("v", earlier_key, np.array([5.0]), {"median": 0.5})
