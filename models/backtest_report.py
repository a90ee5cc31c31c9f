"""A self-contained HTML report of a backtest (one file, figures embedded as PNG), and
the same figures as CSV beside it.

For risk analysts reading what a policy would have covered and lost over history, next
to the naive baseline, and optionally what-if variants (e.g. policy v1 against v2 on the
same months): every figure draws every policy, one colour each, and every table has a
column per policy, side by side. The page is rendered from jinja2 templates in
``models/templates``; numbers are formatted for people (counts with thousands
separators, dollars without cents, ratios as percentages). Figures are drawn with
matplotlib's object API (``Figure``), not ``pyplot``, so rendering never touches a
notebook's or a server's global backend state.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from models.backtest import BacktestResult, PolicyComparison

POLICY_COLOURS: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
BASELINE_COLOUR = "#7f7f7f"
BASELINE_LABEL = "baseline"
FIGURE_IDS: tuple[str, ...] = (
    "coverage_per_month",
    "loss_and_fees_per_month",
    "loss_ratio_per_month",
    "top_volume_quintile",
    "amounts_by_grade",
    "policy_vs_baseline",
)
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

# --------------------------------------------------------------------------- numbers

COUNT, USD, PERCENT, NUMBER, TEXT = "count", "usd", "percent", "number", "text"
COUNT_COLUMNS = frozenset({
    "months", "months_with_outcomes", "suppliers_scored", "suppliers_covered", "claims",
    "top_quintile_suppliers", "top_quintile_covered", "supplier_months", "covered",
})
PERCENT_COLUMNS = frozenset({"realised_breach_rate"})
# What people read for each column name (the CSV keeps the names).
METRIC_LABELS: dict[str, str] = {
    "months": "Months",
    "months_with_outcomes": "Months with outcomes",
    "suppliers_scored": "Suppliers scored",
    "suppliers_covered": "Suppliers covered",
    "coverage_usd": "Coverage",
    "claims": "Claims",
    "loss_usd": "Loss",
    "default_loss_usd": "of which default loss",
    "fee_income_usd": "Fee income",
    "net_usd": "Net (fees - loss)",
    "loss_ratio": "Loss ratio (loss / fees)",
    "top_quintile_suppliers": "Top fifth: suppliers",
    "top_quintile_covered": "Top fifth: covered",
    "top_quintile_covered_share": "Top fifth: share covered",
    "top_quintile_coverage_usd": "Top fifth: coverage",
}
TOTAL_METRICS: tuple[str, ...] = tuple(METRIC_LABELS)
# Per month, side by side: one column per policy for each (suppliers_scored and whether the
# outcome window is complete are the same for every policy: one column each).
MONTH_METRICS: tuple[str, ...] = (
    "suppliers_covered", "coverage_usd", "claims", "loss_usd", "fee_income_usd", "net_usd",
    "loss_ratio", "top_quintile_covered_share", "top_quintile_coverage_usd",
)
# The HTML per-month table keeps to what a committee compares; the CSV has MONTH_METRICS.
MONTH_TABLE_METRICS: tuple[str, ...] = (
    "coverage_usd", "claims", "loss_usd", "fee_income_usd", "loss_ratio", "top_quintile_covered_share",
)
MISSING = "–"  # an outcome not known yet (window incomplete) or a ratio over zero


def value_kind(column: str) -> str:
    """How a column's values are printed, from its name."""
    if column in COUNT_COLUMNS or column.startswith(("months_", "suppliers_", "supplier_months")):
        return COUNT
    if column.endswith("_usd"):
        return USD
    if column in PERCENT_COLUMNS or column.endswith(("_share", "_ratio", "probability_6m")):
        return PERCENT
    return NUMBER


def format_value(value: object, kind: str) -> str:
    """``value`` for people: 10,203 / $1,234,567 / 4.7% / 0.00450; never scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if kind == TEXT or isinstance(value, (str, bool, np.bool_)):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return MISSING
    if kind == COUNT:
        return f"{number:,.0f}"
    if kind == USD:
        return f"-${-number:,.0f}" if number < 0 else f"${number:,.0f}"
    if kind == PERCENT:
        return _significant(100 * number) + "%"
    return _significant(number)


def _significant(number: float, digits: int = 3) -> str:
    """Three significant digits in fixed notation (whole numbers from 100 up)."""
    if number == 0:
        return "0"
    if abs(number) >= 100 or number.is_integer():
        return f"{number:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(number))))
    return f"{number:,.{decimals}f}"


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its numeric columns as text formatted by ``value_kind`` (for a terminal
    or Markdown)."""
    out = frame.copy()
    for column in frame.select_dtypes("number").columns:
        kind = value_kind(str(column))
        out[column] = [format_value(v, kind) for v in frame[column]]
    return out


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Cell:
    text: str
    colspan: int = 1
    text_column: bool = False
    tooltip: str = ""
    colour: str = ""


