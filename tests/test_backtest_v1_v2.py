"""Backtest of policy v1 against v2 on the same months: both settled by the same rules,
the top volume quintile's coverage, the settlement with the new labels, the report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.backtest import (
    ADDITIVE_METRICS,
    SIDE_BY_SIDE_METRICS,
    FeeSchedule,
    compare_policies,
    run_backtest,
)
from models.backtest_report import FIGURE_IDS, write_backtest_report
from backtest_simulation import simulate_scored_history
from models.policy import V1_POLICY_PATH, Policy

V1 = Policy.from_yaml(V1_POLICY_PATH)
V2 = Policy.from_yaml(Path(__file__).parent / "policies" / "v2_cases.yaml")  # frozen: worked numbers


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return simulate_scored_history(n_suppliers=300, months=10, seed=13)


@pytest.fixture(scope="module")
def comparison(history):
    return compare_policies(history, [V1, V2])


def test_both_policies_side_by_side_with_top_quintile_figures(comparison, history):
    table = comparison.side_by_side()
    assert list(table.columns) == [V1.version, V2.version, "flat-0.1-of-deal-value"]
    assert list(table.index) == list(SIDE_BY_SIDE_METRICS)
    assert table.notna().all().all()
    totals = comparison.totals.set_index("policy_version")
    for version in (V1.version, V2.version):
        row = totals.loc[version]
        # a fifth of the supplier-months (ties aside) are in the top quintile
        assert row["top_quintile_suppliers"] == pytest.approx(0.2 * len(history), rel=0.02)
        assert 0 <= row["top_quintile_covered"] <= row["top_quintile_suppliers"]
        assert row["top_quintile_covered_share"] == pytest.approx(
            row["top_quintile_covered"] / row["top_quintile_suppliers"])
        assert 0 <= row["top_quintile_coverage_usd"] <= row["coverage_usd"]
        assert row["loss_ratio"] == pytest.approx(row["loss_usd"] / row["fee_income_usd"])


def test_top_quintile_figures_by_hand(comparison):
    for version in (V1.version, V2.version):
        rows = comparison.results[version].decisions
        rows = rows[rows["policy"] == "policy"]
        expected_top, expected_covered, expected_usd = 0, 0, 0.0
        for _, month in rows.groupby("as_of_date"):
            cut = month["deal_value_12m_usd"].fillna(0).quantile(0.8)
            top = month["deal_value_12m_usd"].fillna(0) > cut
            expected_top += int(top.sum())
            covered = top & month["eligible"] & (month["trade_assurance_amount_usd"] > 0)
            expected_covered += int(covered.sum())
            expected_usd += float(month.loc[top, "trade_assurance_amount_usd"].sum())
        result = comparison.results[version]
        assert result.total("top_quintile_suppliers") == expected_top
        assert result.total("top_quintile_covered") == expected_covered
        assert result.total("top_quintile_coverage_usd") == pytest.approx(expected_usd)


def test_monthly_reconciles_with_totals_for_both(comparison):
    for version in (V1.version, V2.version):
        monthly = comparison.monthly[comparison.monthly["policy_version"] == version]
        totals = comparison.totals.set_index("policy_version").loc[version]
        for metric in ADDITIVE_METRICS:
            assert monthly[metric].sum() == pytest.approx(totals[metric]), metric


def test_v2_replays_without_breach_probability(history):
    # v2 does not read breach_probability_6m: a history without it replays
    result = run_backtest(history.drop(columns=["breach_probability_6m"]), V2, baseline=None)
    assert result.total("suppliers_covered") > 0
    # ... and v1 needs it: a clear error from the policy
    with pytest.raises(ValueError, match="breach_probability_6m"):
        run_backtest(history.drop(columns=["breach_probability_6m"]), V1, baseline=None)


def test_v2_on_a_history_without_its_scores_is_a_clear_error(history):
    with pytest.raises(ValueError, match=r"lacks column.*loss_rate_6m.*v2"):
        run_backtest(simulate_scored_history(n_suppliers=20, months=2, v2=False), V2)


def _one(**overrides) -> pd.DataFrame:
    # v2 amount 60,000 (tests/test_policy_v2_cases.py); covered volume: the realised
    # order value 200,000 x assured share 0.6 = 120,000 (within 6 x 60k).
    row = dict(
        as_of_date=pd.Timestamp("2024-06-30").date(), supplier_id="S1",
        breach_probability_6m=0.01, loss_rate_6m=0.01, default_probability_6m=0.02,
        opted_in=True, membership_tier="gold", country="CN", tenure_months=24, orders_6m=40,
        deal_value_12m_usd=200_000.0, assured_deal_value_12m_usd=120_000.0,
        breach_6m=True, breach_refund_usd_6m=9_999.0, forward_order_value_6m_usd=200_000.0,
        pre_shipment_refund_usd_6m=3_000.0, post_delivery_refund_usd_6m=1_000.0,
        default_6m=False, label_complete=True,
    )
    row.update(overrides)
    return pd.DataFrame([row])


def test_settlement_with_the_new_labels_by_hand():
    result = run_backtest(_one(), V2, baseline=None)
    assert result.total("coverage_usd") == 60_000
    # covered share 120k / 200k of refunds 3,000 + 1,000 (the split wins over the total)
    assert result.total("loss_usd") == pytest.approx(0.6 * 4_000)
    assert result.total("default_loss_usd") == 0
    assert result.total("claims") == 1
    # fees on the covered volume 120,000 and orders 40 x 0.6 = 24
    assert result.total("fee_income_usd") == pytest.approx(0.03 * 120_000 + 24)
    # a defaulter also loses its outstanding amount min(60k, 120k) x LGD 0.5
    defaulted = run_backtest(_one(default_6m=True), V2, baseline=None)
    assert defaulted.total("default_loss_usd") == pytest.approx(30_000)
    assert defaulted.total("loss_usd") == pytest.approx(2_400 + 30_000)
    # with LGD 1 the loss is capped at the amount
    total_loss = run_backtest(_one(default_6m=True), V2, baseline=None,
                              fees=FeeSchedule(loss_given_default=1.0))
    assert total_loss.total("loss_usd") == 60_000
    # without the split, breach_refund_usd_6m is the window's refunds
    unsplit = _one().drop(columns=["pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m"])
    assert run_backtest(unsplit, V2, baseline=None).total("loss_usd") == pytest.approx(
        0.6 * 9_999)
    # no refunds and no default: no claim
    clean = _one(breach_6m=False, pre_shipment_refund_usd_6m=0.0,
                 post_delivery_refund_usd_6m=0.0)
    assert run_backtest(clean, V2, baseline=None).total("claims") == 0


def test_both_policies_settled_by_the_same_rules():
    """Same amount under v1 and v2 for this supplier: same loss and fees."""
    frame = _one(default_6m=True)
    v1 = run_backtest(frame, V1, baseline=None)
    v2 = run_backtest(frame, V2, baseline=None)
    assert v1.total("coverage_usd") == v2.total("coverage_usd") == 60_000
    for metric in ("loss_usd", "default_loss_usd", "fee_income_usd", "claims"):
        assert v1.total(metric) == pytest.approx(v2.total(metric)), metric


def test_report_shows_both_policies_on_every_figure(comparison, tmp_path: Path):
    path = write_backtest_report(comparison.results[V2.version], tmp_path / "r.html",
                                 comparison=comparison)
    text = path.read_text(encoding="utf-8")
    found = dict(re.findall(
        r'<figure id="(\w+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        text))
    assert set(found) == set(FIGURE_IDS)
    for figure_id, data in found.items():
        assert len(base64.b64decode(data)) > 5_000, figure_id
    assert "side by side" in text
    assert "top_quintile_covered_share" in text
    for version in (V1.version, V2.version):
        assert f"By risk grade (policy {version})" in text
    # The side-by-side comparison figure has one colour per policy: more than one
    # policy's line is drawn (the v1-only report differs from the v1-vs-v2 one).
    alone = write_backtest_report(comparison.results[V2.version], tmp_path / "a.html")
    alone_pngs = dict(re.findall(
        r'<figure id="(\w+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        alone.read_text(encoding="utf-8")))
    assert alone_pngs["coverage_per_month"] != found["coverage_per_month"]


def test_simulation_v2_columns_do_not_change_the_v1_columns():
    with_v2 = simulate_scored_history(n_suppliers=50, months=4, seed=2)
    without = simulate_scored_history(n_suppliers=50, months=4, seed=2, v2=False)
    pd.testing.assert_frame_equal(with_v2[without.columns], without)
    assert np.all(with_v2["loss_rate_6m"] >= 0)
    assert with_v2["default_probability_6m"].between(0, 1).all()
