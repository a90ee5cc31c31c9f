"""The synthetic world's behaviour: latent reliability drifts, and it shows (noisily) in
every observable behaviour."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from synthetic import generate_landing_zone


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, duckdb.DuckDBPyConnection]:
    out = tmp_path_factory.mktemp("world")
    generate_landing_zone(out, n_suppliers=600, months=24, seed=13)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table in ("suppliers", "orders", "inquiries", "disputes", "reviews", "_truth"):
        con.execute(f"CREATE VIEW {table.strip('_')} AS SELECT * FROM read_parquet('{out}/{table}/*.parquet')")
    return out, con


def test_reliability_drifts_both_ways(world):
    _, con = world
    change = con.execute(
        """SELECT supplier_id, arg_max(latent_reliability, as_of_date) - arg_min(latent_reliability, as_of_date) AS change
           FROM truth GROUP BY supplier_id HAVING count(*) = 24"""
    ).df().change
    assert (change > 0.75).mean() > 0.1  # some improve
    assert (change < -0.75).mean() > 0.1  # some deteriorate
    assert 0.3 < (change.abs() < 0.75).mean()  # many wander


def test_drift_shows_in_behaviour_and_truth(world):
    """Suppliers whose reliability fell ship late more often and carry more risk at the
    end than at the start; those whose reliability rose, less."""
    _, con = world
    frame = con.execute(
        """
        WITH change AS (
            SELECT supplier_id,
                   arg_max(latent_reliability, as_of_date) - arg_min(latent_reliability, as_of_date) AS change,
                   arg_max(breach_probability_6m, as_of_date) - arg_min(breach_probability_6m, as_of_date) AS risk_change
            FROM truth GROUP BY supplier_id HAVING count(*) = 24 AND NOT bool_or(is_fraudulent)
        ),
        late AS (
            SELECT supplier_id,
                   avg((shipped_at >= promised_ship_by + INTERVAL 1 DAY)::INT) FILTER (WHERE created_at < TIMESTAMPTZ '2024-07-01') AS late_early,
                   avg((shipped_at >= promised_ship_by + INTERVAL 1 DAY)::INT) FILTER (WHERE created_at >= TIMESTAMPTZ '2025-06-01'
                                                                                         AND created_at < TIMESTAMPTZ '2025-12-01') AS late_late
            FROM orders WHERE shipped_at IS NOT NULL GROUP BY supplier_id
        )
        SELECT * FROM change JOIN late USING (supplier_id)
        """
    ).df().dropna()
    improvers = frame[frame.change > frame.change.quantile(0.8)]
    decliners = frame[frame.change < frame.change.quantile(0.2)]
    assert (improvers.late_late - improvers.late_early).mean() < 0 < (decliners.late_late - decliners.late_early).mean()
    assert improvers.risk_change.mean() < 0 < decliners.risk_change.mean()


def test_every_behaviour_reflects_reliability_but_none_reveals_it(world):
    _, con = world
    frame = con.execute(
        """
        WITH z AS (SELECT supplier_id, avg(latent_reliability) AS z FROM truth
                   WHERE as_of_date BETWEEN DATE '2024-07-31' AND DATE '2024-12-31' AND NOT is_fraudulent
                   GROUP BY ALL),
        o AS (SELECT supplier_id,
                     avg((cancelled_by = 'supplier')::INT) AS supplier_cancel_rate,
                     avg((shipped_at >= promised_ship_by + INTERVAL 1 DAY)::INT) FILTER (WHERE shipped_at IS NOT NULL) AS late_rate,
                     avg(date_diff('hour', shipped_at, delivered_at)) AS transit_hours,
                     count(*) AS orders
              FROM orders WHERE created_at >= TIMESTAMPTZ '2024-07-01' AND created_at < TIMESTAMPTZ '2025-01-01' GROUP BY ALL),
        d AS (SELECT o.supplier_id, count(*) AS disputes, avg((outcome = 'buyer_favored')::INT) AS buyer_win_rate
              FROM disputes JOIN orders o USING (order_id)
              WHERE o.created_at >= TIMESTAMPTZ '2024-07-01' AND o.created_at < TIMESTAMPTZ '2025-01-01' AND outcome <> 'open' GROUP BY ALL),
        q AS (SELECT supplier_id, avg((first_response_at IS NOT NULL)::INT) AS response_rate,
                     median(date_diff('minute', received_at, first_response_at)) AS response_minutes
              FROM inquiries WHERE received_at >= TIMESTAMPTZ '2024-07-01' AND received_at < TIMESTAMPTZ '2025-01-01' GROUP BY ALL),
        r AS (SELECT o.supplier_id, avg(rating) AS rating FROM reviews JOIN orders o USING (order_id)
              WHERE o.created_at >= TIMESTAMPTZ '2024-07-01' AND o.created_at < TIMESTAMPTZ '2025-01-01' GROUP BY ALL)
        SELECT * FROM z JOIN o USING (supplier_id) LEFT JOIN d USING (supplier_id)
        JOIN q USING (supplier_id) LEFT JOIN r USING (supplier_id)
        WHERE orders >= 20
        """
    ).df()
    frame["dispute_ratio"] = frame.disputes.fillna(0) / frame.orders
    expected_sign = {
        "supplier_cancel_rate": -1, "late_rate": -1, "transit_hours": -1, "dispute_ratio": -1,
        "buyer_win_rate": -1, "response_rate": +1, "response_minutes": -1, "rating": +1,
    }
    for column, sign in expected_sign.items():
        rho = frame[["z", column]].dropna().corr(method="spearman").iloc[0, 1]
        assert sign * rho > 0.05, (column, rho)
        assert abs(rho) < 0.9, (column, rho)


def test_tenure_and_activity_vary(world):
    _, con = world
    per_supplier = con.execute(
        "SELECT supplier_id, count(*) AS orders, count(DISTINCT buyer_id) AS buyers FROM orders GROUP BY ALL"
    ).df()
    assert per_supplier.orders.quantile(0.9) > 5 * per_supplier.orders.quantile(0.1)
    repeat_share = 1 - per_supplier.buyers / per_supplier.orders
    assert repeat_share.quantile(0.9) - repeat_share.quantile(0.1) > 0.2
    first_orders = con.execute(
        "SELECT min(created_at) AS first FROM orders GROUP BY supplier_id"
    ).df()["first"]
    assert (first_orders > pd.Timestamp("2024-06-01", tz="UTC")).sum() > 20  # newcomers appear over time
