"""A self-contained HTML report of a backtest (one file, figures embedded as PNG).

For risk analysts reading what a policy would have covered and lost over history,
next to the naive baseline, and optionally a what-if comparison of several policies
(e.g. policy v1 against v2 on the same months): then every figure shows every policy,
one colour each, and a side-by-side table gives covered amount, claims, loss, fees,
loss ratio and the top volume quintile's coverage per policy.
Figures are drawn with matplotlib's object API (``Figure``), not ``pyplot``, so
rendering never touches a notebook's or a server's global backend state.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.backtest import BASELINE_NAME, BacktestResult, PolicyComparison

POLICY_COLOURS: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
BASELINE_COLOUR = "#7f7f7f"
FIGURE_IDS: tuple[str, ...] = (
    "coverage_per_month",
    "loss_and_fees_per_month",
    "loss_ratio_per_month",
    "top_volume_quintile",
    "amounts_by_grade",
    "policy_vs_baseline",
)


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(figure_id: str, title: str, fig: Figure) -> str:
    return (
        f'<figure id="{figure_id}"><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{_png(fig)}"/>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


class _View:
    """What the figures draw: one or several policies (and the baseline), keyed by
    policy_version in ``monthly``/``totals``, with each policy's own decisions."""

    def __init__(self, result: BacktestResult, comparison: PolicyComparison | None):
        if comparison is None:
            self.results = {result.policy_version: result}
            self.monthly, self.totals = result.monthly, result.totals
        else:
            self.results = dict(comparison.results)
            self.monthly, self.totals = comparison.monthly, comparison.totals
        self.contenders: list[tuple[str, str, str]] = [
            (version, f"policy {version}", POLICY_COLOURS[i % len(POLICY_COLOURS)])
            for i, version in enumerate(self.results)
        ]
        baseline = result.baseline_version
        if baseline is not None and baseline in set(self.totals["policy_version"]):
            self.contenders.append((baseline, f"baseline {baseline}", BASELINE_COLOUR))

    def series(self, version: str, metric: str) -> pd.Series:
        rows = self.monthly[self.monthly["policy_version"] == version]
        return pd.Series(rows[metric].to_numpy(dtype="float64"),
                         index=pd.to_datetime(rows["as_of_date"]))

    def total(self, version: str, metric: str) -> float:
        return float(self.totals.set_index("policy_version").loc[version, metric])


def _lines(view: _View, metric: str, scale: float, ylabel: str, title: str) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for version, label, colour in view.contenders:
        ax.plot(view.series(version, metric) / scale, label=label, color=colour,
                marker="o", ms=3)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _loss_fee_figure(view: _View) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for version, label, colour in view.contenders:
        ax.plot(view.series(version, "fee_income_usd") / 1e3, color=colour,
                label=f"fees, {label}", marker="o", ms=3)
        ax.plot(view.series(version, "loss_usd") / 1e3, color=colour, ls="--",
                label=f"loss, {label}", marker="x", ms=3)
    ax.set_ylabel("USD k (six-month outcome of the cohort)")
    ax.set_title("Fee income and loss per monthly cohort")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _top_quintile_figure(view: _View) -> Figure:
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    for version, label, colour in view.contenders:
        left.plot(view.series(version, "top_quintile_covered_share"), color=colour,
                  label=label, marker="o", ms=3)
        right.plot(view.series(version, "top_quintile_coverage_usd") / 1e6, color=colour,
                   label=label, marker="o", ms=3)
    left.set_ylim(0, 1.05)
    left.set_ylabel("share covered")
    left.set_title("Top volume quintile: share covered", fontsize=9)
    right.set_ylabel("USD m")
    right.set_title("Top volume quintile: coverage", fontsize=9)
    left.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    fig.suptitle("Largest suppliers (top fifth of 12-month deal value each month)")
    return fig


def _amounts_by_grade_figure(view: _View) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    policies = [(v, label, colour) for v, label, colour in view.contenders if v in view.results]
    covered = {}
    for version, _, _ in policies:
        decisions = view.results[version].decisions
        covered[version] = decisions[(decisions["policy"] == "policy") & decisions["covered"]]
    grades = sorted({g for rows in covered.values() for g in rows["risk_grade"].dropna()})
    width = 0.8 / max(len(policies), 1)
    for i, (version, label, colour) in enumerate(policies):
        rows = covered[version]
        data = [rows.loc[rows["risk_grade"] == g, "trade_assurance_amount_usd"].to_numpy()
                for g in grades]
        present = [(k, d) for k, d in enumerate(data) if len(d)]
        if not present:
            continue
        box = ax.boxplot([d for _, d in present], showfliers=False, widths=width * 0.9,
                         positions=[k + 1 + (i - (len(policies) - 1) / 2) * width
                                    for k, _ in present],
                         patch_artist=True, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set(facecolor=colour, alpha=0.5)
        ax.plot([], [], color=colour, lw=6, alpha=0.5, label=label)
    if grades and any(len(rows) for rows in covered.values()):
        ax.set_xticks(range(1, len(grades) + 1), grades)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no supplier covered", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("Trade Assurance Amount (USD)")
    ax.set_title("Amounts by risk grade (covered supplier-months; grades per policy)")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _policy_vs_baseline_figure(view: _View) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    contenders = view.contenders
    width = 0.8 / len(contenders)
    metrics = ["coverage_usd", "fee_income_usd", "loss_usd", "net_usd"]
    x = np.arange(len(metrics))
    for i, (version, label, colour) in enumerate(contenders):
        left.bar(x + i * width, [view.total(version, m) / 1e6 for m in metrics], width,
                 label=label, color=colour)
    left.set_xticks(x + width * (len(contenders) - 1) / 2, ["coverage", "fees", "loss", "net"])
    left.set_yscale("symlog", linthresh=0.01)
    left.set_ylabel("USD m (sum over cohorts)")
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
    for i, (version, _, colour) in enumerate(contenders):
        row = totals.loc[version]
        values = [
            float(f(row)) if row["coverage_usd"] > 0 and row["fee_income_usd"] > 0 else 0.0
            for f in ratios.values()
        ]
        right.bar(x + i * width, values, width, color=colour)
    right.set_xticks(x + width * (len(contenders) - 1) / 2, list(ratios), fontsize=8)
    right.set_title("Ratios")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle("Policies and baseline")
    return fig


SCORE_COLUMNS: tuple[str, ...] = (
    "breach_probability_6m", "loss_rate_6m", "default_probability_6m",
)


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


def _table(frame: pd.DataFrame, float_format: str = "{:,.2f}") -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="t",
                         float_format=lambda v: float_format.format(v), na_rep="")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:60em;
