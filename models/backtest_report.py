"""A self-contained HTML report of a backtest (one file, figures embedded as PNG).

For risk analysts reading what a policy would have covered and lost over history,
next to the naive baseline, and optionally a what-if comparison of several policies.
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

POLICY_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#7f7f7f"
FIGURE_IDS: tuple[str, ...] = (
    "coverage_per_month",
    "loss_and_fees_per_month",
    "loss_ratio_per_month",
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


def _series(monthly: pd.DataFrame, policy: str, metric: str) -> pd.Series:
    rows = monthly[monthly["policy"] == policy]
    return pd.Series(rows[metric].to_numpy(dtype="float64"),
                     index=pd.to_datetime(rows["as_of_date"]))


def _contenders(result: BacktestResult) -> list[tuple[str, str, str]]:
    out = [("policy", f"policy {result.policy_version}", POLICY_COLOUR)]
    if result.baseline_version is not None:
        out.append((BASELINE_NAME, f"baseline {result.baseline_version}", BASELINE_COLOUR))
    return out


def _coverage_figure(result: BacktestResult) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for name, label, colour in _contenders(result):
        ax.plot(_series(result.monthly, name, "coverage_usd") / 1e6, label=label,
                color=colour, marker="o", ms=3)
    ax.set_ylabel("total coverage (USD m)")
    ax.set_title("Coverage written per month")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _loss_fee_figure(result: BacktestResult) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    for name, label, colour in _contenders(result):
        ax.plot(_series(result.monthly, name, "fee_income_usd") / 1e3, color=colour,
                label=f"fees, {label}", marker="o", ms=3)
        ax.plot(_series(result.monthly, name, "loss_usd") / 1e3, color=colour, ls="--",
                label=f"loss, {label}", marker="x", ms=3)
    ax.set_ylabel("USD k (six-month outcome of the cohort)")
    ax.set_title("Fee income and loss per monthly cohort")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _loss_ratio_figure(result: BacktestResult) -> Figure:
    fig = Figure(figsize=(8, 3.0))
    ax = fig.subplots()
    for name, label, colour in _contenders(result):
        ax.plot(_series(result.monthly, name, "loss_ratio"), color=colour, label=label,
                marker="o", ms=3)
    ax.set_ylabel("loss / fees")
    ax.set_title("Loss ratio per monthly cohort")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _amounts_by_grade_figure(result: BacktestResult) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    decisions = result.decisions
    covered = decisions[(decisions["policy"] == "policy") & decisions["covered"]]
    grades = sorted(covered["risk_grade"].dropna().unique())
    data = [covered.loc[covered["risk_grade"] == g, "trade_assurance_amount_usd"].to_numpy()
            for g in grades]
    if grades:
        ax.boxplot(data, showfliers=False)
        labels = [f"{g}\n(n={len(d)})" for g, d in zip(grades, data, strict=True)]
        ax.set_xticks(range(1, len(grades) + 1), labels)
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no supplier covered", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("Trade Assurance Amount (USD)")
    ax.set_title("Distribution of amounts by risk grade (covered supplier-months)")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _policy_vs_baseline_figure(result: BacktestResult) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    contenders = _contenders(result)
    width = 0.8 / len(contenders)
    totals = result.totals.set_index("policy")
    metrics = ["coverage_usd", "fee_income_usd", "loss_usd", "net_usd"]
    x = np.arange(len(metrics))
    for i, (name, label, colour) in enumerate(contenders):
        left.bar(x + i * width, [totals.loc[name, m] / 1e6 for m in metrics], width,
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
    for i, (name, _, colour) in enumerate(contenders):
        row = totals.loc[name]
        values = [
            float(f(row)) if row["coverage_usd"] > 0 and row["fee_income_usd"] > 0 else 0.0
            for f in ratios.values()
        ]
        right.bar(x + i * width, values, width, color=colour)
    right.set_xticks(x + width * (len(contenders) - 1) / 2, list(ratios), fontsize=8)
    right.set_title("Ratios")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle("Policy vs baseline")
    return fig


def grade_summary(result: BacktestResult) -> pd.DataFrame:
    """Per risk grade: supplier-months, covered, mean score, realised breach rate, money."""
    mine = result.decisions[result.decisions["policy"] == "policy"]
    known = mine[mine["outcome_known"]]
    summary = mine.groupby("risk_grade").agg(
        supplier_months=("supplier_id", "size"),
        covered=("covered", "sum"),
        mean_breach_probability=("breach_probability_6m", "mean"),
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
    figures = [
        ("coverage_per_month", "Coverage (sum of amounts) per month", _coverage_figure(result)),
        ("loss_and_fees_per_month", "Fee income and loss per month", _loss_fee_figure(result)),
        ("loss_ratio_per_month", "Loss ratio per month", _loss_ratio_figure(result)),
        ("amounts_by_grade", "Distribution of amounts by risk grade",
         _amounts_by_grade_figure(result)),
        ("policy_vs_baseline", "Policy vs baseline totals", _policy_vs_baseline_figure(result)),
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
        "history, not an accounting P&amp;L. Loss is gross (no recovery from suppliers) and "
        "each breach's refund is capped at the supplier's amount. Months whose outcome window "
        "is incomplete show coverage only.</p>"
    )
    sections.append("<h2>Totals</h2>" + _table(result.totals))
    if comparison is not None:
        sections.append("<h2>What-if: policies compared</h2>" + _table(comparison.totals))
    for figure_id, caption, fig in figures:
        sections.append(_img(figure_id, caption, fig))
    sections.append("<h2>By risk grade (policy)</h2>" + _table(grade_summary(result), "{:,.4f}"))
    sections.append("<h2>Ineligibility reasons (policy, supplier-months)</h2>"
                    + _table(_code_counts(result, "ineligible_reasons")))
    sections.append("<h2>Amount drivers (policy, supplier-months)</h2>"
                    + _table(_code_counts(result, "amount_drivers")))
    sections.append("<h2>Per month</h2>" + _table(result.monthly))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections.append(f'<p class="note">Generated {generated} by models.backtest_report.</p>')
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections)
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
