"""The published tables of docs/design.md §5: what downstream services read, a month whole or not at all."""


from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # not exported by dagster 1.13
    AssetCheckEvaluationTargetMaterializationData,
)

from assets.features import STOREFRONT_METRICS_TABLE, SUPPLIER_FEATURES_TABLE, storefront_metrics, supplier_features
from assets.partitions import as_of_dates_in_run, month_end_partitions, partition_key_of, single_run
from assets.catalogue import MONTHLY_PUBLICATION, published_column_schema
from assets.resource_types import WAREHOUSE_POOL, PublishedStoreParam, WarehouseParam
from assets.scoring import SCORES_TABLE, load_vintages, supplier_scores
from data_contracts import load_published_contracts
from data_contracts.expectations import check_published_months
from models.vintages import RISK_MODEL_KINDS, why_not_scored
from warehouse import sync_published_copies
from warehouse.publish import PUBLISHED_TABLES, commit_months, parquet_differences, published_table

PUBLISHED_SCORES = dg.AssetKey(["published", "supplier_scores"])
PUBLISHED_FEATURES = dg.AssetKey(["published", "supplier_features"])
PUBLISHED_STOREFRONT = dg.AssetKey(["published", "storefront_metrics"])
# Each published asset and its table name in `published.*` and the Parquet tree.
PUBLISHED_ASSETS = {
    PUBLISHED_SCORES: "supplier_scores",
    PUBLISHED_FEATURES: "supplier_features",
    PUBLISHED_STOREFRONT: "storefront_metrics",
}


def _rows_of_months(con: duckdb.DuckDBPyConnection, table: str, as_of_dates: list[date]) -> pa.Table:
    """The rows of `as_of_dates` in `table`, in one statement, sorted as published."""
    return con.execute(
        f"SELECT * FROM {table} WHERE as_of_date IN (SELECT unnest(?::DATE[])) ORDER BY as_of_date, supplier_id",
        [as_of_dates],
    ).fetch_arrow_table()


def _with_run_metadata(scores: pa.Table, run_id: str, published_at: datetime) -> pa.Table:
    n = scores.num_rows
    scores = scores.append_column("run_id", pa.array([run_id] * n, pa.string()))
    return scores.append_column("published_at", pa.array([published_at] * n, pa.timestamp("us")))


# The published scores wait for the month's monitoring, whose blocking checks (a collapsed
# score, a model off by more than a factor of two) stop them (assets/monitoring.py).
MODEL_MONITORING = dg.AssetKey("model_monitoring")


def _published_spec(key: dg.AssetKey, internal: dg.AssetsDefinition, what: str, *gates: dg.AssetKey) -> dg.AssetSpec:
    """A published table as the catalogue shows it: named as what services read, with its columns
    from the contract, distinct from the internal working table of the same name upstream."""
    table = PUBLISHED_ASSETS[key]
    return dg.AssetSpec(
        key,
        deps=[internal, *gates],
        description=f"PUBLISHED `published.{table}` (DuckDB) and `published/{table}/` (Parquet), what downstream services "
        f"read: {what} Contract: data_contracts/published/{table}.yaml.",
        kinds={"duckdb", "parquet"},
        metadata={
            "dagster/column_schema": published_column_schema(table),
            "dagster/table_name": f"published.{table}",
        },
        freshness_policy=MONTHLY_PUBLICATION,
    )


