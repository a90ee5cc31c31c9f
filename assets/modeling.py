"""The training set and the champion risk models: loss rate, default and breach (unpartitioned:
they span all history)."""


import base64
import io
from collections.abc import Callable

import dagster as dg
import pandas as pd

from assets.landing import landing_zone
from assets.partitions import single_run
from assets.resource_types import WAREHOUSE_POOL, ModelRegistryParam, WarehouseParam
from features import FEATURES
from models.loss_rate import LOSS_RATE_COLUMN, exposure_rows, train_loss_rate_model
from models.model_features import LABEL_COLUMN
from models.plots import loss_rate_calibration_figure, reliability_figure
from models.registry import ModelAliasNotFound, alias_data_fingerprint, load_model_by_alias, log_and_register, promote_if_better
from models.training import TrainingConfig, complete_label_rows, train_breach_model, training_data_fingerprint
from models.training_set import DEFAULT_LABEL_COLUMN, build_training_set, untrainable_default_reason, untrainable_reason
from warehouse.landing_metadata import read_data_horizon

TRAINING_SET_TABLE = "models.training_set"
OOT_PREDICTIONS_TABLE = "models.oot_predictions"


def _figure_markdown(figure) -> dg.MetadataValue:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![figure](data:image/png;base64,{encoded})")


