"""The generator's ground truth against what actually happened in the written data.

Realised labels are computed here straight from the written Parquet files with DuckDB
(independently of the generator's code, and of `models.labels`, which is then checked
against them): a supplier breaches at month end T when one of its orders has a dispute
with outcome buyer_favored resolved in (T, T + 6 months]; its loss in the window is the
refunds of those disputes, by reason group, against the value of the orders it took in
the window. Only month ends whose six-month window ends by the data horizon are labelled.

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


def realised_labels(landing: Path) -> pd.DataFrame:
    """Truth rows joined with realised labels, for month ends whose window is complete.

    Per (supplier, T), over the window (T, T + 6 months]: `breach` (any buyer-won dispute
    resolved in it), the buyer-won refunds and their count by reason group (`refund`,
    `refund_pre`, `refund_post`, `won`, `won_pre`, `won_post`) and the orders created in
    it (`order_value`, `orders`), and the default label (`orders_due`, `failed_due`,
    `default`: the generator's promises are the start of the promised day, so the
    promised day is `promised_ship_by` itself).
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    in_window = """{ts} >= (t.as_of_date + INTERVAL 1 DAY)::TIMESTAMPTZ
             AND {ts} < (t.as_of_date + INTERVAL 1 DAY + INTERVAL 6 MONTH)::TIMESTAMPTZ"""
    return con.execute(
        f"""
        WITH truth AS (
            SELECT * FROM read_parquet('{landing}/_truth/*.parquet')
            WHERE as_of_date + INTERVAL 6 MONTH <= (SELECT max(as_of_date) FROM read_parquet('{landing}/_truth/*.parquet'))
        ),
        orders AS (SELECT * FROM read_parquet('{landing}/orders/*.parquet')),
        won AS (
            SELECT o.supplier_id, d.resolved_at, d.refund_usd,
                   d.reason IN ('late_shipment', 'not_received') AS pre, d.reason = 'quality' AS post
            FROM read_parquet('{landing}/disputes/*.parquet') d
            JOIN orders o USING (order_id)
            WHERE d.outcome = 'buyer_favored'
        ),
        refunds AS (
            SELECT t.supplier_id, t.as_of_date,
                   count(*) AS won, count(*) FILTER (WHERE pre) AS won_pre, count(*) FILTER (WHERE post) AS won_post,
                   sum(refund_usd) AS refund,
                   sum(refund_usd) FILTER (WHERE pre) AS refund_pre,
                   sum(refund_usd) FILTER (WHERE post) AS refund_post
            FROM truth t JOIN won w ON w.supplier_id = t.supplier_id AND {in_window.format(ts="w.resolved_at")}
            GROUP BY ALL
        ),
        created AS (
            SELECT t.supplier_id, t.as_of_date, count(*) AS orders, sum(o.amount_usd) AS order_value
            FROM truth t JOIN orders o ON o.supplier_id = t.supplier_id AND {in_window.format(ts="o.created_at")}
            GROUP BY ALL
        ),
        claims AS (
            SELECT order_id, min(resolved_at) AS won_at FROM read_parquet('{landing}/disputes/*.parquet')
            WHERE outcome = 'buyer_favored' AND reason = 'not_received' GROUP BY order_id
        ),
        due AS (
            -- promised day in (T, window end - 14 days]; buyer-cancelled orders left out;
            -- failed: cancelled by the supplier or platform, not shipped by the end of the
            -- promised day + 14, or a won not_received claim resolved by the window end
            SELECT t.supplier_id, t.as_of_date, count(*) AS orders_due,
                   count(*) FILTER (
                       WHERE o.cancelled_by IN ('supplier', 'platform') OR o.shipped_at IS NULL
                          OR o.shipped_at >= o.promised_ship_by + INTERVAL 15 DAY
                          OR c.won_at < (t.as_of_date + INTERVAL 1 DAY + INTERVAL 6 MONTH)::TIMESTAMPTZ
                   ) AS failed_due
            FROM truth t
            JOIN orders o ON o.supplier_id = t.supplier_id
             AND o.promised_ship_by >= (t.as_of_date + INTERVAL 1 DAY)::TIMESTAMPTZ
             AND o.promised_ship_by < (t.as_of_date + INTERVAL 1 DAY + INTERVAL 6 MONTH - INTERVAL 14 DAY)::TIMESTAMPTZ
             AND o.cancelled_by IS DISTINCT FROM 'buyer'
            LEFT JOIN claims c USING (order_id)
            GROUP BY ALL
        )
        SELECT t.*, coalesce(r.won, 0) > 0 AS breach,
               coalesce(r.won, 0) AS won, coalesce(r.won_pre, 0) AS won_pre, coalesce(r.won_post, 0) AS won_post,
               coalesce(r.refund, 0) AS refund, coalesce(r.refund_pre, 0) AS refund_pre,
               coalesce(r.refund_post, 0) AS refund_post,
               coalesce(c.orders, 0) AS orders, coalesce(c.order_value, 0) AS order_value,
               coalesce(u.orders_due, 0) AS orders_due, coalesce(u.failed_due, 0) AS failed_due,
               coalesce(u.orders_due, 0) >= 3 AND u.failed_due >= 0.5 * u.orders_due AS "default"
        FROM truth t
        LEFT JOIN refunds r USING (supplier_id, as_of_date)
        LEFT JOIN created c USING (supplier_id, as_of_date)
        LEFT JOIN due u USING (supplier_id, as_of_date)
        ORDER BY as_of_date, supplier_id
        """
    ).df()


