"""The realised outcomes, the training set and the vintages of the three risk models: loss rate,
default and breach (unpartitioned: they span all history; models/vintages.py says which vintage
scores which month)."""


import base64
import io

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets.landing import landing_zone
from assets.partitions import single_run
from assets.resource_types import WAREHOUSE_POOL, ModelRegistryParam, WarehouseParam
from features.sql_engine import duckdb_table_exists
from models.plots import loss_rate_calibration_figure, reliability_figure
from models.realised_outcomes import store_realised_outcomes
from models.training_set import (
    DEFAULT_LABEL_COLUMN,
    NotEnoughHistoryError,
    first_activity_month_end,
    outcome_month_ends,
    store_training_set,
)
from models.vintages import (
    BREACH,
    DEFAULT,
    LOSS_RATE,
    SERVING,
    VintageBuild,
    VintageConfig,
    build_vintages,
    risk_model_kinds,
    vintage_as_of_dates,
    vintages_table,
)
from warehouse import transaction
from warehouse.landing_metadata import read_data_horizon

TRAINING_SET_TABLE = "models.training_set"
OOT_PREDICTIONS_TABLE = "models.oot_predictions"
# Every vintage of every risk model: as-of date, status (serving, refused, untrainable), version.
VINTAGES_TABLE = "models.vintages"


def _figure_markdown(figure) -> dg.MetadataValue:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![figure](data:image/png;base64,{encoded})")


@dg.asset(deps=[landing_zone], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"duckdb"})
def realised_outcomes(context: dg.AssetExecutionContext, warehouse: WarehouseParam) -> dg.MaterializeResult:
    """INTERNAL table `models.realised_outcomes`: the six-month outcomes that followed every month
    end from the first month with orders to the data horizon (breach, refunds per cover, the
    order value they fell on, default; `label_complete` false while a window is still open),
    computed once a run and read by the training set, the monitoring and the backtest
    (models/realised_outcomes.py). Outcomes after T: labels, never features."""
    with warehouse.connect() as con:
        horizon = read_data_horizon(con)
        try:
            months = outcome_month_ends(con, horizon)
        except NotEnoughHistoryError:
            months = []  # no orders: nothing to label (the training set says why)
        rows = store_realised_outcomes(con, months, horizon)
    complete = len(pc.unique(rows.filter(rows.column("label_complete")).column("as_of_date")))
    context.log.info(f"realised outcomes: {rows.num_rows:,} supplier-months over {len(months)} months, "
                     f"{complete} complete (horizon {horizon})")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.num_rows,
            "months": len(months),
            "months_complete": complete,
            "data_horizon": str(horizon),
        }
    )


@dg.asset(deps=[realised_outcomes], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"duckdb"})
def training_set(context: dg.AssetExecutionContext, warehouse: WarehouseParam) -> dg.MaterializeResult:
    """Features at every month end whose six-month outcome window is complete, joined with the
    outcomes that followed (breach, refunds per cover with the order value they fell on,
    default; docs/design.md §4); later months are scored, never trained on."""
    with warehouse.connect() as con:
        horizon = read_data_horizon(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS models")
        try:
            # Written inside DuckDB: the joined rows never come into the process.
            row_count = store_training_set(con, TRAINING_SET_TABLE, horizon)
        except NotEnoughHistoryError as too_short:
            # No vintage can be trained: the months are published without scores (models/vintages.py).
            con.execute(f"DROP TABLE IF EXISTS {TRAINING_SET_TABLE}")
            context.log.warning(f"no training set: {too_short}")
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "not_built_because": str(too_short)})
        per_month = con.execute(
            f"SELECT as_of_date::VARCHAR, count(*), avg(breach_6m::INT) FROM {TRAINING_SET_TABLE} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    context.log.info(f"training set: {row_count:,} supplier-months over {len(per_month)} months (horizon {horizon})")
    return dg.MaterializeResult(
        metadata={
            "months": len(per_month),
            "data_horizon": str(horizon),
            "dagster/row_count": row_count,
            "breach_rate": round(sum(n * (rate or 0.0) for _, n, rate in per_month) / max(row_count, 1), 6),
            "breach_rate_per_month": dg.MetadataValue.table(
                [dg.TableRecord({"as_of_date": m, "rows": n, "breach_rate": round(rate or 0.0, 4)}) for m, n, rate in per_month],
                schema=dg.TableSchema(columns=[
                    dg.TableColumn("as_of_date", "string"), dg.TableColumn("rows", "int"), dg.TableColumn("breach_rate", "float"),
                ]),
            ),
        }
    )


# What DuckDB's own .df() makes of a column Arrow converts otherwise: these as doubles (cast
# by DuckDB, bit for bit as .df() does it), integers and booleans with NULLs as pandas' nullable types.
_DOUBLE_IN_PANDAS = ("DECIMAL", "HUGEINT", "UHUGEINT")
_NULLABLE_IN_PANDAS = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(), pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
}


