"""One declaration per windowed statistic (``features.declarations``): the in-process
interval and the SQL compiled from it agree with a count by hand for any window length,
misdeclarations are refused plainly, and the three-month trend features mean what they say."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from features import compute_supplier_features, month_ends
from features import event_intervals as ei
from features import window_aggregates as wa
from features.declarations import CATALOGUE, RATIOS, STATISTICS, Ratio, WindowedStatistic
from features.specs import FEATURES_BY_NAME
from features.sql_engine import DuckDBFeatureEngine
from features.window_totals import WindowTotals
from features.windows import as_of_calendar_table, month_index_of
from test_features_landing_zone import connection_with, random_landing_zone, zone_as_of_dates
from test_features_point_in_time import by_month, disputes_frame, one_supplier, orders_frame

FEATURES_DIR = Path(__file__).resolve().parent.parent / "features"


def _orders(name: str, window: int | None, **kwargs) -> WindowedStatistic:
    return WindowedStatistic(name, "adhoc", "orders", kwargs.pop("enters", "created_m"), window, "For the test.",
                             **kwargs)


# Declarations that are not in the catalogue: window lengths and shapes it does not use.
ADHOC = [
    # a plain count over windows of 1, 2, 4 and 9 months
    *(_orders(f"orders_{w}m", w) for w in (1, 2, 4, 9)),
    # money over 4 months, filtered
    _orders("assured_value_4m_usd", 4, weight="amount_usd", where="assured"),
    # counted once delivered, until cancelled, over 5 months
    _orders("completed_5m", 5, known_from=("delivered_m",), until=("cancelled_m",)),
    # a window opening two months after the order (the quarter before last)
    _orders("orders_lagged_2_3m", 3, lag_months=2),
    # a position at T: shipped until delivered or cancelled
    _orders("in_transit", None, enters="shipped_m", known_from=("created_m",), until=("delivered_m", "cancelled_m")),
]


def by_hand(facts: dict[str, np.ndarray], statistic: WindowedStatistic, as_of_ms: list[int]) -> dict:
    """The declaration's definition read literally, one row and one month end at a time."""
    totals: dict[tuple[int, int], float] = {}
    for i in range(len(facts["supplier_key"])):
        enters = facts[statistic.enters][i]
        if enters is None or (statistic.where and not facts[statistic.where][i]):
            continue
        if any(facts[m][i] is None for m in statistic.known_from):
            continue
        start = max([enters + statistic.lag_months, *(facts[m][i] for m in statistic.known_from)])
        ends = [facts[m][i] for m in statistic.until if facts[m][i] is not None]
        if statistic.window_months is not None:
            ends.append(enters + statistic.lag_months + statistic.window_months)
        weight = 1 if statistic.weight is None else float(facts[statistic.weight][i])
        for m in as_of_ms:
            if start <= m and all(m < end for end in ends):
                key = (m, int(facts["supplier_key"][i]))
                totals[key] = totals.get(key, 0) + weight
    return totals


@pytest.fixture(scope="module")
def order_zone():
    con = connection_with(random_landing_zone(seed=23, n_suppliers=6, n_orders=400))
    engine = DuckDBFeatureEngine(con.cursor())
    as_of_dates = zone_as_of_dates()
    engine.register_arrow("as_of_calendar", as_of_calendar_table(as_of_dates))
    wa.create_supplier_calendar(engine, "validated")
    wa.create_order_facts(engine, "validated")
    facts = engine.fetch_arrow("SELECT * FROM order_facts").to_pydict()
    n_keys = engine.fetch_arrow("SELECT max(supplier_key) + 1 AS n FROM supplier_keys")["n"][0].as_py()
    return engine, facts, [month_index_of(d) for d in as_of_dates], n_keys


@pytest.mark.parametrize("statistic", ADHOC, ids=lambda s: s.name)
def test_any_declared_window_gives_the_same_totals_in_process_in_sql_and_by_hand(order_zone, statistic):
    engine, facts, as_of_ms, n_keys = order_zone
    want = by_hand(facts, statistic, as_of_ms)
    assert sum(want.values()) > 0  # something to compare

    sql = engine.fetch_arrow(wa.rolled_statistics_sql("adhoc", [statistic], "validated")).to_pylist()
    in_sql = {(row["as_of_m"], row["supplier_key"]): float(row[statistic.name]) for row in sql
              if row[statistic.name]}
    assert in_sql == pytest.approx(want)

    totals = WindowTotals(as_of_ms, n_keys)
    add = ei.statistics_adder([statistic])
    for rows in ei.order_rows(engine, "validated"):
        add(rows, totals)
    cells = [(m, k) for m in as_of_ms for k in range(n_keys)]
    values = totals.values_at(statistic.name, np.array([c[0] for c in cells]), np.array([c[1] for c in cells]))
    scale = 1e6 if statistic.weight else 1  # money in process: integer micro-dollars
    in_process = {cell: value / scale for cell, value in zip(cells, values.tolist()) if value}
    assert in_process == pytest.approx(want)


