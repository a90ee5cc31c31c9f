"""Monitoring the risk models month by month: drift of their inputs and scores, collapse of
a score's distribution, calibration and ranking on outcomes as they complete (statistics in
models/monitoring.py, thresholds and tests documented there and in the README).

`model_monitoring` computes each month once and keeps the results in the warehouse
(`monitoring.drift`, `monitoring.collapse`, `monitoring.performance`); the checks below read
them per month partition, and `monitoring_report` renders them. Severity: drift and
performance WARN and never block; a collapsed score, or a loss-rate or default model whose
realised outcomes are off its forecast by more than a factor of two, is an ERROR and blocks
publishing (the published scores depend on `model_monitoring`).
"""


from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa

from assets.features import SUPPLIER_FEATURES_TABLE
from assets.modeling import TRAINING_SET_TABLE
from assets.partitions import as_of_dates_in_run, month_end_partitions, partition_key_of, single_run
from assets.publishing import _per_partition
from assets.resource_types import WAREHOUSE_POOL, ModelRegistryParam, PublishedStoreParam, WarehouseParam
from assets.scoring import SCORES_TABLE, supplier_scores
from models.monitoring import (
    collapse_alarm_lines,
    drift_alarm_lines,
    monitoring_tables,
    performance_alarm_lines,
)
from models.monitoring_data import load_monitoring_run
from models.monitoring_report import write_monitoring_report
from warehouse import replace_months, transaction
from warehouse.landing_metadata import read_data_horizon

MONITORING_TABLES = {name: f"monitoring.{name}" for name in ("drift", "collapse", "performance")}
MONITORING_REPORT = "monitoring.html"

# Check names (dagster-open-platform style: constants, so alerts and tests name them once).
MODEL_INPUTS_STABLE = "model_inputs_stable"
SCORES_STABLE = "scores_stable"
SCORES_NOT_COLLAPSED = "scores_not_collapsed"
MODELS_CALIBRATED = "models_calibrated_on_completed_outcomes"
# The table of worst inputs in a check's metadata.
WORST_ROWS = 10


def _training_months(con: duckdb.DuckDBPyConnection) -> list[date]:
    try:
        return [row[0] for row in con.execute(f"SELECT DISTINCT as_of_date FROM {TRAINING_SET_TABLE} ORDER BY 1").fetchall()]
    except duckdb.CatalogException:  # no training set yet: the registry's windows only
        return []


@dg.asset(
    deps=[supplier_scores],
    partitions_def=month_end_partitions,
    backfill_policy=single_run,
    group_name="monitoring",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
)
def model_monitoring(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam
) -> dg.MaterializeResult:
    """INTERNAL tables `monitoring.drift`, `monitoring.collapse`, `monitoring.performance`: per
    month, the population stability of every model input and score against the month before
    and the training window of the model versions that scored it (sample-size-aware critical
    values), whether a score's distribution collapsed, and, once the six-month outcomes are
    complete, each model's calibration (realised / predicted) and ranking (AUC, Gini) overall
    and per country, tenure band, volume band and category."""
    as_of_dates = as_of_dates_in_run(context)
    with warehouse.connect() as con:
        run = load_monitoring_run(
            con, as_of_dates, features_table=SUPPLIER_FEATURES_TABLE, scores_table=SCORES_TABLE,
            tracking_uri=model_registry.tracking_uri, data_horizon=read_data_horizon(con),
            training_months=_training_months(con),
        )
        tables: dict[str, list[pd.DataFrame]] = {name: [] for name in MONITORING_TABLES}
        for as_of_date in as_of_dates:
            month = monitoring_tables(run.month(as_of_date))
            for name, frame in month.items():
                tables[name].append(frame)
            drift, performance = month["drift"], month["performance"]
            overall = performance[performance["segment"] == "all"].set_index("score") if len(performance) else None
            # Numbers per month partition: the UI's Plots tab charts them across months.
            context.add_asset_metadata(
                {
                    "drifted_inputs": int(drift[(drift["kind"] == "input")]["alarm"].sum()),
                    "drifted_scores": int(drift[(drift["kind"] == "score")]["alarm"].sum()),
                    "max_input_psi_vs_training": float(drift[drift["kind"] == "input"]["psi_reference"].fillna(0).max()),
                    **({f"{score}/observed_to_expected": float(row.observed_to_expected)
                        for score, row in overall.iterrows()} if overall is not None else {}),
                },
                partition_key=partition_key_of(as_of_date),
            )
        with transaction(con):
            for name, frames in tables.items():
                frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
                if name == "performance":
                    con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
                    # A month whose outcomes are still incomplete has no rows: clear it all the same.
                    if _table_exists(con, MONITORING_TABLES[name]):
                        con.execute(f"DELETE FROM {MONITORING_TABLES[name]} WHERE as_of_date IN (SELECT unnest(?::DATE[]))",
                                    [as_of_dates])
                if frame is not None:
                    replace_months(con, MONITORING_TABLES[name], as_of_dates, pa.Table.from_pandas(frame, preserve_index=False))
    return dg.MaterializeResult(metadata={"months": len(as_of_dates)})


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()[0])