def _load_training(warehouse: WarehouseParam) -> pd.DataFrame:
    """The training set; empty when the history is too short to have one.

    Read through Arrow: the frame DuckDB's own .df() gives (dates as datetime.date, as the
    models read them) at a fraction of its peak memory (bench/results/training_memory.md),
    with .df()'s types where the two differ (the vintages' fingerprints hash them)."""
    with warehouse.connect() as con:
        if not duckdb_table_exists(con, "models", "training_set"):
            return pd.DataFrame({"as_of_date": pd.Series([], dtype=object), "supplier_id": pd.Series([], dtype=object)})
        types = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'models' AND table_name = 'training_set' ORDER BY ordinal_position"
        ).fetchall()
        columns = ", ".join(f'CAST("{name}" AS DOUBLE) AS "{name}"' if kind.startswith(_DOUBLE_IN_PANDAS) else f'"{name}"'
                            for name, kind in types)
        table = con.execute(f"SELECT {columns} FROM {TRAINING_SET_TABLE} ORDER BY as_of_date, supplier_id").to_arrow_table()
    nullable = {name: table.column(name) for name in table.column_names
                if table.column(name).null_count and table.column(name).type in _NULLABLE_IN_PANDAS}
    training = table.to_pandas()
    del table
    for name, column in nullable.items():
        training[name] = column.to_pandas(types_mapper=_NULLABLE_IN_PANDAS.get)
    return training


def vintage_config(model_registry: ModelRegistryParam) -> VintageConfig:
    path = model_registry.vintage_config_file
    return VintageConfig.from_yaml(path) if path else VintageConfig.from_yaml()


def _vintage_dates(warehouse: WarehouseParam, training: pd.DataFrame, config: VintageConfig) -> list:
    """The calendar month ends a vintage falls on, from the first month with orders to the data horizon."""
    with warehouse.connect(read_only=True) as con:
        horizon = read_data_horizon(con)
        try:
            first = first_activity_month_end(con)
        except NotEnoughHistoryError:
            return []
    return vintage_as_of_dates(first, horizon.date(), config)


