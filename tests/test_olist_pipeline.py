"""The whole pipeline on real Olist marketplace data (skipped when the data is not beside the repo).

Olist has no disputes, so no honest model can be trained on it: the run must say so and
score with a champion trained elsewhere (here a small synthetic world in the same home),
and every feature that needs the absent inquiries must be null, never zero.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from importers.olist import import_olist
from pipelines.runner import run_months
from pipelines.settings import Settings
from synthetic import generate_landing_zone

OLIST_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "olist"

pytestmark = pytest.mark.skipif(
    not OLIST_DATA.exists(), reason=f"Olist data not found at {OLIST_DATA}; see ../shared/data/olist/README.md"
)


@pytest.fixture(scope="module")
def olist_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("olist")
    home = root / "home"
    synthetic_landing = root / "synthetic"
    generate_landing_zone(synthetic_landing, n_suppliers=300, start="2024-01", months=16, seed=5)
    run_months(Settings(home=home, landing=synthetic_landing), "2025-04", "2025-04", log_level="WARNING")

    olist_landing = root / "olist"
    import_olist(OLIST_DATA, olist_landing)
    settings = Settings(home=home, landing=olist_landing)
    outcome = run_months(settings, "2017-01", "2018-07", log_level="WARNING")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con, outcome
    con.close()


def test_olist_scores_are_published_for_every_month(olist_run):
    con, outcome = olist_run
    months, rows, run_ids = con.execute(
        "SELECT count(DISTINCT as_of_date), count(*), list(DISTINCT run_id) FROM published.supplier_scores "
        "WHERE as_of_date BETWEEN '2017-01-01' AND '2018-07-31'"
    ).fetchone()
    assert months == 19 and rows > 1000 and run_ids == [outcome.run_id]
    assert outcome.failed_checks == []


def test_features_that_need_inquiries_are_null_not_zero(olist_run):
    con, _ = olist_run
    non_null = con.execute(
        "SELECT count(response_rate_6m), count(median_response_hours_6m) FROM published.storefront_metrics "
        "WHERE as_of_date BETWEEN '2017-01-01' AND '2018-07-31'"
    ).fetchone()
    assert non_null == (0, 0)
    transactions = con.execute(
        "SELECT sum(transactions_12m) FROM published.storefront_metrics WHERE as_of_date = '2018-07-31'"
    ).fetchone()[0]
    assert transactions > 0


def test_dispute_features_and_labels_are_unknown_not_zero(olist_run):
    con, _ = olist_run
    non_null = con.execute(
        "SELECT count(dispute_ratio_6m), count(buyer_won_dispute_share_6m), count(*) FROM published.supplier_features "
        "WHERE as_of_date BETWEEN '2017-01-01' AND '2018-07-31'"
    ).fetchone()
    assert non_null[:2] == (0, 0) and non_null[2] > 0


def test_real_mess_is_quarantined_with_its_rule_and_counted(olist_run):
    con, _ = olist_run
    rules = dict(con.execute("SELECT rule, count(*) FROM quarantine.orders GROUP BY 1").fetchall())
    assert sum(rules.values()) > 0
    assert any("ship" in rule for rule in rules), rules


def test_the_model_was_not_trained_on_olist(olist_run):
    con, _ = olist_run
    versions = {row[0] for row in con.execute("SELECT DISTINCT model_version FROM published.supplier_scores").fetchall()}
    assert len(versions) == 1, "Olist months are scored by the synthetic champion, no new version"
    trainable = con.execute("SELECT count(*) FROM models.training_set").fetchone()[0]
    assert trainable == 0, "no Olist month has a known outcome: nothing to train on"
