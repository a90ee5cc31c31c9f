"""The training set and the champion breach-risk model (unpartitioned: they span all history)."""


import base64
import io

import dagster as dg
import pandas as pd

from assets.landing import landing_zone
from assets.partitions import single_run
from assets.resource_types import WAREHOUSE_POOL, ModelRegistryParam, WarehouseParam
from features import FEATURES
from models.plots import reliability_figure
from models.registry import ModelAliasNotFound, alias_data_fingerprint, load_model_by_alias, log_and_register, promote_if_better
from models.training import TrainingConfig, complete_label_rows, train_breach_model, training_data_fingerprint
from models.training_set import build_training_set, untrainable_reason
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
    breach label that followed (DESIGN §4); later months are scored, never trained on."""
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
            "rows": rows.num_rows,
            "months": len(per_month),
            "data_horizon": str(horizon),
            "breach_rate_per_month": dg.MetadataValue.json({m: round(rate, 4) for m, _, rate in per_month}),
        }
    )


@dg.asset(deps=[training_set], backfill_policy=single_run, group_name="model", pool=WAREHOUSE_POOL, kinds={"lightgbm", "mlflow"})
def breach_model(context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam) -> dg.MaterializeResult:
    """The champion model in the MLflow registry: a LightGBM breach classifier trained on earlier
    months, calibrated and evaluated on later ones. When the training data is unchanged the
    champion is reused (reruns are idempotent); otherwise the new model is a challenger and is
    promoted only if it passes the gates against the champion on the same rows."""
    with warehouse.connect() as con:
        training = con.execute(f"SELECT * FROM {TRAINING_SET_TABLE} ORDER BY as_of_date, supplier_id").df()
    training["as_of_date"] = pd.to_datetime(training["as_of_date"]).dt.date
    fingerprint = training_data_fingerprint(complete_label_rows(training))
    name, uri = model_registry.registered_model_name, model_registry.tracking_uri
    problem = untrainable_reason(training)
    if problem:
        if alias_data_fingerprint(uri, "champion", registered_model_name=name) is None:
            raise ModelAliasNotFound(
                f"cannot train a breach model: {problem}; and the registry {uri} has no champion to fall back on. "
                "Train one on data with disputes into the same home first (e.g. `assurance demo --home HOME`), then rerun"
            )
        _, version = load_model_by_alias(uri, "champion", registered_model_name=name)
        context.log.warning(f"not training: {problem}; scoring with the existing champion {version}")
        return dg.MaterializeResult(
            metadata={"champion_version": version, "trained": False, "not_trained_because": problem, "data_fingerprint": fingerprint}
        )
    if alias_data_fingerprint(uri, "champion", registered_model_name=name) == fingerprint:
        _, version = load_model_by_alias(uri, "champion", registered_model_name=name)
        context.log.info(f"training data unchanged (sha256 {fingerprint[:12]}): reusing champion {version}")
        return dg.MaterializeResult(metadata={"champion_version": version, "trained": False, "data_fingerprint": fingerprint})

    result = train_breach_model(training, FEATURES, TrainingConfig.from_yaml())
    version = log_and_register(result, uri, registered_model_name=name, experiment_name=model_registry.experiment_name)
    decision = promote_if_better(uri, result.evaluation_frame, registered_model_name=name, experiment_name=model_registry.experiment_name)
    _, champion_version = load_model_by_alias(uri, "champion", registered_model_name=name)
    context.log.info(f"trained {version}; champion is {champion_version}: {'; '.join(decision.reasons)}")

    predictions = result.evaluation_frame[["as_of_date", "supplier_id", "breach_6m", "predicted_probability"]].rename(
        columns={"predicted_probability": "breach_probability_6m"}
    )
    predictions["model_version"] = version
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS models")
        con.register("_oot", predictions)
        con.execute(f"CREATE OR REPLACE TABLE {OOT_PREDICTIONS_TABLE} AS SELECT * FROM _oot")
        con.unregister("_oot")

    y = result.evaluation_frame["breach_6m"].astype(int).to_numpy()
    p = result.evaluation_frame["predicted_probability"].to_numpy()
    metrics = {key: round(float(value), 4) for key, value in result.metrics.items() if key.startswith("evaluation_")}
    return dg.MaterializeResult(
        metadata={
            "trained_version": version,
            "champion_version": champion_version,
            "trained": True,
            "promotion": "; ".join(decision.reasons),
            "split": dg.MetadataValue.json(result.split.describe()),
            "out_of_time_metrics": dg.MetadataValue.json(metrics),
            "data_fingerprint": fingerprint,
            "calibration_plot": _figure_markdown(reliability_figure({"model (out of time)": (y, p)})),
        }
    )
