"""The published tables of DESIGN §5: what downstream services read, a month whole or not at all."""


from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from assets.features import STOREFRONT_METRICS_TABLE, SUPPLIER_FEATURES_TABLE, storefront_metrics, supplier_features
from assets.partitions import as_of_dates_in_run, month_end_partitions, single_run
from assets.resource_types import WAREHOUSE_POOL, PublishedStoreParam, WarehouseParam
from assets.scoring import SCORES_TABLE, supplier_scores
from data_contracts import load_published_contracts
from data_contracts.expectations import check_published_frame
from warehouse import publish_months, sync_published_copies
from warehouse.publish import month_file, published_table

PUBLISHED_SCORES = dg.AssetKey(["published", "supplier_scores"])
PUBLISHED_FEATURES = dg.AssetKey(["published", "supplier_features"])
PUBLISHED_STOREFRONT = dg.AssetKey(["published", "storefront_metrics"])


def _month_rows(con: duckdb.DuckDBPyConnection, table: str, as_of_date: date) -> pa.Table:
    return con.execute(f"SELECT * FROM {table} WHERE as_of_date = ? ORDER BY supplier_id", [as_of_date]).fetch_arrow_table()


def _with_run_metadata(scores: pa.Table, run_id: str, published_at: datetime) -> pa.Table:
    n = scores.num_rows
    scores = scores.append_column("run_id", pa.array([run_id] * n, pa.string()))
    return scores.append_column("published_at", pa.array([published_at] * n, pa.timestamp("us")))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(PUBLISHED_SCORES, deps=[supplier_scores], description="Eligibility, breach probability, risk grade and Trade Assurance Amount per supplier and month.", kinds={"duckdb", "parquet"}),
        dg.AssetSpec(PUBLISHED_FEATURES, deps=[supplier_features], description="The features each published score was computed from.", kinds={"duckdb", "parquet"}),
        dg.AssetSpec(PUBLISHED_STOREFRONT, deps=[storefront_metrics], description="Buyer-facing storefront figures (DESIGN §5 definitions).", kinds={"duckdb", "parquet"}),
    ],
    partitions_def=month_end_partitions,
    backfill_policy=single_run,
    group_name="published",
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def published_tables(context: dg.AssetExecutionContext, warehouse: WarehouseParam, published_store: PublishedStoreParam):
    """Publishes each month of scores, features and storefront metrics in one transaction, to
    `published.*` in the warehouse and `published/<table>/as_of_date=.../` as Parquet."""
    as_of_dates = as_of_dates_in_run(context)
    published_at = datetime.now(timezone.utc).replace(tzinfo=None)
    parquet_root, published_file = Path(published_store.parquet_root), Path(warehouse.path)
    with warehouse.connect() as con:
        # Start-up reconciliation: a run killed while publishing may have left the published
        # file or Parquet months behind the working file, or staging leftovers.
        repaired = sync_published_copies(con, parquet_root, published_file)
        context.log.info(repaired.summary())

        def months():
            for as_of_date in as_of_dates:
                scores = _with_run_metadata(_month_rows(con, SCORES_TABLE, as_of_date), context.run_id, published_at)
                if scores.num_rows == 0:
                    raise RuntimeError(
                        f"no scores for {as_of_date}: materialise `supplier_scores` for this month before publishing it"
                    )
                yield as_of_date, {
                    "supplier_scores": scores,
                    "supplier_features": _month_rows(con, SUPPLIER_FEATURES_TABLE, as_of_date),
                    "storefront_metrics": _month_rows(con, STOREFRONT_METRICS_TABLE, as_of_date),
                }

        counts = publish_months(con, months(), parquet_root, published_file)
    totals = {"supplier_scores": 0, "supplier_features": 0, "storefront_metrics": 0}
    for as_of_date, month_counts in counts.items():
        for name, rows in month_counts.items():
            totals[name] += rows
        context.log.info(f"published {as_of_date}: " + ", ".join(f"{k} {v:,}" for k, v in month_counts.items()))
    for key, name in [(PUBLISHED_SCORES, "supplier_scores"), (PUBLISHED_FEATURES, "supplier_features"), (PUBLISHED_STOREFRONT, "storefront_metrics")]:
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={"rows": totals[name], "months": len(as_of_dates), "parquet": dg.MetadataValue.path(str(Path(published_store.parquet_root) / name))},
        )


def _published_months(con: duckdb.DuckDBPyConnection, table: str, as_of_dates: list[date]) -> pa.Table:
    return con.execute(
        f"SELECT * FROM {published_table(table)} WHERE as_of_date IN (SELECT unnest(?::DATE[])) ORDER BY as_of_date, supplier_id",
        [as_of_dates],
    ).fetch_arrow_table()


def _contract_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam, table: str) -> dg.AssetCheckResult:
    as_of_dates = as_of_dates_in_run(context)
    with warehouse.connect(read_only=True) as con:
        rows = _published_months(con, table, as_of_dates)
    result = check_published_frame(rows, load_published_contracts()[table])
    return dg.AssetCheckResult(
        passed=result.passed,
        metadata={"rows": rows.num_rows, "months": len(as_of_dates), "result": dg.MetadataValue.md(f"```\n{result.to_text()}\n```")},
    )


@dg.asset_check(asset=PUBLISHED_SCORES, partitions_def=month_end_partitions)
def supplier_scores_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam) -> dg.AssetCheckResult:
    """Columns and types per data_contracts/published/supplier_scores.yaml; one row per supplier and
    month; probability in [0, 1]; amount >= 0 and 0 whenever the supplier is not eligible."""
    return _contract_check(context, warehouse, "supplier_scores")


@dg.asset_check(asset=PUBLISHED_FEATURES, partitions_def=month_end_partitions)
def supplier_features_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam) -> dg.AssetCheckResult:
    """One row per supplier and month, keys present, per data_contracts/published/supplier_features.yaml."""
    return _contract_check(context, warehouse, "supplier_features")


@dg.asset_check(asset=PUBLISHED_STOREFRONT, partitions_def=month_end_partitions)
def storefront_metrics_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam) -> dg.AssetCheckResult:
    """Rates in [0, 1], counts and values non-negative, per data_contracts/published/storefront_metrics.yaml."""
    return _contract_check(context, warehouse, "storefront_metrics")


@dg.asset_check(asset=PUBLISHED_SCORES, partitions_def=month_end_partitions)
def parquet_matches_warehouse(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam, published_store: PublishedStoreParam
) -> dg.AssetCheckResult:
    """The Parquet copy of every published table holds exactly the warehouse's rows for each month."""
    as_of_dates = as_of_dates_in_run(context)
    root = Path(published_store.parquet_root)
    mismatches = {}
    with warehouse.connect(read_only=True) as con:
        for table in ("supplier_scores", "supplier_features", "storefront_metrics"):
            for as_of_date in as_of_dates:
                in_duckdb = con.execute(f"SELECT count(*) FROM {published_table(table)} WHERE as_of_date = ?", [as_of_date]).fetchone()[0]
                file = month_file(root, table, as_of_date)
                in_parquet = (
                    con.execute("SELECT count(*) FROM read_parquet(?)", [str(file)]).fetchone()[0] if file.exists() else 0
                )
                if in_duckdb != in_parquet:
                    mismatches[f"{table}/{as_of_date}"] = f"duckdb {in_duckdb:,} vs parquet {in_parquet:,}"
    return dg.AssetCheckResult(passed=not mismatches, metadata={"months": len(as_of_dates), "mismatches": dg.MetadataValue.json(mismatches)})
