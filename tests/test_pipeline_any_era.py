"""Issue 14, "any era", end to end through the CLI: a world from 2006 is generated, run and published
in a fresh home, and a rerun on more months adds their partitions (two whole runs: slow)."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from assets.partitions import MONTH_END_PARTITIONS, month_keys
from pipelines.cli import main

pytestmark = pytest.mark.slow


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def published_months(home, table: str = "supplier_features") -> list[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(f"SELECT DISTINCT strftime(as_of_date, '%Y-%m') FROM published.{table} ORDER BY 1").fetchall()
    return [month for (month,) in rows]


def scored_from_the_first_vintage_on(home, months: list[str]) -> bool:
    """Scores are published from the first model vintage's month to the last month, with no gap
    (point in time: a month before any vintage has no model that knew it)."""
    scored = published_months(home, "supplier_scores")
    return bool(scored) and scored == months[months.index(scored[0]):]


def registered_months(home) -> list[str]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return list(instance.get_dynamic_partitions(MONTH_END_PARTITIONS))


def test_a_2006_world_is_published_whole_and_more_months_add_their_partitions(tmp_path, monkeypatch):
    for name in ("ASSURANCE_HOME", "ASSURANCE_LANDING", "DAGSTER_HOME"):  # the CLI sets them; restored after
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    invoke("generate", "--suppliers", "300", "--start", "2006-01", "--months", "24", "--seed", "3", "--out", str(tmp_path / "L"))
    first = invoke("run", "--landing", str(tmp_path / "L"), "--home", str(home))
    assert "months processed      24 (2006-01-31 .. 2007-12-31)" in first.output
    months = month_keys(date(2006, 1, 31), date(2007, 12, 31))
    assert published_months(home) == months  # features and storefront figures: every month
    assert scored_from_the_first_vintage_on(home, months)
    assert registered_months(home) == months  # the data's 24 months, not the decades up to today

    # The same marketplace two months later: the rerun registers and publishes only the new months.
    invoke("generate", "--suppliers", "300", "--start", "2006-01", "--months", "26", "--seed", "3", "--out", str(tmp_path / "L26"))
    second = invoke("run", "--landing", str(tmp_path / "L26"), "--home", str(home), "--from", "2008-01")
    assert "months processed      2 (2008-01-31 .. 2008-02-29)" in second.output
    months = month_keys(date(2006, 1, 31), date(2008, 2, 29))
    assert registered_months(home) == months
    assert published_months(home) == months
    assert scored_from_the_first_vintage_on(home, months) and published_months(home, "supplier_scores")[-2:] == months[-2:]
