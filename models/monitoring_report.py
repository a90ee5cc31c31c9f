"""The monitoring report: one self-contained HTML file for the risk team (figures embedded).

First the alarms of every monitored month, then drift per model input and score, then each
model's calibration and ranking per segment on the outcomes that completed. It renders the
tables `models.monitoring.monitoring_tables` produces (kept in the warehouse by the
pipeline), in the same style and with the same helpers as the backtest report: HTML built
with the standard library's escaping, no template engine needed for one fixed layout.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.backtest_report import _img, _table, html_document
from models.monitoring import (
    CALIBRATION_BLOCKING_FACTOR,
    CALIBRATION_TOLERANCE,
    DRIFT_FALSE_ALARM_RATE,
    MIN_SEGMENT_EVENTS,
    MIN_SEGMENT_ROWS,
    TOLERATED_PSI,
    collapse_alarm_lines,
    drift_alarm_lines,
    performance_alarm_lines,
)

FIGURE_IDS = ("input_drift", "score_drift", "calibration_per_month", "calibration_per_segment")
TOP_INPUTS_PLOTTED = 8


def alarms_frame(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every alarm of every month: month, check, severity, what."""
    rows = []
    drift, collapse, performance = (tables.get(name, pd.DataFrame()) for name in ("drift", "collapse", "performance"))
    for as_of_date in sorted(set().union(*(set(t["as_of_date"]) for t in (drift, collapse, performance) if len(t)))):
        def month(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["as_of_date"] == as_of_date] if len(frame) else frame

        for kind in ("input", "score"):
            d = month(drift)
            for line in drift_alarm_lines(d[d["kind"] == kind]) if len(d) else []:
                rows.append((as_of_date, f"{kind} drift", "WARN", line))
        for line in collapse_alarm_lines(month(collapse)) if len(month(collapse)) else []:
            rows.append((as_of_date, "score collapse", "ERROR (blocks publishing)", line))
        p = month(performance)
        for line in performance_alarm_lines(p, blocking=True):
            rows.append((as_of_date, "calibration", "ERROR (blocks publishing)", line))
        for line in performance_alarm_lines(p):
            rows.append((as_of_date, "performance", "WARN", line))
    return pd.DataFrame(rows, columns=["as_of_date", "check", "severity", "alarm"])


