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
    assert "what-if variant" in text and stricter.version in text
    # A result without a baseline (and a policy covering nobody) still renders.
    nobody = policy.replace(**{"eligibility.eligible_tiers": []})
    alone = run_backtest(history, nobody, baseline=None)
    text = write_backtest_report(alone, tmp_path / "b.html").read_text(encoding="utf-8")
    assert set(_embedded_pngs(text)) == set(FIGURE_IDS)


# --------------------------------------------------------------------------- read as is
# What a risk committee reads: numbers for people, policies side by side, every variant in
# every figure and table, and the same table as CSV beside the report.

from contextlib import contextmanager  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import pandas as pd  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from models.backtest_report import (  # noqa: E402
    BacktestView,
    backtest_csv_path,
    backtest_figures,
    dollar_tick,
    format_value,
    totals_text,
)

STRICTER = {"eligibility.max_breach_probability": 0.05}
COUNT_TEXT = re.compile(r"^-?\d{1,3}(,\d{3})*$")  # 10,203
DOLLARS_TEXT = re.compile(r"^-?\$\d{1,3}(,\d{3})*$")  # $1,234,567
PERCENT_TEXT = re.compile(r"^\d+(\.\d+)?%$")  # 4.72%


class _Tables(HTMLParser):
    """Every <table> of a page: its header rows and body rows as cell texts, and whether it
    sits in a scrolling wrapper."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._wrapped = False
        self._section = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "table-wrap" in (attrs.get("class") or ""):
            self._wrapped = True
        elif tag == "table":
            self.tables.append({"wrapped": self._wrapped, "head": [], "body": []})
        elif tag in ("thead", "tbody"):
            self._section = "head" if tag == "thead" else "body"
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
            self._span = int(attrs.get("colspan", 1))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.extend(["".join(self._cell).strip()] * self._span)
            self._cell = None
        elif tag == "tr":
            self.tables[-1][self._section].append(self._row)
        elif tag == "div":
            self._wrapped = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(text: str) -> list[dict]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def _big(history: pd.DataFrame) -> pd.DataFrame:
    """The same suppliers trading a thousand times more: totals in the billions, which
    printed as 1.227736e+09 before."""
    out = history.copy()
    for column in ("deal_value_12m_usd", "assured_deal_value_12m_usd", "breach_refund_usd_6m",
                   "forward_order_value_6m_usd", "pre_shipment_refund_usd_6m", "post_delivery_refund_usd_6m"):
        if column in out:
            out[column] = out[column] * 1000
    return out


@pytest.fixture(scope="module")
def what_if(history):
    return compare_policies(history, [V1, V1.replace(**STRICTER)])


@pytest.fixture(scope="module")
def what_if_report(what_if, tmp_path_factory) -> Path:
    """The report of v1 and a stricter variant (and the baseline), with its CSV beside it."""
    return write_backtest_report(what_if.results[V1.version], tmp_path_factory.mktemp("report") / "r.html",
                                 comparison=what_if)


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        (10203.0, "count", "10,203"),  # a count is whole, with thousands separators (not 10,203.00)
        (1234567.391, "usd", "$1,234,567"),  # dollars without cents (rounded)
        (1.227736e9, "usd", "$1,227,736,000"),  # never scientific notation
        (-1500.4, "usd", "-$1,500"),  # a net loss keeps its sign before the dollar
        (0.0472, "percent", "4.72%"),  # a share or ratio as a percentage, three digits
        (0.14, "percent", "14.0%"),
        (0.000627, "number", "0.000627"),  # a loss rate: three significant digits, fixed notation
        (0.0000123, "number", "0.0000123"),  # tiny: still no e-05
        (30.0, "number", "30"),  # a whole number without decimals
        (float("nan"), "usd", "–"),  # an outcome not known yet
        (None, "count", "–"),
        (float("inf"), "percent", "–"),  # a ratio over zero
    ],
)
def test_numbers_are_formatted_for_people(value, kind, expected):
    assert format_value(value, kind) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(0, "$0"), (500, "$500"), (2_500_000, "$2.5m"), (1.5e9, "$1.5bn"), (-20_000, "-$20k")],
)
def test_dollar_axis_ticks_have_units(value, expected):
    assert dollar_tick(value) == expected


def test_report_tables_print_counts_money_and_rates_for_people(what_if_report):
    text = what_if_report.read_text(encoding="utf-8")
    tables = _tables(text)
    totals = next(t for t in tables if t["body"] and t["body"][0][0] == "Months")
    rows = {row[0]: row[1:] for row in totals["body"]}
    assert len(rows["Claims"]) == 3  # v1, the variant, the baseline
    for label in ("Months", "Suppliers scored", "Suppliers covered", "Claims", "Top fifth: covered"):
        assert all(COUNT_TEXT.match(v) for v in rows[label]), (label, rows[label])
    for label in ("Coverage", "Loss", "Fee income", "Net (fees - loss)", "Top fifth: coverage"):
        assert all(DOLLARS_TEXT.match(v) for v in rows[label]), (label, rows[label])
    for label in ("Loss ratio (loss / fees)", "Top fifth: share covered"):
        assert all(PERCENT_TEXT.match(v) for v in rows[label]), (label, rows[label])
    grades = [t for t in tables if t["head"] and t["head"][0][0] == "grade"]
    assert len(grades) == 2  # one per policy
    for grade in grades:
        header = grade["head"][0]
        for row in grade["body"]:
            cells = dict(zip(header, row, strict=True))
            assert DOLLARS_TEXT.match(cells["coverage"]) and COUNT_TEXT.match(cells["covered"]), cells
    assert "e+" not in re.sub(r'src="data:[^"]*"', "", text)


def test_every_table_scrolls_inside_the_page_column(what_if_report):
    text = what_if_report.read_text(encoding="utf-8")
    tables = _tables(text)
    assert len(tables) >= 6
    assert all(t["wrapped"] for t in tables)
    assert re.search(r"\.table-wrap\{[^}]*max-width:100%[^}]*overflow-x:auto", text)


def test_per_month_table_is_side_by_side(history, what_if, what_if_report):
    text = what_if_report.read_text(encoding="utf-8")
    monthly = next(t for t in _tables(text) if t["head"] and t["head"][-1][0] == "month")
    months = sorted(str(m.date()) for m in pd.to_datetime(history["as_of_date"]).unique())
    # One row per month (each once), then the total: not every policy's months, then the baseline's.
    assert [row[0] for row in monthly["body"]] == [*months, "total"]
    groups, labels = monthly["head"]
    view = BacktestView(what_if.results[V1.version], what_if)
    assert len(view.contenders) == 3
    for start in range(2, len(labels), 3):
        # each measure: one column per policy, adjacent, in the same order
        assert labels[start:start + 3] == [c.label for c in view.contenders]
        assert len(set(groups[start:start + 3])) == 1


def test_a_variant_is_in_every_figure_legend(what_if):
    view = BacktestView(what_if.results[V1.version], what_if)
    variant, baseline = view.contenders[1], view.contenders[2]
    assert variant.label != view.contenders[0].label
    figures = backtest_figures(view)
    assert [figure_id for figure_id, _, _ in figures] == list(FIGURE_IDS)
    for figure_id, _, fig in figures:
        legend_texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        assert any(variant.label in t for t in legend_texts), (figure_id, legend_texts)
        if figure_id != "amounts_by_grade":  # the baseline grades nobody
            assert any(baseline.label in t for t in legend_texts), (figure_id, legend_texts)


def test_csv_beside_the_report_has_each_policys_columns(history, what_if, what_if_report):
    report = what_if_report
    csv = backtest_csv_path(report)
    assert csv == report.with_name("r.csv") and csv.name in report.read_text(encoding="utf-8")
    table = pd.read_csv(csv)
    versions = list(what_if.totals["policy_version"])
    assert len(versions) == 3
    for metric in ("coverage_usd", "claims", "loss_usd", "fee_income_usd", "loss_ratio",
                   "top_quintile_covered_share"):
        columns = [f"{metric}[{v}]" for v in versions]
        assert set(columns) <= set(table.columns)
        # adjacent: a metric's policies next to each other
        positions = [list(table.columns).index(c) for c in columns]
        assert positions == list(range(positions[0], positions[0] + 3))
    assert list(table["as_of_date"]) == [*sorted({str(d.date()) for d in pd.to_datetime(history["as_of_date"])}), "total"]
    totals = what_if.totals.set_index("policy_version")
    total = table.set_index("as_of_date").loc["total"]
    for version in versions:
        assert total[f"claims[{version}]"] == totals.loc[version, "claims"]
        assert total[f"coverage_usd[{version}]"] == pytest.approx(totals.loc[version, "coverage_usd"], abs=0.01)
    # counts are whole numbers, not 24.0 (a month without outcomes: empty)
    claims = table[f"claims[{versions[0]}]"].dropna()
    assert len(claims) and (claims == claims.round()).all()
    assert pd.read_csv(csv, dtype=str)[f"claims[{versions[0]}]"].dropna().str.fullmatch(r"\d+").all()


def test_totals_for_the_terminal_have_no_scientific_notation(history):
    big = run_backtest(_big(history), V1)
    assert big.totals["coverage_usd"].max() > 1e8
    text = totals_text(big)
    assert "e+" not in text and "e-" not in text
    assert re.search(r"\$\d{1,3}(,\d{3}){2,}", text)


def test_backtest_cli_prints_formatted_totals_and_the_csv(history, tmp_path: Path, monkeypatch):
    import models.backtest
    import warehouse
    import warehouse.landing_metadata
    from pipelines.cli import main

    @contextmanager
    def no_warehouse(*_args, **_kwargs):
        yield None

    monkeypatch.setenv("ASSURANCE_HOME", str(tmp_path))  # restored afterwards (the CLI sets it)
    monkeypatch.setattr(warehouse, "open_warehouse", no_warehouse)
    monkeypatch.setattr(warehouse.landing_metadata, "read_data_horizon", lambda _con: None)
    monkeypatch.setattr(models.backtest, "load_scored_history", lambda _con, _horizon: _big(history))
    variant = tmp_path / "stricter.yaml"
    variant.write_text(__import__("yaml").safe_dump(V1.replace(**STRICTER).to_dict()))
    result = CliRunner().invoke(main, ["backtest", "--home", str(tmp_path), "--policy", str(variant)])
    assert result.exit_code == 0, result.output
    assert "e+" not in result.output
    assert re.search(r"Coverage +\$\d{1,3}(,\d{3}){2,}", result.output)
    csv = re.search(r"\(CSV\): (\S+\.csv)", result.output)
    assert csv and Path(csv.group(1)).exists()
    assert V1.replace(**STRICTER).version in result.output
