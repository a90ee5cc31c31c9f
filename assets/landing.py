"""The validated landing zone: the one unpartitioned entry point of the graph."""


from pathlib import Path

import dagster as dg

from assets.partitions import single_run
from assets.resource_types import WAREHOUSE_POOL, LandingZoneParam, WarehouseParam
from data_contracts import IngestReport, ingest_landing_zone, load_landing_contracts, load_tolerances
from data_contracts.expectations import run_expectation_suite
from data_contracts.ingest import reconcile_row_counts
from models.realised_outcomes import forget_realised_outcomes
from warehouse.landing_metadata import read_data_horizon, record_landing_zone

ROWS_RECONCILE = "rows_reconcile"
QUARANTINE_WITHIN_TOLERANCE = "quarantine_within_tolerance"


def rows_reconcile(counts: dict[str, tuple[int, int, int]]) -> dg.AssetCheckResult:
    """Nothing is lost: per table, the rows in the landing files (counted from the files
    themselves) equal the rows accepted into `validated.*` plus those in `quarantine.*`."""
    metadata, passed = {}, True
    for table, (in_files, accepted, quarantined) in counts.items():
        balanced = in_files == accepted + quarantined
        passed &= balanced
        metadata[table] = (
            f"files {in_files:,} = accepted {accepted:,} + quarantined {quarantined:,}"
            + ("" if balanced else f"  <-- {in_files - accepted - quarantined:+,} rows unaccounted for")
        )
    metadata["summary"] = "every row accepted or quarantined" if passed else "row counts do not reconcile: rows were lost"
    return dg.AssetCheckResult(check_name=ROWS_RECONCILE, passed=passed, metadata=metadata)


def quarantine_within_tolerance(report: IngestReport) -> dg.AssetCheckResult:
    """The quarantined share per table stays within data_contracts/tolerances.yaml; beyond it
    the run stops, because scores built on a mostly-rejected table would mislead."""
    over = report.over_tolerance(load_tolerances())
    metadata = {}
    for table in report.tables.values():
        by_rule = ", ".join(f"{rule}: {n:,}" for rule, n in sorted(table.quarantined_by_rule.items())) or "none"
        verdict = "OVER TOLERANCE" if table.table in over else "within tolerance"
        metadata[table.table] = f"{table.quarantined_share:.2%} quarantined, {verdict}; {by_rule}"
    metadata["summary"] = (
        "; ".join(f"{name}: {share:.2%} quarantined > tolerance {allowed:.2%}" for name, (share, allowed) in over.items())
        + " (see `assurance validate --landing DIR` for the rules, data_contracts/tolerances.yaml for the limits)"
        if over
        else "all tables within tolerance"
    )
    return dg.AssetCheckResult(check_name=QUARANTINE_WITHIN_TOLERANCE, passed=not over, metadata=metadata)


@dg.asset(
    group_name="ingest",
    backfill_policy=single_run,
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    check_specs=[
        dg.AssetCheckSpec(ROWS_RECONCILE, asset="landing_zone", blocking=True, description=rows_reconcile.__doc__),
        dg.AssetCheckSpec(
            QUARANTINE_WITHIN_TOLERANCE, asset="landing_zone", blocking=True, description=quarantine_within_tolerance.__doc__
        ),
    ],
)
def landing_zone(context: dg.AssetExecutionContext, warehouse: WarehouseParam, landing: LandingZoneParam) -> dg.MaterializeResult:
    """Landing-zone tables checked against their contracts: each row accepted into `validated.*`
    or quarantined in `quarantine.*` with the rule it broke (docs/design.md §3)."""
    landing_dir = Path(landing.path)
    context.log.info(f"ingesting landing zone {landing_dir}")
    with warehouse.connect() as con:
        report = ingest_landing_zone(landing_dir, con, quarantine_parquet_dir=Path(landing.quarantine_parquet_dir))
        record_landing_zone(con, landing_dir, report.data_horizon)
        # outcomes computed from the previous ingest must never be read as this one's
        forget_realised_outcomes(con)
        counts = reconcile_row_counts(landing_dir, con, report)
    text = report.to_text()
    context.log.info("\n" + text)
    metadata: dict[str, object] = {
        "landing_dir": dg.MetadataValue.path(str(landing_dir)),
        "data_horizon": str(report.data_horizon),
        "report": dg.MetadataValue.md(f"```\n{text}\n```"),
    }
    for table in report.tables.values():
        metadata[f"{table.table}_accepted"] = table.rows_accepted
        metadata[f"{table.table}_quarantined"] = table.rows_quarantined
    return dg.MaterializeResult(
        metadata=metadata, check_results=[rows_reconcile(counts), quarantine_within_tolerance(report)]
    )


@dg.asset_check(asset=landing_zone)
def validated_tables_meet_contract(warehouse: WarehouseParam) -> dg.AssetCheckResult:
    """Great Expectations suites built from the landing contracts pass on the accepted rows."""
    with warehouse.connect(read_only=True) as con:
        horizon = read_data_horizon(con)
        present = {
            row[0]
            for row in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'validated'").fetchall()
        }
        results = [
            run_expectation_suite(con, name, contract, horizon=horizon)
            for name, contract in load_landing_contracts().items()
            if name in present
        ]
    metadata = {result.table: result.to_text() for result in results}
    return dg.AssetCheckResult(passed=all(result.passed for result in results), metadata=metadata)