def clustered_z(y: np.ndarray, p: np.ndarray, clusters: np.ndarray) -> float:
    """z-score of sum(y - p) with supplier-clustered variance."""
    residual = pd.Series(y - p).groupby(clusters).sum()
    return float(residual.sum() / np.sqrt((residual**2).sum()))


def calibration_failures(
    frame: pd.DataFrame, probability: np.ndarray, bins: int, z_limit: float, label: str = "breach"
) -> list[str]:
    """Overall and per-quantile-bin calibration checks; returns what failed."""
    y = frame[label].to_numpy(dtype=float)
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


LOSS_COLUMNS = {  # truth column -> realised refunds, buyer-won count
    "loss_rate_6m": ("refund", "won"),
    "loss_rate_pre_shipment_6m": ("refund_pre", "won_pre"),
    "loss_rate_post_delivery_6m": ("refund_post", "won_post"),
}


def loss_calibration(frame: pd.DataFrame, rate: np.ndarray, realised: str, exposure: str, bins: int):
    """Realised loss against the truth's expectation, per bin of the truth.

    Given the information at T the truth's loss rate r is E[refunds] / E[order value], so
    E[refunds - r * order value] = 0: the sum of r * realised value is an unbiased
    expectation of the realised refunds (the same holds for counts: won disputes against
    r / MEAN_SHARE * orders). Bins are cut along the sorted truth so that each expects the
    same loss (equal-count bins would leave the safest ones a handful of events).
    Returns per bin (realised / expected, supplier-clustered z), overall first.
    """
    return equal_mass_calibration(
        rate * frame[exposure].to_numpy(), frame[realised].to_numpy(dtype=float), rate, frame.supplier_id.to_numpy(), bins
    )


def equal_mass_calibration(expected: np.ndarray, y: np.ndarray, rate: np.ndarray, clusters: np.ndarray, bins: int):
    """Realised sum / expected sum and supplier-clustered z, overall then per bin of
    `rate`, the bins cut so that each holds the same expected total."""
    order = np.argsort(rate, kind="stable")
    mass = np.cumsum(expected[order]) / expected.sum()
    bin_of = np.empty(len(rate), dtype=int)
    bin_of[order] = np.minimum((mass * bins).astype(int), bins - 1)
    out = [(y.sum() / expected.sum(), clustered_z(y, expected, clusters))]
    for b in range(bins):
        rows = bin_of == b
        out.append((y[rows].sum() / expected[rows].sum(), clustered_z(y[rows], expected[rows], clusters[rows])))
    return out


def loss_failures(
    frame: pd.DataFrame, column: str, rate: np.ndarray, *, count_bins: int, count_tolerance: float,
    dollar_bins: int, dollar_tolerance: float, overall_dollar_tolerance: float, z_limit: float = 3.5,
) -> list[str]:
    """What fails. Counts (won disputes vs rate / mean share x orders) test the truth's
    probabilities: per bin within `count_tolerance` of 1 and `z_limit`. Dollars (refunds
    vs rate x order value) add the refund share and the order amounts, whose heavy tail
    makes a clustered z meaningless in a bin with few large refunds: ratios only."""
    refund, won = LOSS_COLUMNS[column]
    failures = []
    counts = loss_calibration(frame, rate / bh.MEAN_BUYER_FAVORED_REFUND_SHARE, won, "orders", count_bins)
    for b, (ratio, z) in enumerate(counts):
        if abs(ratio - 1) > count_tolerance or abs(z) > z_limit:
            failures.append(f"{column} counts {'overall' if b == 0 else f'bin {b - 1}'}: {ratio:.3f} (z={z:.1f})")
    dollars = loss_calibration(frame, rate, refund, "order_value", dollar_bins)
    for b, (ratio, _) in enumerate(dollars):
        if abs(ratio - 1) > (overall_dollar_tolerance if b == 0 else dollar_tolerance):
            failures.append(f"{column} dollars {'overall' if b == 0 else f'bin {b - 1}'}: {ratio:.3f}")
    return failures


