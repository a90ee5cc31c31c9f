"""Reports people look at rather than read: the policy backtest."""

from pathlib import Path

import dagster as dg

from assets.partitions import single_run
from assets.resource_types import WAREHOUSE_POOL, PolicySourceParam, PublishedStoreParam, WarehouseParam
from assets.scoring import SCORES_TABLE, load_policy, supplier_scores
from assets.features import SUPPLIER_FEATURES_TABLE
from models.backtest import load_scored_history, run_backtest
from models.backtest_report import formatted, write_backtest_report
from models.vintage_maturity import vintage_maturity
from warehouse.landing_metadata import read_data_horizon

BACKTEST_REPORT = "backtest.html"


@dg.asset(deps=[supplier_scores], backfill_policy=single_run, group_name="reports", pool=WAREHOUSE_POOL, kinds={"html"})
def policy_backtest(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, policy: PolicySourceParam, published_store: PublishedStoreParam
) -> dg.MaterializeResult:
    """What the limit policy covered, was claimed, lost and earned in fees over every scored month
    with a known outcome, next to a naive flat-share policy; an HTML report with plots. Each month
    was scored by its own model vintage, so the outcomes were unknown to the model that decided;
    the metadata adds each vintage's calibration and ranking as its outcomes matured."""
    limit_policy = load_policy(policy)
    with warehouse.connect(read_only=True) as con:
        if not con.execute(f"SELECT count(*) FROM {SCORES_TABLE}").fetchone()[0]:
            # Every month precedes the first model vintage (models/vintages.py): nothing to replay.
            context.log.warning("no scored month: no backtest")
            return dg.MaterializeResult(metadata={"skipped": "no month is scored (none has a model vintage as of it)"})
        history = load_scored_history(con, read_data_horizon(con), SCORES_TABLE, SUPPLIER_FEATURES_TABLE)
    result = run_backtest(history, limit_policy)
    path = write_backtest_report(result, Path(published_store.reports_dir) / BACKTEST_REPORT)
    totals = formatted(result.totals.drop(columns=["policy_version"]))  # $1,234,567, not 1.234567e+06
    maturity = vintage_maturity(history)
    context.log.info(f"backtest report: {path}")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(path)),
            "policy_version": limit_policy.version,
            "totals": dg.MetadataValue.md(totals.to_markdown(index=False)),
            # each vintage's months as their outcomes matured: calibration and ranking out of sample
            "vintage_maturity": dg.MetadataValue.md(formatted(maturity).to_markdown(index=False)),
        }
    )