color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:.8em;margin:.5em 0}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.8em;color:#666}
.note{font-size:.85em;color:#555}
"""


def render_backtest_report(
    result: BacktestResult,
    comparison: PolicyComparison | None = None,
    title: str = "Trade Assurance policy backtest",
) -> str:
    """The report as one HTML string (no external resources)."""
    sections: list[str] = []
    view = _View(result, comparison)
    figures = [
        ("coverage_per_month", "Coverage (sum of amounts) per month",
         _lines(view, "coverage_usd", 1e6, "total coverage (USD m)",
                "Coverage written per month")),
        ("loss_and_fees_per_month", "Fee income and loss per month", _loss_fee_figure(view)),
        ("loss_ratio_per_month", "Loss ratio per month",
         _lines(view, "loss_ratio", 1.0, "loss / fees", "Loss ratio per monthly cohort")),
        ("top_volume_quintile", "Top volume quintile: share covered and coverage per month",
         _top_quintile_figure(view)),
        ("amounts_by_grade", "Distribution of amounts by risk grade",
         _amounts_by_grade_figure(view)),
        ("policy_vs_baseline", "Policies and baseline: totals", _policy_vs_baseline_figure(view)),
    ]
    months = result.monthly["as_of_date"]
    period = f"{months.min()} to {months.max()}" if len(months) else "no months"
    sections.append(
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Policy <code>{html.escape(result.policy_version)}</code>; baseline "
        f"<code>{html.escape(str(result.baseline_version))}</code>; months {html.escape(period)}; "
        f"fees {result.fees.fee_rate:.1%} + ${result.fees.fee_per_order_usd:g}/order, "
        f"limit turnover {result.fees.coverage_turnover_6m}.</p>"
        '<p class="note">Each monthly cohort is followed for six months, so consecutive '
        "cohorts overlap: totals are sums of cohort views, for comparing policies on the same "
        "history, not an accounting P&amp;L. Loss is the covered share of refunds plus, for "
        "a supplier that defaulted, its outstanding amount times the loss given default, "
        "capped at the amount (models.backtest). Months whose outcome window is incomplete "
        "show coverage only. The top volume quintile is the fifth of suppliers with the "
        "largest 12-month deal value in each month.</p>"
    )
    sections.append("<h2>Totals</h2>" + _table(result.totals))
    if comparison is not None:
        sections.append(
            "<h2>What-if: policies side by side</h2>"
            + comparison.side_by_side().reset_index().to_html(
                index=False, escape=True, border=0, classes="t", na_rep="",
                float_format=lambda v: f"{v:,.4g}" if abs(v) < 10 else f"{v:,.0f}")
            + _table(comparison.totals)
        )
    for figure_id, caption, fig in figures:
        sections.append(_img(figure_id, caption, fig))
    for version, each in view.results.items():
        sections.append(f"<h2>By risk grade (policy {html.escape(version)})</h2>"
                        + _table(grade_summary(each), "{:,.4f}"))
    sections.append("<h2>Ineligibility reasons (policy, supplier-months)</h2>"
                    + _table(_code_counts(result, "ineligible_reasons")))
    sections.append("<h2>Amount drivers (policy, supplier-months)</h2>"
                    + _table(_code_counts(result, "amount_drivers")))
    sections.append("<h2>Per month</h2>" + _table(result.monthly))
    return html_document(title, sections, "models.backtest_report")


def html_document(title: str, sections: Sequence[str], generated_by: str) -> str:
    """One self-contained page: the sections, then when and by which module it was generated."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join([*sections, f'<p class="note">Generated {generated} by {html.escape(generated_by)}.</p>'])
        + "</body></html>"
    )


def write_backtest_report(
    result: BacktestResult,
    path: str | Path,
    comparison: PolicyComparison | None = None,
    title: str = "Trade Assurance policy backtest",
) -> Path:
    """Render the report and write it to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_backtest_report(result, comparison, title), encoding="utf-8")
    tmp.replace(path)  # readers never see half a report
    return path


__all__: Sequence[str] = (
    "FIGURE_IDS",
    "grade_summary",
    "render_backtest_report",
    "write_backtest_report",
)