def _monitoring_rows(warehouse: WarehouseParam, name: str, as_of_dates: list[date]) -> pd.DataFrame:
    with warehouse.connect(read_only=True) as con:
        if not _table_exists(con, MONITORING_TABLES[name]):
            return pd.DataFrame(columns=["as_of_date"])
        frame = con.execute(
            f"SELECT * FROM {MONITORING_TABLES[name]} WHERE as_of_date IN (SELECT unnest(?::DATE[]))", [as_of_dates]
        ).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def _worst_table(drift: pd.DataFrame) -> dg.MetadataValue:
    """The inputs furthest from their critical value, as a numeric table the UI can sort."""
    worst = drift.assign(ratio=(drift["psi_reference"] / drift["critical_reference"]).fillna(0)) \
        .sort_values("ratio", ascending=False, kind="mergesort").head(WORST_ROWS)
    return dg.MetadataValue.table(
        [dg.TableRecord({
            "column": str(row.column),
            "psi_previous": float(row.psi_previous) if pd.notna(row.psi_previous) else None,
            "critical_previous": float(row.critical_previous) if pd.notna(row.critical_previous) else None,
            "psi_training": float(row.psi_reference) if pd.notna(row.psi_reference) else None,
            "critical_training": float(row.critical_reference) if pd.notna(row.critical_reference) else None,
            "alarm": bool(row.alarm),
        }) for row in worst.itertuples()],
        schema=dg.TableSchema(columns=[
            dg.TableColumn("column", "string"), dg.TableColumn("psi_previous", "float"),
            dg.TableColumn("critical_previous", "float"), dg.TableColumn("psi_training", "float"),
            dg.TableColumn("critical_training", "float"), dg.TableColumn("alarm", "bool"),
        ]),
    )


def _drift_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam, kind: str):
    as_of_dates = as_of_dates_in_run(context)
    rows = _monitoring_rows(warehouse, "drift", as_of_dates)
    outcomes = {}
    for as_of_date in as_of_dates:
        drift = rows[(rows["as_of_date"] == as_of_date) & (rows["kind"] == kind)] if len(rows) else rows
        alarms = drift_alarm_lines(drift) if len(drift) else []
        outcomes[as_of_date] = (not alarms, {
            "drifted": len(alarms),
            "tested": len(drift),
            "max_psi_vs_previous": float(drift["psi_previous"].max()) if len(drift) and drift["psi_previous"].notna().any() else 0.0,
            "max_psi_vs_training": float(drift["psi_reference"].max()) if len(drift) and drift["psi_reference"].notna().any() else 0.0,
            "summary": f"{len(alarms)} {kind}(s) drifted" if alarms else "stable",
            "alarms": dg.MetadataValue.md("\n".join(f"- {line}" for line in alarms) or "none"),
            "worst": _worst_table(drift) if len(drift) else dg.MetadataValue.md("no rows"),
        }, dg.AssetCheckSeverity.WARN)
    yield from _per_partition(context, outcomes)


