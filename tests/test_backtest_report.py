"""The backtest HTML report renders, is self-contained and holds every figure."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from models.backtest import compare_policies, run_backtest
from models.backtest_report import FIGURE_IDS, write_backtest_report
from backtest_simulation import simulate_scored_history
from models.policy import V1_POLICY_PATH, Policy

V1 = Policy.from_yaml(V1_POLICY_PATH)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history():
    return simulate_scored_history(n_suppliers=150, months=10, seed=5)


def _embedded_pngs(text: str) -> dict[str, bytes]:
    found = re.findall(
        r'<figure id="(\w+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        text,
    )
    return {figure_id: base64.b64decode(data) for figure_id, data in found}


def test_report_renders_with_all_figures(history, tmp_path: Path):
    policy = V1
    result = run_backtest(history, policy)
    path = write_backtest_report(result, tmp_path / "reports" / "backtest.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert policy.version in text
    pngs = _embedded_pngs(text)
    assert set(pngs) == set(FIGURE_IDS)
    for figure_id, png in pngs.items():
        assert png.startswith(PNG_MAGIC), figure_id
        assert len(png) > 5_000, f"{figure_id} looks empty"
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', text)
    for heading in ("Totals", "By risk grade", "Ineligibility reasons", "Amount drivers",
                    "Per month"):
        assert heading in text
    assert not (tmp_path / "reports" / "backtest.html.tmp").exists()


def test_report_with_what_if_section_and_without_baseline(history, tmp_path: Path):
    policy = V1
    stricter = policy.replace(**{"eligibility.max_breach_probability": 0.05})
    comparison = compare_policies(history, [policy, stricter])
    path = write_backtest_report(comparison.results[policy.version], tmp_path / "a.html",
                                 comparison=comparison)
    text = path.read_text(encoding="utf-8")
    assert "What-if" in text and stricter.version in text
    # A result without a baseline (and a policy covering nobody) still renders.
    nobody = policy.replace(**{"eligibility.eligible_tiers": []})
    alone = run_backtest(history, nobody, baseline=None)
    text = write_backtest_report(alone, tmp_path / "b.html").read_text(encoding="utf-8")
    assert set(_embedded_pngs(text)) == set(FIGURE_IDS)