FAST_LOSS_CHECK = dict(count_bins=4, count_tolerance=0.3, dollar_bins=4, dollar_tolerance=0.5,
                       overall_dollar_tolerance=0.2)


@pytest.fixture(scope="module")
def truth_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("truth_world")
    generate_landing_zone(out, n_suppliers=800, months=24, seed=5, include_inquiries=False, include_reviews=False)
    return out


@pytest.fixture(scope="module")
def labelled(truth_world) -> pd.DataFrame:
    return realised_labels(truth_world)


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


@pytest.mark.parametrize("column", list(LOSS_COLUMNS))
def test_loss_rate_truth_matches_realised_refunds_per_dollar(labelled, column):
    assert loss_failures(labelled, column, labelled[column].to_numpy(), **FAST_LOSS_CHECK) == []


def test_the_loss_calibration_check_has_power_against_a_wrong_truth(labelled):
    """Off by a half or a third, or half ignoring who the supplier is, must fail."""
    rate = labelled.loss_rate_6m.to_numpy()
    for wrong in (1.5 * rate, rate / 1.5, 0.5 * rate + 0.5 * np.average(rate, weights=labelled.order_value + 1)):
        assert loss_failures(labelled, "loss_rate_6m", wrong, **FAST_LOSS_CHECK)


def test_buyer_won_refunds_average_the_mean_share_of_the_order(truth_world):
    # the truth's loss rate is MEAN_SHARE x (expected won disputes / expected orders):
    # the order amount cancels because it does not depend on the order's fate
    share = duckdb.sql(
        f"""SELECT avg(d.refund_usd / o.amount_usd) FROM read_parquet('{truth_world}/disputes/*.parquet') d
            JOIN read_parquet('{truth_world}/orders/*.parquet') o USING (order_id)
            WHERE d.outcome = 'buyer_favored'"""
    ).fetchone()[0]
    assert share == pytest.approx(bh.MEAN_BUYER_FAVORED_REFUND_SHARE, abs=0.03)


def test_loss_rates_split_by_coverage_and_the_mean_refund_share():
    # 'other' is in the total only; a buyer-won refund is the whole order half the time,
    # else a uniform share in [0.3, 1]
    assert bh.MEAN_BUYER_FAVORED_REFUND_SHARE == pytest.approx(0.825)
    pre, post = bh.routes_with_reasons(bh.PRE_SHIPMENT_REASONS), bh.routes_with_reasons(bh.POST_DELIVERY_REASONS)
    other = bh.routes_with_reasons((bh.R_OTHER,))
    np.testing.assert_array_equal(pre + post + other, np.ones(len(bh.BREACH_ROUTES)))


def test_loss_rate_truth_columns_add_up_and_rank_suppliers(labelled):
    total = labelled.loss_rate_6m
    parts = labelled.loss_rate_pre_shipment_6m + labelled.loss_rate_post_delivery_6m
    assert (parts <= total + 1e-12).all() and (labelled[list(LOSS_COLUMNS)] >= 0).all().all()
    # fraudsters lose most of what they take (pre-shipment), and the truth knows it
    fraud = labelled[labelled.is_fraudulent]
    if len(fraud):
        assert fraud.loss_rate_pre_shipment_6m.median() > 0.3
    assert labelled.loss_rate_6m.corr(labelled.latent_reliability, method="spearman") < -0.5


def default_failures(
    frame: pd.DataFrame, probability: np.ndarray, bins: int, overall_tolerance: float, z_limit: float = 3.5
) -> list[str]:
    """Mean truth against the realised default rate, overall and per bin; defaults are
    rare (about 1 in 100 supplier-months), so the bins hold equal expected defaults: an
    equal-count bin of the safest would expect a handful and its z would mean nothing.
    The clustered z of a rare event is weak against a truth that is too low (its
    variance comes from the realised events), so the overall ratio has a tolerance too."""
    y = frame["default"].to_numpy(dtype=float)
    found = equal_mass_calibration(probability, y, probability, frame.supplier_id.to_numpy(), bins)
    return [
        f"default {'overall' if b == 0 else f'bin {b - 1}'}: realised/expected {ratio:.3f} (z={z:.1f})"
        for b, (ratio, z) in enumerate(found)
        if abs(z) > z_limit or (b == 0 and abs(ratio - 1) > overall_tolerance)
    ]