@dg.asset_check(asset=model_monitoring, name=MODEL_INPUTS_STABLE, partitions_def=month_end_partitions)
def model_inputs_stable(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """WARN when a model input changed this month (PSI against the previous month above its
    critical value) into a distribution unlike every month of the training window. Never blocks."""
    yield from _drift_check(context, warehouse, "input")


@dg.asset_check(asset=model_monitoring, name=SCORES_STABLE, partitions_def=month_end_partitions)
def scores_stable(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """WARN when the loss rate, default or breach probability shifted as the inputs' check
    defines. Never blocks."""
    yield from _drift_check(context, warehouse, "score")


@dg.asset_check(asset=model_monitoring, name=SCORES_NOT_COLLAPSED, partitions_def=month_end_partitions, blocking=True)
def scores_not_collapsed(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """ERROR, blocks publishing: a score is missing or not finite for some supplier, half the
    suppliers share one value, or its spread fell under a quarter of the training window's."""
    as_of_dates = as_of_dates_in_run(context)
    rows = _monitoring_rows(warehouse, "collapse", as_of_dates)
    outcomes = {}
    for as_of_date in as_of_dates:
        month = rows[rows["as_of_date"] == as_of_date] if len(rows) else rows
        alarms = collapse_alarm_lines(month) if len(month) else []
        outcomes[as_of_date] = (not alarms, {
            **{f"{row.score}/spread_ratio": float(row.spread_ratio) for row in month.itertuples()},
            "summary": "; ".join(alarms) or "ok",
        }, dg.AssetCheckSeverity.ERROR)
    yield from _per_partition(context, outcomes)


@dg.asset_check(asset=model_monitoring, name=MODELS_CALIBRATED, partitions_def=month_end_partitions, blocking=True)
def models_calibrated_on_completed_outcomes(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """Once a month's six-month outcomes are complete: WARN when a model's realised / predicted
    strays beyond 25% (overall or in a segment large enough to test) or its AUC / Gini fell
    significantly below its out-of-time figure; ERROR, blocking publishing, when the loss-rate
    or default model is off by more than a factor of two overall. Months inside the model's
    training window, and months with outcomes pending, pass (reported)."""
    as_of_dates = as_of_dates_in_run(context)
    rows = _monitoring_rows(warehouse, "performance", as_of_dates)
    outcomes = {}
    for as_of_date in as_of_dates:
        month = rows[rows["as_of_date"] == as_of_date] if len(rows) else rows
        if month.empty:
            outcomes[as_of_date] = (True, {"outcomes": "pending (six-month window not yet complete)"}, dg.AssetCheckSeverity.WARN)
            continue
        blocking, warnings = performance_alarm_lines(month, blocking=True), performance_alarm_lines(month)
        overall = month[month["segment"] == "all"]
        outcomes[as_of_date] = (not (blocking or warnings), {
            **{f"{row.score}/observed_to_expected": float(row.observed_to_expected) for row in overall.itertuples()},
            **{f"{row.score}/{row.ranking_metric}": float(row.ranking) for row in overall.itertuples() if pd.notna(row.ranking)},
            "in_training_window": bool(month["in_training_window"].any()),
            "summary": "; ".join(blocking or warnings) or "ok",
            "alarms": dg.MetadataValue.md("\n".join(f"- {line}" for line in blocking + warnings) or "none"),
        }, dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN)
    yield from _per_partition(context, outcomes)


@dg.asset(deps=[model_monitoring], backfill_policy=single_run, group_name="reports", pool=WAREHOUSE_POOL, kinds={"html"})
def monitoring_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, published_store: PublishedStoreParam
) -> dg.MaterializeResult:
    """The risk team's monitoring report over every monitored month: the alarms first, then
    drift per input, then performance per segment, with plots (HTML)."""
    with warehouse.connect(read_only=True) as con:
        months = [row[0] for row in con.execute(
            f"SELECT DISTINCT as_of_date FROM {MONITORING_TABLES['drift']} ORDER BY 1").fetchall()] \
            if _table_exists(con, MONITORING_TABLES["drift"]) else []
    tables = {name: _monitoring_rows(warehouse, name, months) for name in MONITORING_TABLES}
    path = write_monitoring_report(tables, Path(published_store.reports_dir) / MONITORING_REPORT)
    context.log.info(f"monitoring report: {path}")
    return dg.MaterializeResult(metadata={"report": dg.MetadataValue.path(str(path)), "months": len(months)})
