"""What monitoring reads: the months' features, scores and completed outcomes from the
warehouse, and what each registered model version learned from (its reference window).

Drift is measured against the months a model's rows came from, so "the reference window"
belongs to the model version that scored a month, not to the calendar. Every version's
training run logs its out-of-time split as MLflow params (``window.train``,
``window.calibration``: ``"2024-01-31..2025-03-31 (15 months)"``) and its out-of-time
metrics; ``model_reference`` reads both for a version string ``"<name>/<n>"`` as published
in the ``*model_version`` columns. A scheme with several versions in use at once (one per
vintage) keeps working as long as each version's run logs those params: the monitoring
asks for the versions named in each month's rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.labels import add_months, is_label_complete
from models.model_features import resolve_model_features
from models.monitoring import EXPOSURE_COLUMN, MONITORED_SCORES, SCORE_COLUMNS, Monitor, MonthMonitoring, drift_columns
from models.realised_outcomes import realised_outcomes

# The windows whose rows fitted some part of the model (the booster, then its calibration).
FITTED_WINDOWS = ("window.train", "window.calibration")
_SPAN = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class ModelReference:
    version: str
    months: tuple[date, ...]  # as-of months of the rows it was fitted on; empty when unknown
    metrics: dict[str, float] = field(default_factory=dict)  # its training run's metrics


def months_of_span(span: str) -> list[date]:
    """``"2024-01-31..2024-04-30 (4 months)"`` -> the month ends 2024-01-31 .. 2024-04-30."""
    match = _SPAN.match(span.strip())
    if not match:
        raise ValueError(f"not a month span: {span!r} (expected 'YYYY-MM-DD..YYYY-MM-DD (n months)')")
    first, last = (date.fromisoformat(part) for part in match.groups())
    months = [first]
    while months[-1] < last:
        months.append(add_months(months[-1], 1))
    return months


def model_reference(tracking_uri: str, model_version: str) -> ModelReference:
    """The fitted months and metrics of ``"<name>/<n>"``; empty when the registry does not know
    it (the caller then falls back on the training set's months)."""
    name, _, number = model_version.rpartition("/")
    number = number.split("@", 1)[0]  # a vintage names its as-of date after the version: "<name>/<n>@<date>"
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        run = client.get_run(client.get_model_version(name, number).run_id)
    except MlflowException:
        return ModelReference(model_version, ())
    months = sorted({m for key in FITTED_WINDOWS if key in run.data.params for m in months_of_span(run.data.params[key])})
    return ModelReference(model_version, tuple(months), dict(run.data.metrics))


def _month_rows(con: duckdb.DuckDBPyConnection, table: str, months: Sequence[date],
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of ``months`` in ``table``; only ``columns`` (besides the keys) when given: the
    monitoring reads a few of the features' and scores' columns, and every month of them."""
    selected = "*" if columns is None else ", ".join(
        f'"{c}"' for c in dict.fromkeys(["as_of_date", "supplier_id", *columns]))
    frame = con.execute(
        f"SELECT {selected} FROM {table} WHERE as_of_date IN (SELECT unnest(?::DATE[])) ORDER BY as_of_date, supplier_id",
        [sorted(set(months))],
    ).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """``table`` without rows: its columns with the dtypes a read of rows gives them."""
    return con.execute(f"SELECT * FROM {table} LIMIT 0").df()


# The feature columns the segments of the performance tables come from (models.monitoring.with_segments).
SEGMENT_SOURCE_COLUMNS = ("country", "category", "tenure_months", "orders_6m")


OUTCOME_COLUMNS = sorted({score.outcome for score in MONITORED_SCORES} | {EXPOSURE_COLUMN})


@dataclass
class MonitoringRun:
    """The months to monitor with what they need loaded, and the monitor over them."""

    monitor: Monitor
    references: dict[date, tuple[date, ...]]  # per month: union of its model versions' fitted months
    outcomes: pd.DataFrame  # completed outcomes of the months (label_complete only)
    versions: dict[date, dict[str, str]]  # per month: score column -> the model version most rows name
    known: dict[str, ModelReference]  # every version named in the months' rows: fitted months, metrics

    def own_metrics(self, as_of_date: date, metric: str) -> dict[str, float]:
        """Each score's ``metric`` (a ``MonitoredScore`` field naming an MLflow metric) as the
        version most of the month's rows name logged it out of time; absent when it logged none."""
        out = {}
        for score in MONITORED_SCORES:
            main = self.known.get(self.versions.get(as_of_date, {}).get(score.column, ""))
            if main is not None and getattr(score, metric) in main.metrics:
                out[score.column] = main.metrics[getattr(score, metric)]
        return out

    def month(self, as_of_date: date) -> MonthMonitoring:
        outcomes = self.outcomes[self.outcomes["as_of_date"] == as_of_date]
        previous = self.versions.get(add_months(as_of_date, -1))
        # A new model vintage moves the scores by design: their month-over-month drift is then
        # reported against the training window only, never alarmed on.
        same_models = previous is None or previous == self.versions.get(as_of_date)
        return self.monitor.month(as_of_date, self.references[as_of_date], outcomes if len(outcomes) else None,
                                  self.own_metrics(as_of_date, "ranking_metric"),
                                  compare_scores_with_previous=same_models,
                                  reference_spreads=self.own_metrics(as_of_date, "spread_metric"),
                                  reference_top_shares=self.own_metrics(as_of_date, "ties_metric"))


def load_monitoring_run(
    con: duckdb.DuckDBPyConnection,
    months: Sequence[date],
    *,
    features_table: str,
    scores_table: str,
    tracking_uri: str,
    data_horizon: datetime,
    training_months: Sequence[date] = (),
    schema: str = "validated",
) -> MonitoringRun:
    """Everything ``months`` need: their scores and features, those of the month before each
    and of the reference months, and the outcomes complete by ``data_horizon``.

    The reference of a month is the union of the fitted months of the model versions that
    scored it (``model_reference``); ``training_months`` (the training set's) stands in for
    a version the registry cannot place."""
    months = sorted(set(months))
    score_columns = [column for score in MONITORED_SCORES for column in (score.column, score.version_column)]
    missing = [column for column in score_columns if column not in _columns_of(con, scores_table).columns]
    if missing:
        raise ValueError(f"{scores_table} has no column {', '.join(missing)}: it was scored by an older release; "
                         "rescore the months with the current models (`assurance run`) before monitoring them")
    scored = _month_rows(con, scores_table, months, score_columns)
    references: dict[date, tuple[date, ...]] = {}
    versions: dict[date, dict[str, str]] = {}
    known: dict[str, ModelReference] = {}
    for as_of_date in months:
        rows = scored[scored["as_of_date"] == as_of_date]
        # The version most of the month's rows name (one per month today; several only if a
        # month mixes vintages, when every one's fitted months join the reference).
        versions[as_of_date] = {score.column: str(rows[score.version_column].value_counts().index[0])
                                for score in MONITORED_SCORES if len(rows)}
        fitted: set[date] = set()
        for score in MONITORED_SCORES:
            for version in rows[score.version_column].dropna().astype(str).unique():
                if version not in known:
                    known[version] = model_reference(tracking_uri, version)
                fitted |= set(known[version].months or training_months)
        references[as_of_date] = tuple(sorted(fitted))
    needed = set(months) | {add_months(m, -1) for m in months} | {m for ref in references.values() for m in ref}
    # Only the drift-tested inputs and the segments' columns, resolved on the table's empty frame
    # (the same dtypes): a whole width of features for every month needed was most of this stage's memory.
    feature_columns = _columns_of(con, features_table)
    has_rows = con.execute(f"SELECT count(*) > 0 FROM {features_table} WHERE as_of_date IN (SELECT unnest(?::DATE[]))",
                           [sorted(needed)]).fetchone()[0]
    inputs = drift_columns(feature.name for feature in resolve_model_features(None, feature_columns)) if has_rows else []
    features = _month_rows(con, features_table, sorted(needed),
                           [*inputs, *(c for c in SEGMENT_SOURCE_COLUMNS if c in feature_columns.columns)])
    scores = pd.concat([scored, _month_rows(con, scores_table, sorted(needed - set(months)), score_columns)],
                       ignore_index=True)
    complete = [m for m in months if is_label_complete(m, data_horizon)]
    outcomes = realised_outcomes(con, complete, data_horizon, schema).to_pandas() if complete \
        else pd.DataFrame(columns=["as_of_date", "supplier_id", "label_complete", *OUTCOME_COLUMNS])
    outcomes = outcomes[outcomes["label_complete"].astype(bool)][["as_of_date", "supplier_id", *OUTCOME_COLUMNS]]
    outcomes["as_of_date"] = pd.to_datetime(outcomes["as_of_date"]).dt.date
    return MonitoringRun(Monitor(features, scores[["as_of_date", "supplier_id", *SCORE_COLUMNS]], inputs),
                         references, outcomes, versions, known)