def test_statistics_sharing_an_entering_month_share_one_sql_roll_whatever_their_windows():
    groups = wa.statistic_groups("order_cohorts")
    assert any({"orders_6m", "orders_3m", "orders_this_month"} <= {s.name for s in group}
               for group in groups.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream": "shipments"}, "unknown stream"),  # a stream no engine reads
        ({"window_months": 0}, "at least 1"),  # an empty window
        ({"window_months": None}, "needs `until`"),  # a position at T that never ends
        ({"window_months": None, "until": ("delivered_m",), "lag_months": 1}, "no lag"),  # a lag without a window
    ],
)
def test_a_misdeclared_statistic_is_refused_with_a_plain_message(kwargs, message):
    declared = {"name": "x", "family": "adhoc", "stream": "orders", "enters": "created_m", "window_months": 6,
                "definition": "x."}
    with pytest.raises(ValueError, match=message):
        WindowedStatistic(**{**declared, **kwargs})


def test_every_ratio_reads_columns_of_the_catalogue_over_its_own_window():
    names = [name for entry in CATALOGUE for name in ([entry.name] if not isinstance(entry, Ratio) else [])]
    for ratio in RATIOS:
        for column in (ratio.numerator, ratio.denominator):
            assert column in FEATURES_BY_NAME, (ratio.name, column)
            assert FEATURES_BY_NAME[column].window == ratio.window, (ratio.name, column)
    assert len(set(names)) == len(names)
    assert {s.name for s in STATISTICS} <= set(FEATURES_BY_NAME)


def test_nothing_in_features_imports_the_reference():
    for path in FEATURES_DIR.glob("*.py"):
        assert "feature_reference" not in path.read_text(encoding="utf-8"), path.name


def test_three_month_trends_count_the_last_quarter_only():
    orders = orders_frame([
        # created in January: in the six-month window of 31 May, not in its three months
        {"order_id": "o1", "created_at": "2024-01-10", "promised_ship_by": "2024-01-20",
         "shipped_at": "2024-01-15"},
        # created in April, shipped on time, disputed in June (known from June only)
        {"order_id": "o2", "created_at": "2024-04-02", "promised_ship_by": "2024-04-10",
         "shipped_at": "2024-04-09"},
        # created in May, not yet shipped by its promised day
        {"order_id": "o3", "created_at": "2024-05-02", "promised_ship_by": "2024-05-10"},
    ])
    disputes = disputes_frame([
        ("d1", "o1", "2024-02-01", "quality", "open", None, 0.0),
        ("d2", "o2", "2024-06-03", "quality", "open", None, 0.0),
    ])
    con = connection_with({"suppliers": one_supplier(), "orders": orders, "disputes": disputes})
    features = compute_supplier_features(con, month_ends(date(2024, 5, 1), date(2024, 7, 31)))
    may, june, july = date(2024, 5, 31), date(2024, 6, 30), date(2024, 7, 31)
    assert by_month(features, "orders_6m") == {may: 3, june: 3, july: 2}
    assert by_month(features, "orders_3m") == {may: 2, june: 2, july: 1}
    assert by_month(features, "disputed_orders_6m") == {may: 1, june: 2, july: 1}
    assert by_month(features, "disputed_orders_3m") == {may: 0, june: 1, july: 0}
    assert by_month(features, "dispute_ratio_3m") == {may: 0.0, june: 0.5, july: 0.0}
    assert by_month(features, "on_time_shipment_rate_3m") == {may: 0.5, june: 0.5, july: 0.0}
    assert by_month(features, "on_time_shipment_rate_6m")[may] == pytest.approx(2 / 3)
    assert by_month(features, "promised_shipments_3m")[july] == 1
    # the trend rates keep their six-month twins' risk direction; published, not model
    # inputs (they did not help on the rolling origins: bench/results/trend_features.md)
    for name in ("dispute_ratio_3m", "on_time_shipment_rate_3m"):
        spec, six = FEATURES_BY_NAME[name], FEATURES_BY_NAME[name.replace("_3m", "_6m")]
        assert spec.window == "3m" and spec.risk_direction == six.risk_direction
        assert not spec.model_input and not FEATURES_BY_NAME[f"{name}_shrunk"].model_input



@pytest.mark.parametrize("window", [3, 6, 9])
def test_the_buyer_kernels_take_any_window_and_agree_with_their_sql_and_a_count_by_hand(order_zone, window):
    engine, facts, as_of_ms, n_keys = order_zone
    wa.create_rolled_buyers(engine, window)
    sql = engine.fetch_arrow("SELECT * FROM rolled_buyers").to_pylist()
    totals = WindowTotals(as_of_ms, n_keys)
    for rows in ei.order_rows_by_buyer(engine, "validated"):
        ei.buyer_intervals(rows, totals, window)
    months, keys = np.array([r["as_of_m"] for r in sql]), np.array([r["supplier_key"] for r in sql])
    for column in ("buyers_6m", "first_orders_6m"):  # the columns' names, over ``window`` months here
        assert totals.values_at(column, months, keys).tolist() == [r[column] for r in sql], column
    squares = totals.values_at("buyer_value_sq_6m", months, keys)
    assert squares == pytest.approx([float(r["buyer_value_sq_6m"]) for r in sql], rel=1e-12)
    # distinct buyers with an order created in the window, by hand
    for m, key, got in zip(months.tolist(), keys.tolist(), totals.values_at("buyers_6m", months, keys).tolist()):
        buyers = {facts["buyer_id"][i] for i in range(len(facts["supplier_key"]))
                  if facts["supplier_key"][i] == key and facts["created_m"][i] is not None
                  and m - window < facts["created_m"][i] <= m}
        assert got == len(buyers), (m, key)
