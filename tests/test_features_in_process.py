"""The in-process path (``features.window_totals``, ``features.event_intervals``) gives
the features the SQL definition gives, and its totals are exact."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import event_intervals as ei
from features import window_aggregates as wa
from feature_reference import as_comparable_frame
from features.sql_engine import DuckDBFeatureEngine
from features.supplier_features import EVENT_FAMILIES, IN_PROCESS_TABLE, output_feature_columns, run_feature_query_on
from features.window_totals import NEVER, WindowTotals
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates

# Summed as floats in a fixed order (not as exact decimals as in SQL): equal within rounding.
FLOAT_SUMMED = {"buyer_hhi_6m"}


class SqlOnlyDuckDBEngine(DuckDBFeatureEngine):
    """DuckDB taking the path a distributed engine takes: every family in SQL."""

    in_process = False


def naive_totals(keys, starts, ends, weights, as_of_ms):
    out = {}
    for key, start, end, weight in zip(keys, starts, ends, weights):
        for m in as_of_ms:
            if start <= m < end:
                out[(m, key)] = out.get((m, key), 0) + weight
    return out


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(0, 300),
    as_of_ms=st.lists(st.integers(100, 130), min_size=1, max_size=10, unique=True),
    big=st.booleans(),
)
def test_integer_totals_equal_a_loop_over_every_month_end_exactly(seed, n_rows, as_of_ms, big):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 7, n_rows)
    starts = np.where(rng.random(n_rows) < 0.1, NEVER, rng.integers(95, 135, n_rows))
    ends = np.where(rng.random(n_rows) < 0.1, NEVER, starts + rng.integers(-2, 14, n_rows))
    # near 2**52: float64 sums of these would lose units; the totals must not
    high = 2**52 if big else 1000
    weights = rng.integers(-high, high, n_rows)
    where = rng.random(n_rows) < 0.7
    totals = WindowTotals(as_of_ms, 7)
    interval = totals.interval(keys, starts, ends)
    totals.add("sum", interval, weights, where=where)
    totals.add("count", interval)
    cells = [(m, k) for m in sorted(as_of_ms) for k in range(7)]
    m_col, k_col = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
    want_sum = naive_totals(keys[where], starts[where], ends[where], [int(w) for w in weights[where]], as_of_ms)
    want_count = naive_totals(keys, starts, ends, [1] * n_rows, as_of_ms)
    assert [int(v) for v in totals.values_at("sum", m_col, k_col)] == [want_sum.get(c, 0) for c in cells]
    assert [int(v) for v in totals.values_at("count", m_col, k_col)] == [want_count.get(c, 0) for c in cells]


def test_float_totals_are_added_per_month_end_and_leave_no_residue():
    # +1e16 then -1e16 in a running sum would leave the 1.0 rounded away; per month end it stays.
    totals = WindowTotals([10, 11, 12], 1)
    keys = np.array([0, 0])
    totals.add("x", totals.interval(keys, np.array([10, 10]), np.array([11, 13])), np.array([1e16, 1.0]))
    assert totals.values_at("x", np.array([10, 11, 12]), np.zeros(3, int)).tolist() == [1e16 + 1.0, 1.0, 1.0]


def test_misuse_is_refused_with_a_plain_message():
    totals = WindowTotals([10, 11], 3)
    with pytest.raises(ValueError, match="supplier keys"):
        totals.interval(np.array([3]), np.array([10]), np.array([11]))
    with pytest.raises(ValueError, match="one per key"):
        totals.interval(np.array([0, 1]), np.array([10]), np.array([11, 11]))
    with pytest.raises(ValueError, match="integer month indices"):
        totals.interval(np.array([0]), np.array([10.0]), np.array([11]))
    window = totals.interval(np.array([0, 1]), np.array([10, 10]), np.array([11, 11]))
    with pytest.raises(ValueError, match="one value per row"):
        totals.add("x", window, np.array([5]))
    with pytest.raises(ValueError, match="one value per row"):
        totals.add("x", window, where=np.array([True]))
    with pytest.raises(ValueError, match="beyond exact summation"):
        totals.add("x", totals.interval(np.array([0]), np.array([10]), np.array([11])), np.array([2**53]))
    totals.add("y", totals.interval(np.array([0]), np.array([10]), np.array([11])))
    with pytest.raises(ValueError, match="not among the month ends"):
        totals.values_at("y", np.array([12]), np.array([0]))
    with pytest.raises(ValueError, match="not among the month ends"):
        totals.values_at("y", np.array([9]), np.array([0]))
    with pytest.raises(ValueError, match="supplier keys"):
        totals.values_at("y", np.array([10]), np.array([3]))
    assert totals.values_at("y", np.array([10, 11]), np.array([0, 0])).tolist() == [1, 0]


def assert_same_features(in_process: pa.Table, in_sql: pa.Table) -> None:
    got, want = as_comparable_frame(in_process), as_comparable_frame(in_sql)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for column in want.columns:
        if column in FLOAT_SUMMED:
            for a, b in zip(got[column], want[column]):
                assert (a is None) == (b is None) and (a is None or math.isclose(a, b, rel_tol=1e-12)), column
        else:
            assert got[column].equals(want[column]), column


@pytest.mark.parametrize(("seed", "with_inquiries", "with_reviews", "with_disputes"),
                         [(3, True, True, True), (11, True, False, True), (29, False, True, False), (41, True, True, True)])
def test_in_process_features_equal_the_sql_definition(seed, with_inquiries, with_reviews, with_disputes, monkeypatch):
    # Tiny batches: buyer pairs cross batch seams, quantile values arrive in many parts.
    monkeypatch.setattr(ei, "STREAM_BATCH_ROWS", 7)
    zone = random_landing_zone(seed=seed, n_suppliers=8, n_orders=160, with_inquiries=with_inquiries,
                               with_reviews=with_reviews)
    if not with_disputes:
        zone["disputes"] = None
    con = connection_with(zone)

    def features(engine_type):
        engine = engine_type(con.cursor())
        return run_feature_query_on(engine, zone_as_of_dates(), "validated", EVENT_FAMILIES, output_feature_columns())

    in_process = features(DuckDBFeatureEngine)
    assert in_process.column("orders_6m").to_pylist().count(0) < in_process.num_rows  # there is something to count
    assert_same_features(in_process, features(SqlOnlyDuckDBEngine))


def test_duckdb_takes_the_in_process_path(monkeypatch):
    zone = random_landing_zone(seed=5, n_suppliers=4, n_orders=40)
    con = connection_with(zone)
    cursor = con.cursor()
    run_feature_query_on(DuckDBFeatureEngine(cursor), [date(2024, 6, 30)], "validated", EVENT_FAMILIES,
                         output_feature_columns())
    sql_tables = list(wa.statistic_groups("order_cohorts"))
    registered = cursor.execute("SELECT count(*) FROM duckdb_tables() WHERE list_contains(?, table_name)", [sql_tables])
    assert sql_tables and registered.fetchone()[0] == 0  # the SQL family did not run
    assert cursor.execute(f"SELECT count(*) FROM {IN_PROCESS_TABLE}").fetchone()[0] > 0


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 1000])
def test_buyer_pairs_read_in_any_batch_size_give_the_same_rows(batch_rows, monkeypatch):
    zone = random_landing_zone(seed=17, n_suppliers=5, n_orders=150)
    con = connection_with(zone)
    engine = DuckDBFeatureEngine(con.cursor())
    engine.register_arrow("as_of_calendar", pa.table({"as_of_date": [date(2024, 6, 30)], "as_of_m": [2024 * 12 + 5]}))
    wa.create_supplier_calendar(engine, "validated")

    def rows(size):
        monkeypatch.setattr(ei, "STREAM_BATCH_ROWS", size)
        parts = [ei.buyer_months(orders) for orders in ei.order_rows_by_buyer(engine, "validated")]
        return {name: np.concatenate([p[name] for p in parts], axis=-1) for name in parts[0]}

    want, got = rows(10**6), rows(batch_rows)
    assert want.keys() == got.keys()
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    assert (want["values_later_usd"][0] != 0).any() and (want["previous_m"] != NEVER).any()


@pytest.mark.parametrize("month_ends", [[103], [101, 103], [100, 101, 102, 103, 104, 105]])
def test_float_totals_of_a_month_end_do_not_depend_on_the_other_month_ends_computed(month_ends):
    # Values whose float sum depends on the order of addition: a month computed alone
    # must give the bits it gets inside a backfill.
    rng = np.random.default_rng(1)
    n = 2000
    keys = rng.integers(0, 3, n)
    starts = rng.integers(96, 104, n)
    weights = rng.random(n) * 10.0 ** rng.integers(-3, 9, n)

    def at_103(requested):
        totals = WindowTotals(requested, 3)
        totals.add("x", totals.interval(keys, starts, starts + 6), weights)
        return totals.values_at("x", np.full(3, 103), np.arange(3)).tolist()

    assert at_103(month_ends) == at_103(list(range(96, 110)))


def test_read_ahead_keeps_order_raises_the_producers_error_and_stops_when_abandoned():
    from features.sql_engine import read_ahead

    batches = [pa.record_batch({"x": [i]}) for i in range(10)]
    assert [b["x"][0].as_py() for b in read_ahead(iter(batches), depth=2)] == list(range(10))

    def failing():
        yield batches[0]
        raise RuntimeError("disk gone")

    got = read_ahead(failing())
    assert next(got)["x"][0].as_py() == 0
    with pytest.raises(RuntimeError, match="disk gone"):
        next(got)

    produced = []

    def endless():
        for i in range(10**6):
            produced.append(i)
            yield pa.record_batch({"x": [i]})

    stream = read_ahead(endless(), depth=2)
    next(stream)
    stream.close()  # the producer stops instead of running on
    assert len(produced) < 10


@pytest.mark.parametrize("shape", ["runs", "scattered", "sorted", "empty"])
def test_rows_in_order_sorts_by_position_whether_rows_come_in_runs_or_scattered(shape):
    from features.supplier_features import rows_in_order

    n = {"empty": 0}.get(shape, 5000)
    positions = np.arange(n)
    if shape == "runs":  # a parallel scan's morsels: a few ascending runs, out of order
        positions = np.concatenate([positions[3000:], positions[1000:3000], positions[:1000]])
    elif shape == "scattered":
        positions = np.random.default_rng(0).permutation(n)
    table = pa.table({"pos": positions, "value": positions * 10, "name": [f"s{p}" for p in positions]})
    ordered = rows_in_order(table, "pos")
    assert ordered["pos"].to_pylist() == list(range(n))
    assert ordered["value"].to_pylist() == [p * 10 for p in range(n)]
    assert ordered["name"].to_pylist() == [f"s{p}" for p in range(n)]


@pytest.mark.parametrize(
    "usd",
    [
        0.0,  # nothing
        5e-07,  # half a micro-dollar: rounds up, as the DECIMAL(18, 6) cast does
        1.5e-06,  # a tie one micro-dollar up
        3e-07,  # under half: rounds to 0
        0.1,  # not exact in binary
        123.4500005,  # rounding carries into the cents
        999999.9999995,  # rounding carries into the whole dollars
        1e6,  # where DECIMAL(18, 6) * 1000000 used to overflow
        1234567.8912345,  # past it, with decimals
        999999999.999999,  # just under the contract maximum
        1e9,  # the contract maximum (1e15 micro-dollars)
        None,  # NULL stays NULL (the stream fills it with 0)
    ],
)
def test_micro_dollars_are_the_exact_decimal_scaled_to_an_integer(usd):
    """``micro_usd_sql`` scales apart whole dollars and decimals in 64 bits: the same integer
    as the exact 128-bit product of the DECIMAL(18, 6) cast, up to the contract maximum."""
    import duckdb

    exact = "CAST(CAST(CAST(x AS DECIMAL(18, 6)) AS DECIMAL(38, 6)) * 1000000 AS BIGINT)"
    got, expected = duckdb.execute(f"SELECT {wa.micro_usd_sql('x')}, {exact} FROM (SELECT ?::DOUBLE AS x)", [usd]).fetchone()
    assert got == expected
    assert (got is None) == (usd is None)


def test_micro_dollars_match_the_exact_decimal_on_random_amounts():
    """The same on two million random amounts from a micro-dollar to a billion dollars."""
    import duckdb

    exact = "CAST(CAST(CAST(x AS DECIMAL(18, 6)) AS DECIMAL(38, 6)) * 1000000 AS BIGINT)"
    (mismatches,) = duckdb.execute(
        f"SELECT count(*) FROM (SELECT random() * pow(10, (random() * 10)::INTEGER - 1) AS x FROM range(2000000)) "
        f"WHERE {wa.micro_usd_sql('x')} IS DISTINCT FROM {exact}").fetchone()
    assert mismatches == 0