@dg.asset(deps=[landing_zone], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"duckdb"})
def training_set(context: dg.AssetExecutionContext, warehouse: WarehouseParam) -> dg.MaterializeResult:
    """Features at every month end whose six-month outcome window is complete, joined with the
    outcomes that followed (breach, refunds per cover with the order value they fell on,
    default; DESIGN §4); later months are scored, never trained on."""
    with warehouse.connect() as con:
        horizon = read_data_horizon(con)
        rows = build_training_set(con, horizon)
        con.execute("CREATE SCHEMA IF NOT EXISTS models")
        con.register("_training_rows", rows)
        con.execute(f"CREATE OR REPLACE TABLE {TRAINING_SET_TABLE} AS SELECT * FROM _training_rows")
        con.unregister("_training_rows")
        per_month = con.execute(
            f"SELECT as_of_date::VARCHAR, count(*), avg(breach_6m::INT) FROM {TRAINING_SET_TABLE} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    context.log.info(f"training set: {rows.num_rows:,} supplier-months over {len(per_month)} months (horizon {horizon})")
    return dg.MaterializeResult(
        metadata={
            "months": len(per_month),
            "data_horizon": str(horizon),
            "dagster/row_count": rows.num_rows,
            "breach_rate": round(sum(n * (rate or 0.0) for _, n, rate in per_month) / max(rows.num_rows, 1), 6),
            "breach_rate_per_month": dg.MetadataValue.table(
                [dg.TableRecord({"as_of_date": m, "rows": n, "breach_rate": round(rate or 0.0, 4)}) for m, n, rate in per_month],
                schema=dg.TableSchema(columns=[
                    dg.TableColumn("as_of_date", "string"), dg.TableColumn("rows", "int"), dg.TableColumn("breach_rate", "float"),
                ]),
            ),
        }
    )


def _load_training(warehouse: WarehouseParam) -> pd.DataFrame:
    with warehouse.connect() as con:
        training = con.execute(f"SELECT * FROM {TRAINING_SET_TABLE} ORDER BY as_of_date, supplier_id").df()
    training["as_of_date"] = pd.to_datetime(training["as_of_date"]).dt.date
    return training


def _train_or_reuse(
    context: dg.AssetExecutionContext,
    model_registry: ModelRegistryParam,
    name: str,
    fingerprint: str,
    problem: str | None,
    train: Callable[[], object],
    label_column: str,
) -> tuple[object | None, dict]:
    """Reuse the champion when its training data is unchanged (or nothing can be learned and a
    champion exists); otherwise train, register a challenger and let the gates decide.
    Returns the training result (None when reused) and the asset's metadata."""
    uri = model_registry.tracking_uri
    champion_fingerprint = alias_data_fingerprint(uri, "champion", registered_model_name=name)
    if problem:
        if champion_fingerprint is None:
            raise ModelAliasNotFound(
                f"cannot train {name}: {problem}; and the registry {uri} has no champion to fall back on. "
                "Train one on data with disputes into the same home first (e.g. `assurance demo --home HOME`), then rerun"
            )
        _, version = load_model_by_alias(uri, "champion", registered_model_name=name)
        context.log.warning(f"not training {name}: {problem}; scoring with the existing champion {version}")
        return None, {"champion_version": version, "trained": False, "not_trained_because": problem,
                               "data_fingerprint": fingerprint}
    if champion_fingerprint == fingerprint:
        _, version = load_model_by_alias(uri, "champion", registered_model_name=name)
        context.log.info(f"training data unchanged (sha256 {fingerprint[:12]}): reusing champion {version}")
        return None, {"champion_version": version, "trained": False, "data_fingerprint": fingerprint}
    result = train()
    version = log_and_register(result, uri, registered_model_name=name, experiment_name=model_registry.experiment_name)
    decision = promote_if_better(uri, result.evaluation_frame, registered_model_name=name,
                                 experiment_name=model_registry.experiment_name, label_column=label_column)
    _, champion_version = load_model_by_alias(uri, "champion", registered_model_name=name)
    context.log.info(f"trained {version}; champion is {champion_version}: {'; '.join(decision.reasons)}")
    metrics = {key: round(float(value), 6) for key, value in result.metrics.items() if key.startswith("evaluation_")}
    return result, {
        "trained_version": version,
        "champion_version": champion_version,
        "trained": True,
        "promotion": "; ".join(decision.reasons),
        "split": dg.MetadataValue.json(result.split.describe()),
        # one float per metric, so the UI's Plots tab charts them across materializations
        **{f"out_of_time/{key.removeprefix('evaluation_')}": value for key, value in metrics.items()},
        "data_fingerprint": fingerprint,
    }


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def breach_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The champion breach model (any buyer-won dispute in six months; published as information):
    a calibrated LightGBM classifier trained on earlier months and evaluated on later ones,
    reused while its training data is unchanged, replaced only through the promotion gates."""
    training = _load_training(warehouse)
    fingerprint = training_data_fingerprint(complete_label_rows(training))
    result, metadata = _train_or_reuse(
        context, model_registry, model_registry.registered_model_name, fingerprint,
        untrainable_reason(training), lambda: train_breach_model(training, FEATURES, TrainingConfig.from_yaml()),
        LABEL_COLUMN,
    )
    if result is not None:
        predictions = result.evaluation_frame[["as_of_date", "supplier_id", "breach_6m", "predicted_probability"]].rename(
            columns={"predicted_probability": "breach_probability_6m"}
        )
        predictions["model_version"] = metadata["trained_version"]
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
    """The champion default model: the calibrated probability that a supplier stops fulfilling
    within six months, when everything outstanding under its amount is lost; size never raises it."""
    training = _load_training(warehouse)
    fingerprint = training_data_fingerprint(complete_label_rows(training, DEFAULT_LABEL_COLUMN))
    result, metadata = _train_or_reuse(
        context, model_registry, model_registry.default_model_name, fingerprint,
        untrainable_default_reason(training),
        lambda: train_breach_model(training, FEATURES, TrainingConfig.from_yaml(), label_column=DEFAULT_LABEL_COLUMN,
                                   size_non_increasing=True),
        DEFAULT_LABEL_COLUMN,
    )
    if result is not None:
        y = result.evaluation_frame[DEFAULT_LABEL_COLUMN].astype(int).to_numpy()
        p = result.evaluation_frame["predicted_probability"].to_numpy()
        metadata["calibration_plot"] = _figure_markdown(reliability_figure({"model (out of time)": (y, p)}))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def loss_rate_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The champion loss-rate model: buyer-won refunds per dollar of order value in the next six
    months, per coverage (pre-shipment, post-delivery), Tweedie boosters with volume as exposure."""
    training = _load_training(warehouse)
    fingerprint = training_data_fingerprint(exposure_rows(training))
    result, metadata = _train_or_reuse(
        context, model_registry, model_registry.loss_rate_model_name, fingerprint,
        untrainable_reason(training), lambda: train_loss_rate_model(training, FEATURES),
        LOSS_RATE_COLUMN,
    )
    if result is not None:
        metadata["calibration_plot"] = _figure_markdown(loss_rate_calibration_figure(result.calibration_tables))
    return dg.MaterializeResult(metadata=metadata)