@dataclass(frozen=True)
class Row:
    cells: list[Cell]
    total: bool = False


@dataclass(frozen=True)
class Table:
    """What table.html.j2 draws: header rows (cells may span columns) and body rows."""

    header_rows: list[list[Cell]]
    rows: list[Row]

    def html(self) -> Markup:
        return Markup(TEMPLATES.get_template("table.html.j2").render(table=self))


def frame_table(frame: pd.DataFrame, float_format: str | None = None, labels: dict[str, str] | None = None) -> Table:
    """One column per frame column, headed by ``labels`` (default: the column name, which a
    label keeps as its tooltip); numbers formatted by ``value_kind`` (or ``float_format`` for
    every float, as the monitoring report asks)."""
    labels = labels or {}
    kinds = {}
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        kinds[column] = value_kind(str(column)) if numeric else TEXT
    header = [Cell(labels.get(c, str(c)), text_column=kinds[c] == TEXT, tooltip=str(c) if c in labels else "")
              for c in frame.columns]
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            kind = kinds[column]
            if float_format is not None and isinstance(value, float) and kind != COUNT and not math.isnan(value):
                text = float_format.format(value)
            else:
                text = format_value(value, kind)
            cells.append(Cell(text, text_column=kind == TEXT))
        rows.append(Row(cells))
    return Table([header], rows)


def _table(frame: pd.DataFrame, float_format: str | None = None) -> str:
    return str(frame_table(frame, float_format).html())


# --------------------------------------------------------------------------- contenders


@dataclass(frozen=True)
class Contender:
    """A policy (or the baseline) in the report: its version, its short label in table
    headers and legends, and its colour in every figure."""

    version: str
    label: str
    colour: str
    baseline: bool = False


class BacktestView:
    """What the tables and figures show: one or several policies (and the baseline), keyed
    by policy_version in ``monthly``/``totals``, with each policy's own decisions."""

    def __init__(self, result: BacktestResult, comparison: PolicyComparison | None = None):
        if comparison is None:
            self.results = {result.policy_version: result}
            self.monthly, self.totals = result.monthly, result.totals
        else:
            self.results = dict(comparison.results)
            self.monthly, self.totals = comparison.monthly, comparison.totals
        self.fees = result.fees
        labels = _short_labels(list(self.results))
        self.contenders: list[Contender] = [
            Contender(version, labels[version], POLICY_COLOURS[i % len(POLICY_COLOURS)])
            for i, version in enumerate(self.results)
        ]
        baseline = result.baseline_version
        if baseline is not None and baseline in set(self.totals["policy_version"]):
            self.contenders.append(Contender(baseline, BASELINE_LABEL, BASELINE_COLOUR, baseline=True))

    @property
    def policies(self) -> list[Contender]:
        return [c for c in self.contenders if not c.baseline]

    def months(self) -> list:
        return sorted(set(self.monthly["as_of_date"]))

    def series(self, version: str, metric: str) -> pd.Series:
        rows = self.monthly[self.monthly["policy_version"] == version]
        return pd.Series(rows[metric].to_numpy(dtype="float64"), index=pd.to_datetime(rows["as_of_date"]))

    def total(self, version: str, metric: str) -> float:
        return float(self.totals.set_index("policy_version").loc[version, metric])


def _short_labels(versions: list[str]) -> dict[str, str]:
    """``name-semver`` (e.g. tap-2.1.0) when that tells the policies apart, else the full
    version (which adds the content hash)."""
    short = {v: v.split("+", 1)[0] for v in versions}
    if len(set(short.values())) == len(versions) and BASELINE_LABEL not in short.values():
        return short
    return {v: v for v in versions}


