"""Point-in-time history end to end (docs/design.md §4): appending later months to the landing zone
never changes a published decision of an earlier month, and a landing zone no model can be
trained on still publishes its features, with the months not scored and the reason said."""

from __future__ import annotations

import os
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.span import landing_zone_month_span
from landing_cut import cut_landing_zone
from pipelines.runner import month_range, run_months
from pipelines.settings import Settings
from pipelines.summary import describe_run
from synthetic import generate_landing_zone

CUT = date(2025, 1, 31)  # after the first quarterly vintage (2024-12-31), before the second
RUN_METADATA = ("run_id", "published_at")
# Three pipeline runs (a cut world, the whole world, a world without claims): minutes on a
# shared 2-core machine. The default suite covers the no-outcome case on Olist
# (tests/test_olist_pipeline.py) and months before the first vintage end to end.
pytestmark = pytest.mark.slow


def _run_whole_landing_zone(home, landing):
    settings = Settings(home=home, landing=landing)
    first, last = month_range(None, None, landing_zone_month_span(landing))
    return settings, run_months(settings, first, last, log_level="WARNING")


def _published(settings: Settings, table: str, until: date) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        columns = [c for (c, *_) in con.execute(f"DESCRIBE published.{table}").fetchall() if c not in RUN_METADATA]
        return con.execute(
            f"SELECT {', '.join(columns)} FROM published.{table} WHERE as_of_date <= ? ORDER BY as_of_date, supplier_id",
            [until],
        ).df()


@pytest.fixture(scope="module")
def cut_and_whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    whole_landing = root / "whole"
    generate_landing_zone(whole_landing, n_suppliers=300, start="2024-01", months=15, seed=5)
    cut_landing = cut_landing_zone(whole_landing, root / "cut", CUT)
    cut = _run_whole_landing_zone(root / "cut home", cut_landing)
    whole = _run_whole_landing_zone(root / "whole home", whole_landing)
    yield cut, whole
    os.environ.pop("DAGSTER_HOME", None)


@pytest.mark.parametrize("table", ["supplier_scores", "supplier_features", "storefront_metrics"])
def test_later_months_never_change_an_earlier_published_month(cut_and_whole, table):
    (cut_settings, cut_outcome), (whole_settings, _) = cut_and_whole
    assert cut_outcome.last_month == CUT.strftime("%Y-%m")
    before = _published(cut_settings, table, CUT)
    after = _published(whole_settings, table, CUT)
    assert len(before) > 0
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_the_cut_world_scores_from_the_first_vintage_on_with_the_growth_limit_across_months(cut_and_whole):
    (cut_settings, _), (whole_settings, _) = cut_and_whole
    scores = _published(cut_settings, "supplier_scores", CUT)
    assert sorted(scores["as_of_date"].astype(str).unique()) == ["2024-12-31", "2025-01-31"]
    assert set(scores["model_version"]) == {"supplier_breach_risk/1@2024-12-31"}
    later = _published(whole_settings, "supplier_scores", date(2025, 4, 30))
    assert "supplier_breach_risk/2@2025-03-31" in set(later["model_version"]), "the whole world's March vintage scores March on"


def test_features_are_published_for_months_before_the_first_vintage(cut_and_whole):
    (cut_settings, _), _ = cut_and_whole
    months = _published(cut_settings, "supplier_features", CUT)["as_of_date"].nunique()
    assert months == 13


def test_a_landing_zone_without_any_trainable_outcome_publishes_features_and_says_why(tmp_path):
    landing = tmp_path / "landing"
    generate_landing_zone(landing, n_suppliers=60, start="2024-01", months=14, seed=3)
    # The source records no claims: an empty disputes table (every label is "no breach").
    disputes = pq.read_table(landing / "disputes")
    for file in (landing / "disputes").iterdir():
        file.unlink()
    pq.write_table(pa.Table.from_pylist([], schema=disputes.schema), landing / "disputes" / "part-0.parquet")
    settings, outcome = _run_whole_landing_zone(tmp_path / "home", landing)
    try:
        assert outcome.failed_checks == []
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            scores = con.execute("SELECT count(*) FROM published.supplier_scores").fetchone()[0]
            features = con.execute("SELECT count(DISTINCT as_of_date) FROM published.supplier_features").fetchone()[0]
            storefront = con.execute("SELECT count(DISTINCT as_of_date) FROM published.storefront_metrics").fetchone()[0]
        assert (scores, features, storefront) == (0, 14, 14)
        summary = describe_run(settings, outcome, seconds=1.0)
        (line,) = [line for line in summary.splitlines() if "not scored" in line]
        assert "14 month(s)" in line and "breach none: only 0 breach" in line
    finally:
        os.environ.pop("DAGSTER_HOME", None)
