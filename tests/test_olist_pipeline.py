"""The whole pipeline on real Olist marketplace data (skipped when the data is not beside the repo).

Olist has no disputes, so no honest model can be trained on it, and no model trained on
other data knew its months (DESIGN §4: a month is scored only by a model vintage trained on
what was known by then): the run must publish its features and storefront figures without
scores and say why, and every feature that needs the absent inquiries must be null, never zero.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from importers.olist import import_olist
from pipelines.runner import run_months
from pipelines.settings import Settings
from pipelines.summary import describe_run

OLIST_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "olist"

pytestmark = pytest.mark.skipif(
    not OLIST_DATA.exists(), reason=f"Olist data not found at {OLIST_DATA}; see ../shared/data/olist/README.md"
)


@pytest.fixture(scope="module")
def olist_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("olist")
    olist_landing = root / "olist"
    import_olist(OLIST_DATA, olist_landing)
    settings = Settings(home=root / "home", landing=olist_landing)
    outcome = run_months(settings, "2017-01", "2018-07", log_level="WARNING")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con, outcome, settings
    con.close()


def test_olist_months_are_published_without_scores_and_the_run_says_why(olist_run):
    con, outcome, settings = olist_run
    features, scores = con.execute(
        "SELECT (SELECT count(DISTINCT as_of_date) FROM published.supplier_features WHERE as_of_date BETWEEN '2017-01-01' AND '2018-07-31'), "
        "(SELECT count(*) FROM published.supplier_scores)"
    ).fetchone()
    assert (features, scores) == (19, 0)
    assert outcome.failed_checks == []
    (line,) = [line for line in describe_run(settings, outcome, seconds=1.0).splitlines() if "not scored" in line]
    assert "19 month(s)" in line and "breach none" in line and "disputes" in line


def test_features_that_need_inquiries_are_null_not_zero(olist_run):
    con, *_ = olist_run
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
    con, *_ = olist_run
    non_null = con.execute(
        "SELECT count(dispute_ratio_6m), count(buyer_won_dispute_share_6m), count(*) FROM published.supplier_features "
        "WHERE as_of_date BETWEEN '2017-01-01' AND '2018-07-31'"
    ).fetchone()
    assert non_null[:2] == (0, 0) and non_null[2] > 0


def test_real_mess_is_quarantined_with_its_rule_and_counted(olist_run):
    con, *_ = olist_run
    rules = dict(con.execute("SELECT rule, count(*) FROM quarantine.orders GROUP BY 1").fetchall())
    assert sum(rules.values()) > 0
    assert any("ship" in rule for rule in rules), rules


def test_the_model_was_not_trained_on_olist(olist_run):
    con, *_ = olist_run
    trainable = con.execute("SELECT count(*) FROM models.training_set").fetchone()[0]
    assert trainable == 0, "no Olist month has a known outcome: nothing to train on"
    serving = con.execute("SELECT count(*) FROM models.vintages WHERE status = 'serving'").fetchone()[0]
    assert serving == 0