def contenders_table(view: BacktestView) -> Table:
    rows = []
    for i, c in enumerate(view.contenders):
        role = "baseline: a flat share of 12-month deal value, whatever the risk" if c.baseline else (
            "current policy" if i == 0 else "what-if variant")
        rows.append(Row([Cell(c.label, text_column=True, colour=c.colour), Cell(c.version, text_column=True),
                         Cell(role, text_column=True)]))
    return Table([[Cell("label", text_column=True), Cell("policy_version", text_column=True),
                   Cell("role", text_column=True)]], rows)


def totals_side_by_side(view: BacktestView) -> pd.DataFrame:
    """One row per ``TOTAL_METRICS`` metric, one column per contender version."""
    totals = view.totals.set_index("policy_version")
    table = totals.loc[[c.version for c in view.contenders], list(TOTAL_METRICS)].T
    return table.rename_axis("metric").rename_axis(None, axis=1)


def totals_table(view: BacktestView) -> Table:
    table = totals_side_by_side(view)
    header = [Cell("", text_column=True)] + [Cell(c.label, tooltip=c.version) for c in view.contenders]
    rows = [
        Row([Cell(METRIC_LABELS[metric], text_column=True, tooltip=metric)]
            + [Cell(format_value(table.loc[metric, c.version], value_kind(metric))) for c in view.contenders])
        for metric in table.index
    ]
    return Table([header], rows)


def monthly_side_by_side(view: BacktestView, metrics: Sequence[str] = MONTH_METRICS) -> pd.DataFrame:
    """One row per month, then a ``total`` row: ``as_of_date``, ``outcomes_complete``,
    ``suppliers_scored``, then for each metric one column per contender,
    ``<metric>[<policy_version>]``, adjacent."""
    first = view.contenders[0].version
    shared = view.monthly[view.monthly["policy_version"] == first].set_index("as_of_date")
    out = pd.DataFrame({"as_of_date": [str(m) for m in shared.index],
                        "outcomes_complete": shared["outcomes_complete"].to_numpy(),
                        "suppliers_scored": shared["suppliers_scored"].to_numpy()})
    by_version = {c.version: view.monthly[view.monthly["policy_version"] == c.version].set_index("as_of_date")
                  for c in view.contenders}
    totals = view.totals.set_index("policy_version")
    # The total row sums supplier-months; its outcomes are those of the complete months.
    total_row: dict[str, object] = {"as_of_date": "total", "outcomes_complete": None,
                                    "suppliers_scored": totals.loc[first, "suppliers_scored"]}
    for metric in metrics:
        for c in view.contenders:
            column = f"{metric}[{c.version}]"
            out[column] = by_version[c.version][metric].reindex(shared.index).to_numpy()
            total_row[column] = totals.loc[c.version, metric]
    wide = pd.concat([out, pd.DataFrame([total_row])], ignore_index=True)
    # Counts stay whole numbers (a month without outcomes: empty), dollars keep their cents.
    for column in wide.columns[1:]:
        kind = value_kind(column.split("[", 1)[0])
        if kind == COUNT:
            wide[column] = pd.to_numeric(wide[column]).round().astype("Int64")
        elif kind == USD:
            wide[column] = pd.to_numeric(wide[column]).round(2)
    return wide


def monthly_table(view: BacktestView) -> Table:
    wide = monthly_side_by_side(view, MONTH_TABLE_METRICS)
    n = len(view.contenders)
    groups = [Cell("", text_column=True), Cell("")] + [
        Cell(METRIC_LABELS[m], colspan=n, tooltip=m) for m in MONTH_TABLE_METRICS]
    labels = [Cell("month", text_column=True), Cell("scored")] + [
        Cell(c.label, tooltip=c.version) for _ in MONTH_TABLE_METRICS for c in view.contenders]
    rows = []
    for record in wide.to_dict("records"):
        total = record["as_of_date"] == "total"
        cells = [Cell(record["as_of_date"], text_column=True),
                 Cell(format_value(record["suppliers_scored"], COUNT))]
        for metric in MONTH_TABLE_METRICS:
            cells += [Cell(format_value(record[f"{metric}[{c.version}]"], value_kind(metric)))
                      for c in view.contenders]
        rows.append(Row(cells, total=total))
    return Table([groups, labels], rows)


SCORE_COLUMNS: tuple[str, ...] = (
    "breach_probability_6m", "loss_rate_6m", "default_probability_6m",
)
GRADE_LABELS: dict[str, str] = {
    "risk_grade": "grade",
    "supplier_months": "supplier-months",
    "covered": "covered",
    "mean_breach_probability_6m": "mean breach probability",
    "mean_loss_rate_6m": "mean loss rate",
    "mean_default_probability_6m": "mean default probability",
    "coverage_usd": "coverage",
    "realised_breach_rate": "realised breach rate",
    "loss_usd": "loss",
    "fee_income_usd": "fee income",
}