def test_default_truth_matches_realised_defaults(labelled):
    p = labelled.default_probability_6m.to_numpy()
    assert 0.003 < labelled["default"].mean() < 0.1
    assert default_failures(labelled, p, bins=3, overall_tolerance=0.35) == []
    # ranks well: fraud shows in the latent state; honest suppliers' failures are noise
    assert roc_auc_score(labelled["default"], p) > 0.8


def test_the_default_calibration_check_has_power_against_a_wrong_truth(labelled):
    p = labelled.default_probability_6m.to_numpy()
    assert default_failures(labelled, np.clip(2 * p, 0, 1), bins=3, overall_tolerance=0.35)
    assert default_failures(labelled, 0.5 * p, bins=3, overall_tolerance=0.35)
    assert default_failures(labelled, 0.5 * p + 0.5 * p.mean(), bins=3, overall_tolerance=0.35)


def test_default_rule_mirrors_the_label_module():
    from models import labels

    assert (bh.DEFAULT_GRACE_DAYS, bh.DEFAULT_MIN_ORDERS_DUE, bh.DEFAULT_FAILED_SHARE) == (
        labels.DEFAULT_GRACE_DAYS, labels.DEFAULT_MIN_ORDERS_DUE, labels.DEFAULT_FAILED_SHARE
    )


def test_default_probability_of_poisson_counts_matches_a_simulation():
    from synthetic.truth import default_probability_given_means

    rng = np.random.default_rng(1)
    means = np.array([[0.0, 0.5, 2.0, 6.0, 1.0, 0.0], [0.0, 0.5, 1.0, 5.0, 9.0, 4.0]])
    failed, ok = rng.poisson(means[0], (200_000, 6)), rng.poisson(means[1], (200_000, 6))
    simulated = ((failed + ok >= bh.DEFAULT_MIN_ORDERS_DUE) & (failed >= ok)).mean(axis=0)
    np.testing.assert_allclose(default_probability_given_means(means), simulated, atol=4e-3)


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
    frame = realised_labels(tmp_path)
    p = frame.breach_probability_6m.to_numpy()
    assert calibration_failures(frame, p, bins=10, z_limit=3.5) == []
    assert roc_auc_score(frame.breach, p) > 0.8
    default = frame.default_probability_6m.to_numpy()
    assert default_failures(frame, default, bins=10, overall_tolerance=0.15) == []
    assert roc_auc_score(frame["default"], default) > 0.75
    for column in LOSS_COLUMNS:
        assert loss_failures(
            frame, column, frame[column].to_numpy(), count_bins=10, count_tolerance=0.25,
            dollar_bins=5, dollar_tolerance=0.35, overall_dollar_tolerance=0.12,
        ) == []


@pytest.fixture(scope="module")
def pipeline_labels(truth_world, labelled) -> pd.DataFrame:
    """models.labels on the same world, through the pipeline's ingest."""
    from data_contracts import ingest_landing_zone
    from models.labels import compute_breach_labels

    con = duckdb.connect()
    report = ingest_landing_zone(truth_world, con)
    months = sorted(pd.to_datetime(labelled.as_of_date).dt.date.unique())
    table = compute_breach_labels(con, months, data_horizon=report.data_horizon).to_pandas()
    table["as_of_date"] = pd.to_datetime(table.as_of_date)
    return table


def test_pipeline_labels_agree_with_the_labels_computed_here(labelled, pipeline_labels):
    here = labelled.assign(as_of_date=pd.to_datetime(labelled.as_of_date)).set_index(["as_of_date", "supplier_id"])
    there = pipeline_labels.set_index(["as_of_date", "supplier_id"]).loc[here.index]
    assert there.label_complete.all()
    np.testing.assert_array_equal(there.breach_6m.to_numpy(), here.breach.to_numpy())
    for mine, theirs in (("refund", "breach_refund_usd_6m"), ("refund_pre", "pre_shipment_refund_usd_6m"),
                         ("refund_post", "post_delivery_refund_usd_6m"), ("order_value", "forward_order_value_6m_usd")):
        np.testing.assert_allclose(there[theirs].to_numpy(), here[mine].to_numpy(), rtol=1e-9, atol=1e-6)
    with_value = here.order_value > 0
    np.testing.assert_allclose(
        there.realised_loss_rate_6m[with_value].to_numpy(), (here.refund / here.order_value)[with_value].to_numpy(), rtol=1e-9
    )
    assert there.realised_loss_rate_6m[~with_value].isna().all()
    for mine, theirs in (("orders_due", "orders_due_6m"), ("failed_due", "failed_orders_due_6m"), ("default", "default_6m")):
        np.testing.assert_array_equal(there[theirs].to_numpy(), here[mine].to_numpy())
    assert here["default"].sum() > 0