def _build_vintages(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam, kind: str
) -> tuple[VintageBuild, dict]:
    """Train or reuse every vintage of one risk model, record them in `models.vintages`, and
    describe them for the asset's metadata. A model no vintage of which can be trained is no
    failure: the months no vintage knew are not scored (models/vintages.py)."""
    config = vintage_config(model_registry)
    training = _load_training(warehouse)
    model_kind = risk_model_kinds(
        model_registry.registered_model_name, model_registry.loss_rate_model_name, model_registry.default_model_name
    )[kind]
    build = build_vintages(
        training, model_kind, _vintage_dates(warehouse, training, config), model_registry.tracking_uri,
        model_registry.experiment_name, config, log=context.log.info,
    )
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS models")
        con.register("_vintages", vintages_table(build.vintages))
        con.execute(f"CREATE TABLE IF NOT EXISTS {VINTAGES_TABLE} AS SELECT * FROM _vintages LIMIT 0")
        with transaction(con):
            con.execute(f"DELETE FROM {VINTAGES_TABLE} WHERE kind = ?", [kind])
            con.execute(f"INSERT INTO {VINTAGES_TABLE} BY NAME SELECT * FROM _vintages")
        con.unregister("_vintages")
    serving = [v for v in build.vintages if v.status == SERVING]
    if not serving:
        why = build.vintages[-1].reasons if build.vintages else "no month has enough complete six-month outcomes"
        context.log.warning(f"no {kind} vintage could be trained ({why}): months are published without scores")
    metadata = {
        "cadence": config.cadence,
        "vintages_trained": sum(v.trained_now for v in build.vintages),
        "vintages_serving": len(serving),
        "champion_version": serving[-1].label if serving else "none",
        "vintages": dg.MetadataValue.md(
            "| as of | status | version | decision |\n|---|---|---|---|\n" + "\n".join(
                f"| {v.as_of_date} | {v.status} | {v.version or ''} | {v.reasons} |" for v in build.vintages
            )
        ),
    }
    newest = build.newest_result
    if newest is not None:
        metrics = {key: round(float(value), 6) for key, value in newest.metrics.items() if key.startswith("evaluation_")}
        # one float per metric, so the UI's Plots tab charts them across materializations
        metadata.update({f"out_of_time/{key.removeprefix('evaluation_')}": value for key, value in metrics.items()})
        metadata["split"] = dg.MetadataValue.json(newest.split.describe())
    return build, metadata


def _newest_trained(build: VintageBuild):
    """The newest vintage trained by this run and its training result (None when all were reused)."""
    return build.newest_trained, build.newest_result


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def breach_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The vintages of the breach model (any buyer-won dispute in six months; published as
    information): calibrated LightGBM classifiers, each trained as of a month end on what was
    known then and evaluated on its newest complete months; reused while their inputs are unchanged."""
    build, metadata = _build_vintages(context, warehouse, model_registry, BREACH)
    vintage, result = _newest_trained(build)
    if result is not None:
        predictions = result.evaluation_frame[["as_of_date", "supplier_id", "breach_6m", "predicted_probability"]].rename(
            columns={"predicted_probability": "breach_probability_6m"}
        )
        predictions["model_version"] = vintage.label
        with warehouse.connect() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS models")
            con.register("_oot", predictions)
            con.execute(f"CREATE OR REPLACE TABLE {OOT_PREDICTIONS_TABLE} AS SELECT * FROM _oot")
            con.unregister("_oot")
        y = result.evaluation_frame["breach_6m"].astype(int).to_numpy()
        p = result.evaluation_frame["predicted_probability"].to_numpy()
        metadata["calibration_plot"] = _figure_markdown(reliability_figure({"model (out of time)": (y, p)}))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def default_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The vintages of the default model: the calibrated probability that a supplier stops
    fulfilling within six months, when everything outstanding under its amount is lost; size never raises it."""
    build, metadata = _build_vintages(context, warehouse, model_registry, DEFAULT)
    _, result = _newest_trained(build)
    if result is not None:
        y = result.evaluation_frame[DEFAULT_LABEL_COLUMN].astype(int).to_numpy()
        p = result.evaluation_frame["predicted_probability"].to_numpy()
        metadata["calibration_plot"] = _figure_markdown(reliability_figure({"model (out of time)": (y, p)}))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def loss_rate_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The vintages of the loss-rate model: buyer-won refunds per dollar of order value in the
    next six months, per coverage (pre-shipment, post-delivery), Tweedie boosters with volume as exposure."""
    build, metadata = _build_vintages(context, warehouse, model_registry, LOSS_RATE)
    _, result = _newest_trained(build)
    if result is not None:
        metadata["calibration_plot"] = _figure_markdown(loss_rate_calibration_figure(result.calibration_tables))
    return dg.MaterializeResult(metadata=metadata)