def grade_summary(result: BacktestResult) -> pd.DataFrame:
    """Per risk grade: supplier-months, covered, mean scores (those the history has),
    realised breach rate, money."""
    mine = result.decisions[result.decisions["policy"] == "policy"]
    known = mine[mine["outcome_known"]]
    scores = {f"mean_{c}": (c, "mean") for c in SCORE_COLUMNS if c in mine.columns}
    summary = mine.groupby("risk_grade").agg(
        supplier_months=("supplier_id", "size"),
        covered=("covered", "sum"),
        **scores,
        coverage_usd=("trade_assurance_amount_usd", "sum"),
    )
    outcomes = known.groupby("risk_grade").agg(
        realised_breach_rate=("breach_6m", lambda s: float(pd.Series(s, dtype="float64").mean())),
        loss_usd=("loss_usd", "sum"),
        fee_income_usd=("fee_income_usd", "sum"),
    )
    return summary.join(outcomes).reset_index()


def _code_counts(result: BacktestResult, column: str) -> pd.DataFrame:
    mine = result.decisions[result.decisions["policy"] == "policy"]
    counts = mine[column].explode().dropna().value_counts()
    return counts.rename_axis("code").rename("supplier_months").reset_index()


def code_counts_side_by_side(view: BacktestView, column: str) -> pd.DataFrame:
    """Supplier-months per reason code (``column``: ineligible_reasons or amount_drivers),
    one column per policy (a code a policy never gave: 0)."""
    counts = [
        _code_counts(view.results[c.version], column).set_index("code")["supplier_months"].rename(c.label)
        for c in view.policies
    ]
    table = pd.concat(counts, axis=1).fillna(0).astype("int64") if counts else pd.DataFrame()
    return table.sort_values(list(table.columns), ascending=False).rename_axis("code")


def _code_table(view: BacktestView, column: str) -> Table:
    table = code_counts_side_by_side(view, column)
    header = [Cell("code", text_column=True)] + [Cell(c.label, tooltip=c.version) for c in view.policies]
    rows = [Row([Cell(str(code), text_column=True)] + [Cell(format_value(v, COUNT)) for v in values])
            for code, values in zip(table.index, table.to_numpy(), strict=True)]
    return Table([header], rows)


# --------------------------------------------------------------------------- figures


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(figure_id: str, title: str, fig: Figure) -> str:
    """One figure as an HTML ``<figure>`` with the PNG inline (also used by the monitoring report)."""
    return str(Markup('<figure id="{}"><img alt="{}" src="data:image/png;base64,{}"/>'
                      "<figcaption>{}</figcaption></figure>").format(figure_id, title, _png(fig), title))


def dollar_tick(value: float, _position: object = None) -> str:
    """An axis tick in dollars with a unit: $0, $500k, $2.5m, $1.2bn."""
    size = abs(value)
    for threshold, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if size >= threshold:
            return f"{'-' if value < 0 else ''}${size / threshold:g}{unit}"
    return f"{'-' if value < 0 else ''}${size:g}"


def _dollar_axis(ax) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(dollar_tick))


def _month_axis(ax) -> None:
    # Month ends over two or three years: concise labels that do not run into each other.
    locator = AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _lines(view: BacktestView, metric: str, ylabel: str, title: str, kind: str) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for c in view.contenders:
        ax.plot(view.series(c.version, metric), label=c.label, color=c.colour, marker="o", ms=3)
    if kind == PERCENT:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    else:
        _dollar_axis(ax)
    _month_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _loss_fee_figure(view: BacktestView) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for c in view.contenders:
        ax.plot(view.series(c.version, "fee_income_usd"), color=c.colour,
                label=f"fees, {c.label}", marker="o", ms=3)
        ax.plot(view.series(c.version, "loss_usd"), color=c.colour, ls="--",
                label=f"loss, {c.label}", marker="x", ms=3)
    _dollar_axis(ax)
    _month_axis(ax)
    ax.set_ylabel("six-month outcome of the cohort")
    ax.set_title("Fee income and loss per monthly cohort")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _top_quintile_figure(view: BacktestView) -> Figure:
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    for c in view.contenders:
        left.plot(view.series(c.version, "top_quintile_covered_share"), color=c.colour,
                  label=c.label, marker="o", ms=3)
        right.plot(view.series(c.version, "top_quintile_coverage_usd"), color=c.colour,
                   label=c.label, marker="o", ms=3)
    left.set_ylim(0, 1.05)
    left.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    left.set_ylabel("share covered")
    left.set_title("Top fifth: share covered", fontsize=9)
    _dollar_axis(right)
    right.set_ylabel("coverage")
    right.set_title("Top fifth: coverage", fontsize=9)
    left.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        _month_axis(ax)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("Largest suppliers (top fifth of 12-month deal value each month)")
    return fig


