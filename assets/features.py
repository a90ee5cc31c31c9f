"""Point-in-time supplier features and storefront metrics, one partition per as-of month."""


import dagster as dg
import pyarrow.compute as pc

from assets.landing import landing_zone
from assets.partitions import as_of_dates_in_run, month_end_partitions, single_run
from assets.resource_types import WAREHOUSE_POOL, WarehouseParam
from features import compute_storefront_metrics, compute_supplier_features
from warehouse import replace_months

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


def _distribution_markdown(con, table: str, as_of_date) -> str:
    """Quartiles and null share of every column in one month: the shape of the features at a glance."""
    summary = con.execute(
        f"SUMMARIZE SELECT * EXCLUDE (as_of_date, supplier_id) FROM {table} WHERE as_of_date = ?", [as_of_date]
    ).df()
    header = "| feature | min | q25 | median | q75 | max | null % |\n|---|---|---|---|---|---|---|"
    def shown(value) -> str:
        try:
            return f"{float(value):.4g}"
        except (TypeError, ValueError):
            return "" if value is None else str(value)

    lines = [
        "| " + " | ".join([r.column_name, *(shown(r[c]) for c in ("min", "q25", "q50", "q75", "max", "null_percentage"))]) + " |"
        for _, r in summary.iterrows()
    ]
    return "\n".join([header, *lines])


def _rows_per_month(table) -> dict[str, int]:
    counts = pc.value_counts(table.column("as_of_date")).to_pylist()
    return {str(item["values"]): item["counts"] for item in sorted(counts, key=lambda item: item["values"])}


@dg.asset(**MONTHLY_FEATURE_ASSET)
def supplier_features(context: dg.AssetExecutionContext, warehouse: WarehouseParam) -> dg.MaterializeResult:
    """Every supplier's features at each month end, from what was known by that day (DESIGN §4);
    definitions in docs/feature_catalogue.md."""
    as_of_dates = as_of_dates_in_run(context)
    context.log.info(f"computing supplier features for {len(as_of_dates)} month ends {as_of_dates[0]}..{as_of_dates[-1]}")
    with warehouse.connect() as con:
        rows = compute_supplier_features(con, as_of_dates)
        con.execute("BEGIN TRANSACTION")
        replace_months(con, SUPPLIER_FEATURES_TABLE, as_of_dates, rows)
        con.execute("COMMIT")
        distribution = _distribution_markdown(con, SUPPLIER_FEATURES_TABLE, as_of_dates[-1])
    per_month = _rows_per_month(rows)
    context.log.info(f"supplier features: {rows.num_rows:,} rows, {rows.num_columns - 2} features")
    return dg.MaterializeResult(
        metadata={
            "rows": rows.num_rows,
            "features": rows.num_columns - 2,
            "suppliers_per_month": dg.MetadataValue.json(per_month),
            f"distribution_{as_of_dates[-1]}": dg.MetadataValue.md(distribution),
        }
    )


@dg.asset(**MONTHLY_FEATURE_ASSET)
def storefront_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseParam) -> dg.MaterializeResult:
    """The buyer-facing figures of DESIGN §5 (12-month transactions and value, response rate and
    speed, on-time shipment), exactly as the storefront shows them."""
    as_of_dates = as_of_dates_in_run(context)
    with warehouse.connect() as con:
        rows = compute_storefront_metrics(con, as_of_dates)
        con.execute("BEGIN TRANSACTION")
        replace_months(con, STOREFRONT_METRICS_TABLE, as_of_dates, rows)
        con.execute("COMMIT")
    return dg.MaterializeResult(metadata={"rows": rows.num_rows, "suppliers_per_month": dg.MetadataValue.json(_rows_per_month(rows))})
