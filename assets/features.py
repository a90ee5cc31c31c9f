"""Point-in-time supplier features and storefront metrics, one partition per as-of month."""

import math
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc

from assets.landing import landing_zone
from assets.partitions import as_of_dates_in_data, month_end_partitions, partition_key_of, single_run
from assets.resource_types import WAREHOUSE_POOL, FeatureEngineParam, LandingZoneParam, WarehouseParam
from warehouse import replace_months, transaction

SUPPLIER_FEATURES_TABLE = "features.supplier_features"
STOREFRONT_METRICS_TABLE = "features.storefront_metrics"


# Both feature assets: one partition per as-of month, a range in one run, one warehouse writer.
MONTHLY_FEATURE_ASSET = dict(
    deps=[landing_zone],
    partitions_def=month_end_partitions,
    backfill_policy=single_run,
    group_name="features",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
)


DISTRIBUTION_STATISTICS = ("min", "q25", "q50", "q75", "max")


def _number(value) -> float | None:
    """SUMMARIZE reports statistics as text (min and max keep the column's own type): a float, or
    None where there is none (text columns, booleans, an all-null column)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _distribution(con, table: str, as_of_date) -> dg.TableMetadataValue:
    """Quartiles and null share of every feature in one month, as numbers: the shape of the features at a glance."""
    summary = con.execute(
        f"SUMMARIZE SELECT * EXCLUDE (as_of_date, supplier_id) FROM {table} WHERE as_of_date = ?", [as_of_date]
    ).df()
    records = [
        dg.TableRecord(
            {
                "feature": row["column_name"],
                **{statistic: _number(row[statistic]) for statistic in DISTRIBUTION_STATISTICS},
                # SUMMARIZE's null_percentage is 0..100; a share reads the same in every month.
                "null_share": None if (share := _number(row["null_percentage"])) is None else round(share / 100, 6),
            }
        )
        for _, row in summary.iterrows()
    ]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("feature", "string"),
            *(dg.TableColumn(statistic, "float") for statistic in DISTRIBUTION_STATISTICS),
            dg.TableColumn("null_share", "float", description="share of suppliers with no value this month (0..1)"),
        ]
    )
    return dg.MetadataValue.table(records, schema=schema)


def _rows_per_month(table) -> dict[date, int]:
    counts = pc.value_counts(table.column("as_of_date")).to_pylist()
    return {item["values"]: item["counts"] for item in counts}


def _add_month_metadata(context: dg.AssetExecutionContext, as_of_date: date, metadata: dict) -> None:
    """Metadata of one month's partition only (the run's shared metadata goes on every partition)."""
    context.add_asset_metadata(metadata, partition_key=partition_key_of(as_of_date))


@dg.asset(**MONTHLY_FEATURE_ASSET)
def supplier_features(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, landing: LandingZoneParam, feature_engine: FeatureEngineParam
) -> dg.MaterializeResult:
    """INTERNAL working table `features.supplier_features` (services read `published/supplier_features`):
    every supplier's features at each month end, from what was known by that day (docs/design.md §4);
    definitions in docs/feature_catalogue.md. Computed on the configured feature engine (DuckDB or
    Spark), always landed in the warehouse."""
    as_of_dates = as_of_dates_in_data(context, Path(landing.path))
    context.log.info(
        f"computing supplier features for {len(as_of_dates)} month ends {as_of_dates[0]}..{as_of_dates[-1]} "
        f"on {feature_engine.description}"
    )
    with warehouse.connect() as con:
        rows = feature_engine.supplier_features(con, as_of_dates)
        with transaction(con):
            replace_months(con, SUPPLIER_FEATURES_TABLE, as_of_dates, rows)
        per_month = _rows_per_month(rows)
        for as_of_date in as_of_dates:
            _add_month_metadata(context, as_of_date, {
                "dagster/row_count": int(per_month.get(as_of_date, 0)),
                "distribution": _distribution(con, SUPPLIER_FEATURES_TABLE, as_of_date),
            })
    context.log.info(f"supplier features: {rows.num_rows:,} rows, {rows.num_columns - 2} features")
    return dg.MaterializeResult(metadata={"features": rows.num_columns - 2, "feature_engine": feature_engine.description})


@dg.asset(**MONTHLY_FEATURE_ASSET)
def storefront_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, landing: LandingZoneParam, feature_engine: FeatureEngineParam
) -> dg.MaterializeResult:
    """INTERNAL working table `features.storefront_metrics` (services read `published/storefront_metrics`):
    the buyer-facing figures of docs/design.md §5 (12-month transactions and value, response rate and
    speed, on-time shipment), exactly as the storefront shows them."""
    as_of_dates = as_of_dates_in_data(context, Path(landing.path))
    with warehouse.connect() as con:
        rows = feature_engine.storefront_metrics(con, as_of_dates)
        with transaction(con):
            replace_months(con, STOREFRONT_METRICS_TABLE, as_of_dates, rows)
    per_month = _rows_per_month(rows)
    for as_of_date in as_of_dates:
        _add_month_metadata(context, as_of_date, {"dagster/row_count": int(per_month.get(as_of_date, 0))})
    return dg.MaterializeResult(metadata={"feature_engine": feature_engine.description})