def _amounts_by_grade_figure(view: BacktestView) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    policies = view.policies  # the baseline grades nobody
    covered = {}
    for c in policies:
        decisions = view.results[c.version].decisions
        covered[c.version] = decisions[(decisions["policy"] == "policy") & decisions["covered"]]
    grades = sorted({g for rows in covered.values() for g in rows["risk_grade"].dropna()})
    width = 0.8 / max(len(policies), 1)
    for i, c in enumerate(policies):
        # Every policy has its legend entry, even one that covered nobody.
        ax.plot([], [], color=c.colour, lw=6, alpha=0.5, label=c.label)
        rows = covered[c.version]
        data = [rows.loc[rows["risk_grade"] == g, "trade_assurance_amount_usd"].to_numpy() for g in grades]
        present = [(k, d) for k, d in enumerate(data) if len(d)]
        if not present:
            continue
        box = ax.boxplot([d for _, d in present], showfliers=False, widths=width * 0.9,
                         positions=[k + 1 + (i - (len(policies) - 1) / 2) * width for k, _ in present],
                         patch_artist=True, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set(facecolor=c.colour, alpha=0.5)
    if grades and any(len(rows) for rows in covered.values()):
        ax.set_xticks(range(1, len(grades) + 1), grades)
        ax.set_yscale("log")
        _dollar_axis(ax)
    else:
        ax.text(0.5, 0.5, "no supplier covered", ha="center", va="center", transform=ax.transAxes)
    ax.legend(fontsize=7)
    ax.set_ylabel("Trade Assurance Amount")
    ax.set_title("Amounts by risk grade (covered supplier-months; grades per policy)")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _policy_vs_baseline_figure(view: BacktestView) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    contenders = view.contenders
    width = 0.8 / len(contenders)
    metrics = ["coverage_usd", "fee_income_usd", "loss_usd", "net_usd"]
    x = np.arange(len(metrics))
    for i, c in enumerate(contenders):
        left.bar(x + i * width, [view.total(c.version, m) for m in metrics], width,
                 label=c.label, color=c.colour)
    left.set_xticks(x + width * (len(contenders) - 1) / 2, ["coverage", "fees", "loss", "net"])
    left.set_yscale("symlog", linthresh=1e4)
    _dollar_axis(left)
    left.set_ylabel("sum over cohorts")
    left.set_title("Totals")
    left.legend(fontsize=7)
    left.grid(alpha=0.3, axis="y")
    # Ratios: what each dollar of coverage earned and cost.
    ratios = {
        "loss / fees": lambda t: t["loss_usd"] / t["fee_income_usd"],
        "loss per $100\ncoverage": lambda t: 100 * t["loss_usd"] / t["coverage_usd"],
        "fees per $100\ncoverage": lambda t: 100 * t["fee_income_usd"] / t["coverage_usd"],
    }
    x = np.arange(len(ratios))
    totals = view.totals.set_index("policy_version")
    for i, c in enumerate(contenders):
        row = totals.loc[c.version]
        values = [
            float(f(row)) if row["coverage_usd"] > 0 and row["fee_income_usd"] > 0 else 0.0
            for f in ratios.values()
        ]
        right.bar(x + i * width, values, width, color=c.colour, label=c.label)
    right.set_xticks(x + width * (len(contenders) - 1) / 2, list(ratios), fontsize=8)
    right.set_title("Ratios")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle("Policies and baseline")
    return fig


def backtest_figures(view: BacktestView) -> list[tuple[str, str, Figure]]:
    """(figure id, caption, figure) for every figure of the report, in ``FIGURE_IDS`` order."""
    return [
        ("coverage_per_month", "Coverage (sum of amounts) per month",
         _lines(view, "coverage_usd", "sum of amounts", "Coverage written per month", USD)),
        ("loss_and_fees_per_month", "Fee income and loss per month", _loss_fee_figure(view)),
        ("loss_ratio_per_month", "Loss ratio per month",
         _lines(view, "loss_ratio", "loss / fees", "Loss ratio per monthly cohort", PERCENT)),
        ("top_volume_quintile", "Top fifth by deal value: share covered and coverage per month",
         _top_quintile_figure(view)),
        ("amounts_by_grade", "Distribution of amounts by risk grade", _amounts_by_grade_figure(view)),
        ("policy_vs_baseline", "Policies and baseline: totals", _policy_vs_baseline_figure(view)),
    ]


# --------------------------------------------------------------------------- page


def _generated() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_backtest_report(
    result: BacktestResult,
    comparison: PolicyComparison | None = None,
    title: str = "Trade Assurance policy backtest",
    csv_name: str = "the CSV export",
) -> str:
    """The report as one HTML string (no external resources)."""
    view = BacktestView(result, comparison)
    months = view.months()
    fees = result.fees
    return TEMPLATES.get_template("backtest_report.html.j2").render(
        title=title,
        period=f"{months[0]} to {months[-1]}" if months else "none",
        fee_rate=format_value(fees.fee_rate, PERCENT),
        fee_per_order=format_value(fees.fee_per_order_usd, USD),
        turnover="none" if fees.coverage_turnover_6m is None else f"{fees.coverage_turnover_6m:g} per six months",
        csv_name=csv_name,
        contenders_table=contenders_table(view).html(),
        totals_table=totals_table(view).html(),
        figures=[{"id": figure_id, "caption": caption, "png": _png(fig)}
                 for figure_id, caption, fig in backtest_figures(view)],
        monthly_table=monthly_table(view).html(),
        grade_tables=[{"version": c.version, "table": frame_table(grade_summary(view.results[c.version]), labels=GRADE_LABELS).html()}
                      for c in view.policies],
        code_tables=[
            {"heading": "Ineligibility reasons (supplier-months)",
             "table": _code_table(view, "ineligible_reasons").html()},
            {"heading": "Amount drivers (supplier-months)", "table": _code_table(view, "amount_drivers").html()},
        ],
        generated=_generated(),
        generated_by="models.backtest_report",
    )


def html_document(title: str, sections: Sequence[str], generated_by: str) -> str:
    """One self-contained page: the sections (HTML), then when and by which module it was generated."""
    return TEMPLATES.get_template("report_page.html.j2").render(
        title=title, sections=[Markup(s) for s in sections], generated=_generated(), generated_by=generated_by)


def backtest_csv_path(report_path: str | Path) -> Path:
    """Where the CSV export of a report goes: beside it, same name."""
    return Path(report_path).with_suffix(".csv")


def totals_text(result: BacktestResult, comparison: PolicyComparison | None = None) -> str:
    """The totals side by side as plain text for a terminal, formatted as in the report."""
    view = BacktestView(result, comparison)
    table = totals_side_by_side(view)
    shown = pd.DataFrame(
        {c.label: [format_value(table.loc[m, c.version], value_kind(m)) for m in table.index] for c in view.contenders},
        index=[METRIC_LABELS[m] for m in table.index],
    )
    key = "\n".join(f"  {c.label}: {c.version}" for c in view.contenders if c.label != c.version)
    return shown.to_string() + (f"\n{key}" if key else "")


def _replace_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # readers never see half a file


def write_backtest_report(
    result: BacktestResult,
    path: str | Path,
    comparison: PolicyComparison | None = None,
    title: str = "Trade Assurance policy backtest",
) -> Path:
    """Render the report to ``path`` and its per-month side-by-side table with a total row
    to ``backtest_csv_path(path)`` (parents created); returns the report's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    csv_path = backtest_csv_path(path)
    _replace_atomically(csv_path, monthly_side_by_side(BacktestView(result, comparison)).to_csv(index=False))
    _replace_atomically(path, render_backtest_report(result, comparison, title, csv_name=csv_path.name))
    return path


__all__: Sequence[str] = (
    "FIGURE_IDS",
    "BacktestView",
    "backtest_csv_path",
    "backtest_figures",
    "format_value",
    "formatted",
    "grade_summary",
    "monthly_side_by_side",
    "render_backtest_report",
    "totals_text",
    "write_backtest_report",
)
