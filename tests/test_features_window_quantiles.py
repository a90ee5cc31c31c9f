"""The in-process response-time quantiles equal the SQL definition to the last bit."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import window_aggregates as wa
from features.reference import as_comparable_frame
from features.sql_engine import DuckDBFeatureEngine
from features.supplier_features import EVENT_FAMILIES, output_feature_columns, run_feature_query_on
from features.window_quantiles import windowed_quantiles, windowed_quantiles_table
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates


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
    got = windowed_quantiles_table(rows, as_of_ms, quantiles, "key", "value", [f"q{i}" for i in range(len(quantiles))])
    assert got.column("as_of_m").to_pylist() == want.column("as_of_m").to_pylist()
    assert got.column("key").to_pylist() == want.column("key").to_pylist()
    for slot in range(len(quantiles)):
        assert got.column(f"q{slot}").to_pylist() == want.column(f"q{slot}").to_pylist(), f"quantile {quantiles[slot]}"


def test_kernel_refuses_unsorted_values():
    with pytest.raises(ValueError, match="sorted by \\(key, value\\)"):
        windowed_quantiles(np.array([1, 1]), np.array([2.0, 1.0]), np.array([0, 0]), np.array([5, 5]), [0], [0.5])
    with pytest.raises(ValueError, match="sorted by \\(key, value\\)"):
        windowed_quantiles(np.array([2, 1]), np.array([1.0, 2.0]), np.array([0, 0]), np.array([5, 5]), [0], [0.5])


def test_supplier_key_ranges_cover_every_supplier_once_within_the_budget():
    per_supplier = pa.table({"supplier_key": [1, 2, 3, 5, 8, 9], "answered": [3, 4, 10, 1, 1, 2]})
    ranges = wa.supplier_key_ranges(per_supplier, max_rows=7)
    # 3+4 fit; 10 is over the budget alone and gets its own range; 1+1+2 fit.
    assert ranges == [(1, 2), (3, 3), (5, 9)]
    assert wa.supplier_key_ranges(per_supplier.slice(0, 0), max_rows=7) == []


def test_table_entry_point_sorts_rows_that_arrive_unsorted():
    rows = random_rows(seed=5, n_rows=300, n_keys=6, tie_decimals=1)
    shuffled = rows.take(np.random.default_rng(0).permutation(rows.num_rows))
    names = ["median", "p90"]
    want = windowed_quantiles_table(rows, [103, 106, 109], [0.5, 0.9], "key", "value", names)
    got = windowed_quantiles_table(shuffled, [103, 106, 109], [0.5, 0.9], "key", "value", names)
    assert got.equals(want)