def _drift_figure(drift: pd.DataFrame, kind: str, title: str) -> Figure:
    """PSI over its critical value against the training window, per month, for the inputs
    that came closest (all scores): above 1 is beyond the critical value."""
    frame = drift[drift["kind"] == kind].assign(ratio=lambda f: f["psi_reference"] / f["critical_reference"])
    worst = frame.groupby("column")["ratio"].max().sort_values(ascending=False).head(TOP_INPUTS_PLOTTED).index
    fig = Figure(figsize=(9, 3.6))
    ax = fig.subplots()
    for column in worst:
        series = frame[frame["column"] == column].sort_values("as_of_date")
        ax.plot(pd.to_datetime(series["as_of_date"]), series["ratio"], marker=".", label=column)
    ax.axhline(1.0, color="#d62728", linestyle="--", linewidth=1, label="critical value")
    ax.set_ylabel("PSI / critical PSI (vs training window)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    return fig


def _calibration_month_figure(overall: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    for score, series in overall.groupby("score"):
        series = series.sort_values("as_of_date")
        ax.plot(pd.to_datetime(series["as_of_date"]), series["observed_to_expected"], marker="o", label=score)
    ax.axhspan(1 - CALIBRATION_TOLERANCE, 1 + CALIBRATION_TOLERANCE, color="#2ca02c", alpha=0.12, label="tolerance")
    for bound in (CALIBRATION_BLOCKING_FACTOR, 1 / CALIBRATION_BLOCKING_FACTOR):
        ax.axhline(bound, color="#d62728", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel("realised / predicted")
    ax.set_title("Calibration per as-of month (outcomes six months later)")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return fig


def _calibration_segment_figure(segments: pd.DataFrame) -> Figure:
    scores = list(dict.fromkeys(segments["score"]))
    fig = Figure(figsize=(9, 2.6 * max(len(scores), 1)))
    axes = np.atleast_1d(fig.subplots(max(len(scores), 1), 1))
    for ax, score in zip(axes, scores, strict=False):
        rows = segments[(segments["score"] == score) & (segments["segment"] != "all")]
        labels = [f"{s}={v}" for s, v in zip(rows["segment"], rows["value"], strict=True)]
        colours = ["#1f77b4" if a else "#c7c7c7" for a in rows["alarmable"]]
        ax.bar(range(len(rows)), rows["observed_to_expected"], color=colours)
        ax.axhspan(1 - CALIBRATION_TOLERANCE, 1 + CALIBRATION_TOLERANCE, color="#2ca02c", alpha=0.12)
        ax.set_xticks(range(len(rows)), labels, rotation=70, fontsize=6)
        ax.set_ylabel("realised / predicted")
        ax.set_title(f"{score} per segment (grey: too small to alarm on)", fontsize=9)
    fig.tight_layout()
    return fig


def render_monitoring_report(tables: dict[str, pd.DataFrame], title: str = "Risk model monitoring") -> str:
    drift = tables.get("drift", pd.DataFrame())
    performance = tables.get("performance", pd.DataFrame())
    months = sorted(drift["as_of_date"].unique()) if len(drift) else []
    sections = [
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Months {html.escape(f'{months[0]} to {months[-1]}' if months else 'none monitored')}.</p>"
        '<p class="note">Drift: population stability index (PSI) on bins fixed from the reference, missing values '
        "in a bin of their own; an input or score alarms when its PSI exceeds the critical value for the sample "
        f"sizes (Yurdakul 2018; H0: true PSI at most {TOLERATED_PSI}, false-alarm rate {DRIFT_FALSE_ALARM_RATE} per "
        "month over all columns) both against the previous month and against every month of the training window "
        "of the model versions that scored it. Calibration: realised / predicted, tested against a tolerance of "
        f"{CALIBRATION_TOLERANCE:.0%}; beyond a factor {CALIBRATION_BLOCKING_FACTOR:g} on the loss rate or default "
        "probability, publishing stops. Months inside the training window are shown, never alarmed on.</p>"
    ]
    alarms = alarms_frame(tables)
    sections.append("<h2>Alarms</h2>" + (_table(alarms) if len(alarms) else "<p>No alarms in any monitored month.</p>"))
    if months:
        latest = drift[drift["as_of_date"] == months[-1]]
        sections.append(f"<h2>Drift per input, {months[-1]}</h2>")
        sections.append(_img("input_drift", "Inputs closest to their critical value, per month",
                             _drift_figure(drift, "input", "Model inputs against the training window")))
        columns = ["column", "psi_previous", "critical_previous", "psi_reference", "critical_reference",
                   "nearest_month", "nearest_month_psi", "alarm"]
        sections.append(_table(latest[latest["kind"] == "input"][columns], "{:,.4f}"))
        sections.append("<h2>Drift of the scores</h2>")
        sections.append(_img("score_drift", "Scores against the training window, per month",
                             _drift_figure(drift, "score", "Scores against the training window")))
        sections.append(_table(latest[latest["kind"] == "score"][columns], "{:,.4f}"))
    sections.append("<h2>Performance per segment</h2>")
    if len(performance):
        overall = performance[performance["segment"] == "all"]
        sections.append(_img("calibration_per_month", "Realised over predicted, overall, per month",
                             _calibration_month_figure(overall)))
        last = max(performance["as_of_date"])
        segments = performance[performance["as_of_date"] == last]
        sections.append(
            f"<p>Latest month with complete outcomes: {last}"
            f"{' (inside the training window: in-sample)' if segments['in_training_window'].any() else ''}. "
            f"Segments under {MIN_SEGMENT_ROWS} supplier-months or {MIN_SEGMENT_EVENTS} events are reported, "
            "never alarmed on.</p>"
        )
        sections.append(_img("calibration_per_segment", f"Realised over predicted per segment, {last}",
                             _calibration_segment_figure(segments)))
        sections.append(_table(segments[["score", "segment", "value", "rows", "events", "expected", "observed",
                                         "observed_to_expected", "ranking_metric", "ranking", "alarmable", "alarm"]],
                               "{:,.4f}"))
        sections.append("<h2>Overall, every month with complete outcomes</h2>" + _table(
            overall[["as_of_date", "score", "rows", "observed_to_expected", "ranking_metric", "ranking",
                     "ranking_reference", "in_training_window", "alarm", "blocking"]], "{:,.4f}"))
    else:
        sections.append("<p>No month has a complete six-month outcome window yet.</p>")
    return html_document(title, sections, "models.monitoring_report")


def write_monitoring_report(tables: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Render and write atomically (readers never see half a report); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_monitoring_report(tables), encoding="utf-8")
    tmp.replace(path)
    return path
