"""The generator's ground truth against what actually happened in the written data.

Realised breach labels are computed here straight from the written Parquet files with
DuckDB (independently of the generator's code): a supplier breaches at month end T when
one of its orders has a dispute with outcome buyer_favored resolved in (T, T + 6 months].
Only month ends whose six-month window ends by the data horizon are labelled.

Labels of one supplier in consecutive months are strongly correlated (one breach labels
up to six month ends), so every test statistic uses supplier-clustered standard errors.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from synthetic import behaviour as bh
from synthetic import generate_landing_zone
from synthetic.world import MonthGrid


def realised_breach_labels(landing: Path) -> pd.DataFrame:
    """Truth rows joined with realised labels, for month ends whose window is complete."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(
        f"""
        WITH truth AS (SELECT * FROM read_parquet('{landing}/_truth/*.parquet')),
        breaches AS (
            SELECT o.supplier_id, d.resolved_at
            FROM read_parquet('{landing}/disputes/*.parquet') d
            JOIN read_parquet('{landing}/orders/*.parquet') o USING (order_id)
            WHERE d.outcome = 'buyer_favored'
        ),
        labelled AS (
            SELECT t.supplier_id, t.as_of_date,
                   bool_or(b.resolved_at IS NOT NULL) AS breach
            FROM truth t LEFT JOIN breaches b
              ON b.supplier_id = t.supplier_id
             AND b.resolved_at >= (t.as_of_date + INTERVAL 1 DAY)::TIMESTAMPTZ
             AND b.resolved_at < (t.as_of_date + INTERVAL 1 DAY + INTERVAL 6 MONTH)::TIMESTAMPTZ
            WHERE t.as_of_date + INTERVAL 6 MONTH <= (SELECT max(as_of_date) FROM truth)
            GROUP BY ALL
        )
        SELECT t.*, l.breach FROM truth t JOIN labelled l USING (supplier_id, as_of_date)
        """
    ).df()


def clustered_z(y: np.ndarray, p: np.ndarray, clusters: np.ndarray) -> float:
    """z-score of sum(y - p) with supplier-clustered variance."""
    residual = pd.Series(y - p).groupby(clusters).sum()
    return float(residual.sum() / np.sqrt((residual**2).sum()))


def calibration_failures(frame: pd.DataFrame, probability: np.ndarray, bins: int, z_limit: float) -> list[str]:
    """Overall and per-quantile-bin calibration checks; returns what failed."""
    y = frame.breach.to_numpy(dtype=float)
    clusters = frame.supplier_id.to_numpy()
    failures = []
    overall = clustered_z(y, probability, clusters)
    if abs(overall) > z_limit:
        failures.append(f"overall: realised {y.mean():.4f} vs truth {probability.mean():.4f} (z={overall:.1f})")
    bin_of = np.minimum((pd.Series(probability).rank(pct=True).to_numpy() * bins).astype(int), bins - 1)
    for b in range(bins):
        rows = bin_of == b
        z = clustered_z(y[rows], probability[rows], clusters[rows])
        if abs(z) > z_limit:
            failures.append(f"bin {b}: realised {y[rows].mean():.4f} vs truth {probability[rows].mean():.4f} (z={z:.1f})")
    return failures


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("truth_world")
    generate_landing_zone(out, n_suppliers=800, months=24, seed=5, include_inquiries=False, include_reviews=False)
    return realised_breach_labels(out)


def test_truth_matches_realised_breaches_overall_and_per_quintile(labelled):
    assert len(labelled) > 10_000
    p = labelled.breach_probability_6m.to_numpy()
    assert 0.05 < labelled.breach.mean() < 0.25
    assert calibration_failures(labelled, p, bins=5, z_limit=3.5) == []


def test_the_calibration_check_has_power_against_a_wrong_truth(labelled):
    """A truth off by a fifth or a quarter, or one that half ignores who the supplier is
    (right on average, wrong in the tails), must fail."""
    p = labelled.breach_probability_6m.to_numpy()
    assert calibration_failures(labelled, np.clip(1.2 * p, 0, 1), bins=5, z_limit=3.5)
    assert calibration_failures(labelled, 0.75 * p, bins=5, z_limit=3.5)
    assert calibration_failures(labelled, 0.5 * p + 0.5 * p.mean(), bins=5, z_limit=3.5)


def test_truth_ranks_suppliers_well_but_not_perfectly(labelled):
    auc = roc_auc_score(labelled.breach, labelled.breach_probability_6m)
    assert 0.75 < auc < 0.95


def test_fraudulent_suppliers_are_near_certain_breaches(labelled):
    fraud = labelled[labelled.is_fraudulent & (labelled.orders_in_month > 3)]
    if len(fraud):
        assert fraud.breach_probability_6m.mean() > 0.8


def test_fast_window_probability_equals_the_route_by_route_sum():
    rng = np.random.default_rng(0)
    n = 2000
    state = bh.SupplierState(
        z=rng.normal(1, 2, n), fraud=rng.random(n) < 0.1, cancel_offset=rng.normal(0, 0.5, n),
        late_offset=rng.normal(0, 0.5, n), transit_offset=rng.normal(0, 0.5, n),
        dispute_offset=rng.normal(0, 0.5, n),
    )
    window = rng.random(len(bh.BREACH_ROUTES))
    np.testing.assert_allclose(
        bh.window_breach_probability(state, window), bh.breach_route_probabilities(state) @ window, rtol=1e-12
    )
    np.testing.assert_allclose(bh.path_probabilities(state).sum(axis=1), 1.0)


def test_route_windows_follow_the_calendar():
    grid = MonthGrid.from_start("2024-01", 12)
    window = bh.route_window_probabilities(grid.start_days, 18, 12)
    assert window.min() >= 0 and window.max() <= 1
    # An order created after the window cannot breach in it; created long before neither.
    assert np.all(window[:, 8, 0] == 0)
    assert np.all(window[:, 0, 9] == 0)
    # Every route's resolution lands within the next six months of its creation month
    # end or the six after that.
    for k, (path, reason) in enumerate(bh.BREACH_ROUTES):
        assert 0.5 < window[k, 3, 3] + window[k, 3, 9] <= 1.0 + 1e-12, (path, reason)
    # A not_received dispute takes at least 3 + 20 + 5 days: orders from month m resolve
    # after the end of month m (never inside month m itself).
    nr = bh.BREACH_ROUTES.index((bh.P_UNSHIPPED, bh.R_NOT_RECEIVED))
    assert window[nr, 5, 5] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_truth_calibration_on_a_larger_world(tmp_path):
    generate_landing_zone(tmp_path, n_suppliers=4000, months=30, seed=9, include_inquiries=False, include_reviews=False)
    frame = realised_breach_labels(tmp_path)
    p = frame.breach_probability_6m.to_numpy()
    assert calibration_failures(frame, p, bins=10, z_limit=3.5) == []
    assert roc_auc_score(frame.breach, p) > 0.8