@dg.multi_asset(
    specs=[
        _published_spec(PUBLISHED_SCORES, supplier_scores, "eligibility, loss rate, default and breach probabilities, risk grade and Trade Assurance Amount per supplier and month.",
                        MODEL_MONITORING),
        _published_spec(PUBLISHED_FEATURES, supplier_features, "the features each published score was computed from."),
        _published_spec(PUBLISHED_STOREFRONT, storefront_metrics, "buyer-facing storefront figures (docs/design.md §5 definitions)."),
    ],
    partitions_def=month_end_partitions,
    backfill_policy=single_run,
    group_name="published",
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def published_tables(context: dg.AssetExecutionContext, warehouse: WarehouseParam, published_store: PublishedStoreParam):
    """Publishes the run's months of scores, features and storefront metrics in one transaction, to
    `published.*` in the warehouse and `published/<table>/as_of_date=.../` as Parquet."""
    as_of_dates = as_of_dates_in_run(context)
    published_at = datetime.now(timezone.utc).replace(tzinfo=None)
    parquet_root, published_file = Path(published_store.parquet_root), Path(warehouse.path)
    with warehouse.connect() as con:
        try:
            vintages = load_vintages(con)
            scored = {row[0] for row in con.execute(
                f"SELECT DISTINCT as_of_date FROM {SCORES_TABLE} WHERE as_of_date IN (SELECT unnest(?::DATE[]))",
                [as_of_dates]).fetchall()}
            for as_of_date in as_of_dates:
                # A month no model vintage knew is published without scores (models/vintages.py).
                if as_of_date not in scored and why_not_scored(vintages, RISK_MODEL_KINDS, as_of_date) is None:
                    raise RuntimeError(
                        f"no scores for {as_of_date}: materialise `supplier_scores` for this month before publishing it"
                    )
            # Every month at once: one read per table, one transaction (warehouse.publish.commit_months),
            # each table read when its turn comes, so one table's months are in memory, not three.
            counts = commit_months(con, as_of_dates, {
                "supplier_scores": lambda: _with_run_metadata(
                    _rows_of_months(con, SCORES_TABLE, as_of_dates), context.run_id, published_at),
                "supplier_features": lambda: _rows_of_months(con, SUPPLIER_FEATURES_TABLE, as_of_dates),
                "storefront_metrics": lambda: _rows_of_months(con, STOREFRONT_METRICS_TABLE, as_of_dates),
            })
        finally:
            # Also the start-up reconciliation: a run killed while publishing may have left the
            # published file or Parquet months behind the working file, or staging leftovers.
            # Run once, after the commit (or its failure): before it, it would copy the whole
            # file and hash every month only to do it again.
            synced = sync_published_copies(con, parquet_root, published_file)
            context.log.info(synced.summary())
    for as_of_date, month_counts in counts.items():
        context.log.info(f"published {as_of_date}: " + ", ".join(f"{k} {v:,}" for k, v in month_counts.items()))
        for key, name in PUBLISHED_ASSETS.items():
            context.add_asset_metadata(
                {"dagster/row_count": int(month_counts[name])}, asset_key=key, partition_key=partition_key_of(as_of_date)
            )
    for key, name in PUBLISHED_ASSETS.items():
        yield dg.MaterializeResult(asset_key=key, metadata={"parquet": dg.MetadataValue.path(str(parquet_root / name))})


def _per_partition(
    context: dg.AssetCheckExecutionContext,
    outcomes: dict[date, tuple[bool, dict] | tuple[bool, dict, dg.AssetCheckSeverity]],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation per month of the run, recorded against that month's partition.

    `dg.AssetCheckResult` carries no partition: in a run over a range of months (a single-run
    backfill) Dagster records it once without one, and the UI then shows every month's check
    as skipped. An `AssetCheckEvaluation` names its partition and the materialization of that
    partition it checked, so each month reads passed or failed on its own. An outcome may
    carry its severity as a third element (default ERROR).
    """
    (spec,) = context.check_specs
    latest = _latest_materializations(context.instance, spec.asset_key, [partition_key_of(day) for day in outcomes])
    for as_of_date, (passed, metadata, *severity) in sorted(outcomes.items()):
        key = partition_key_of(as_of_date)
        target = (
            AssetCheckEvaluationTargetMaterializationData(
                storage_id=latest[key].storage_id, run_id=latest[key].run_id, timestamp=latest[key].timestamp
            )
            if key in latest
            else None
        )
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=passed,
            metadata=metadata,
            severity=severity[0] if severity else dg.AssetCheckSeverity.ERROR,
            target_materialization_data=target,
            blocking=spec.blocking,
            partition=key,
        )
    yield dg.Output(None)  # the check's own output, which the step must produce


def _latest_materializations(instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: list[str]) -> dict[str, dg.EventLogRecord]:
    """The newest materialization of each partition in `keys`, in one query when the run
    materialised them all (the newest len(keys) records of those partitions, newest first:
    a partition's first record there is its latest); a partition not among them (checked in
    a run that did not materialise it) is asked for on its own."""
    latest: dict[str, dg.EventLogRecord] = {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=len(keys)
    ).records if keys else []
    for record in records:
        latest.setdefault(record.partition_key, record)
    for key in keys:
        if key not in latest:
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records
            if found:
                latest[key] = found[0]
    return latest


def _contract_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam, table: str):
    as_of_dates = as_of_dates_in_run(context)
    contract = load_published_contracts()[table]
    with warehouse.connect(read_only=True) as con:
        rows = _rows_of_months(con, published_table(table), as_of_dates)
    results = check_published_months(rows, contract)
    outcomes = {
        as_of_date: (result.passed, {"dagster/row_count": result.row_count,
                                     "result": dg.MetadataValue.md(f"```\n{result.to_text()}\n```")})
        for as_of_date, result in results.items()
    }
    for as_of_date in as_of_dates:  # a month with no rows (e.g. no scores before the first model) breaks no rule
        outcomes.setdefault(as_of_date, (True, {"dagster/row_count": 0, "result": "no rows this month"}))
    yield from _per_partition(context, outcomes)


@dg.asset_check(asset=PUBLISHED_SCORES, partitions_def=month_end_partitions)
def supplier_scores_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """Columns and types per data_contracts/published/supplier_scores.yaml; one row per supplier and
    month; probability in [0, 1]; amount >= 0 and 0 whenever the supplier is not eligible."""
    yield from _contract_check(context, warehouse, "supplier_scores")


@dg.asset_check(asset=PUBLISHED_FEATURES, partitions_def=month_end_partitions)
def supplier_features_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """One row per supplier and month, keys present, per data_contracts/published/supplier_features.yaml."""
    yield from _contract_check(context, warehouse, "supplier_features")


@dg.asset_check(asset=PUBLISHED_STOREFRONT, partitions_def=month_end_partitions)
def storefront_metrics_meet_contract(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam):
    """Rates in [0, 1], counts and values non-negative, per data_contracts/published/storefront_metrics.yaml."""
    yield from _contract_check(context, warehouse, "storefront_metrics")


@dg.asset_check(asset=PUBLISHED_SCORES, partitions_def=month_end_partitions)
def parquet_matches_warehouse(context: dg.AssetCheckExecutionContext, warehouse: WarehouseParam, published_store: PublishedStoreParam):
    """The Parquet copy of every published table holds exactly the warehouse's rows for each
    month: the same rows, value for value, not just as many."""
    as_of_dates = as_of_dates_in_run(context)
    root = Path(published_store.parquet_root)
    outcomes = {}
    with warehouse.connect(read_only=True) as con:
        differences = {table: parquet_differences(con, table, as_of_dates, root) for table in PUBLISHED_TABLES}
    for as_of_date in as_of_dates:
        mismatches = [f"{table}: {by_month[as_of_date]}" for table, by_month in differences.items() if by_month[as_of_date]]
        outcomes[as_of_date] = (not mismatches, {"mismatches": "; ".join(mismatches) or "none"})
    yield from _per_partition(context, outcomes)
