"""Monthly scores: each month scored by the model vintages serving it; reason codes, eligibility and amount."""


from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from assets.features import SUPPLIER_FEATURES_TABLE, supplier_features
from assets.modeling import VINTAGES_TABLE, breach_model, default_model, loss_rate_model
from assets.partitions import as_of_dates_in_run, month_end_partitions, partition_key_of, single_run
from assets.resource_types import WAREHOUSE_POOL, ModelRegistryParam, PolicySourceParam, WarehouseParam
from models.overrides import Overrides, apply_overrides, frozen_amounts_before_start, load_overrides, record_override_changes
from models.policy import Policy
from models.registry import load_model_version
from models.supplier_decisions import SCORE_SCHEMA, RiskModels, decide_month
from models.vintages import BREACH, DEFAULT, LOSS_RATE, RISK_MODEL_KINDS, Vintage, serving_vintage, vintages_from_table, why_not_scored
from warehouse import replace_months, transaction

SCORES_TABLE = "models.scores"
# Every change to the analyst overrides file, one row per change (contract: data_contracts/published/override_audit.yaml).
OVERRIDE_AUDIT_TABLE = "published.override_audit"


def load_vintages(con) -> list[Vintage]:
    """Every recorded vintage of the three risk models (none before the models were built)."""
    try:
        return vintages_from_table(con.execute(f"SELECT * FROM {VINTAGES_TABLE}").fetch_arrow_table())
    except duckdb.CatalogException:
        return []


class VintageModels:
    """The risk models each month is scored with: per kind, the newest serving vintage as of the
    month; each registered version loaded once per run."""

    def __init__(self, model_registry: ModelRegistryParam, vintages: list[Vintage]) -> None:
        self.tracking_uri = model_registry.tracking_uri
        self.vintages = vintages
        self._loaded: dict[str, object] = {}

    def _model(self, version: str):
        if version not in self._loaded:
            self._loaded[version] = load_model_version(self.tracking_uri, version)
        return self._loaded[version]

    def for_month(self, as_of_date) -> RiskModels | None:
        """The three vintages serving ``as_of_date``; None when a model has none (the month is not scored)."""
        chosen = {kind: serving_vintage(self.vintages, kind, as_of_date) for kind in RISK_MODEL_KINDS}
        if any(vintage is None for vintage in chosen.values()):
            return None
        breach, loss_rate, default = (chosen[kind] for kind in (BREACH, LOSS_RATE, DEFAULT))
        return RiskModels(
            self._model(breach.version), breach.label, self._model(loss_rate.version), loss_rate.label,
            self._model(default.version), default.label,
        )


def load_policy(source: PolicySourceParam) -> Policy:
    return Policy.from_yaml(Path(source.policy_file)) if source.policy_file else Policy.default()


def _previous_amounts(con, as_of_date):
    """Last month's amounts, which cap this month's growth; none before the first scored month."""
    try:
        rows = con.execute(
            f"SELECT supplier_id, trade_assurance_amount_usd FROM {SCORES_TABLE} WHERE as_of_date = ?",
            [as_of_date.replace(day=1) - timedelta(days=1)],
        ).df()
    except duckdb.CatalogException:  # before the first run the table does not exist
        return None
    return rows.set_index("supplier_id")["trade_assurance_amount_usd"] if len(rows) else None


@dg.asset(
    deps=[supplier_features, breach_model, loss_rate_model, default_model],
    partitions_def=month_end_partitions,
    backfill_policy=single_run,
    group_name="scores",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "lightgbm"},
)
def supplier_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseParam, model_registry: ModelRegistryParam, policy: PolicySourceParam
) -> dg.MaterializeResult:
    """INTERNAL working table `models.scores` (services read `published/supplier_scores`):
    each supplier's six-month loss rate (per coverage), default probability and breach
    probability from the newest serving vintage of each model as of the month (models/vintages.py),
    reason codes from the first two, and the limit policy's eligibility, risk grade and Trade
    Assurance Amount. A month no vintage knew gets no rows (not scored).
    Months run oldest first because each month's amount may rise only so far above the last."""
    limit_policy = load_policy(policy)
    overrides = load_overrides(policy.overrides_file or None, required=policy.overrides_required)
    as_of_dates = as_of_dates_in_run(context)
    with warehouse.connect() as con:
        audit_changes = _audit_overrides(context, con, overrides)
        vintages = load_vintages(con)
        models = VintageModels(model_registry, vintages)
        not_scored: dict = {}
        for as_of_date in as_of_dates:
            month_models = models.for_month(as_of_date)
            if month_models is None:
                not_scored[as_of_date] = why_not_scored(vintages, RISK_MODEL_KINDS, as_of_date)
                decided = SCORE_SCHEMA.empty_table()
            else:
                features = con.execute(
                    f"SELECT * FROM {SUPPLIER_FEATURES_TABLE} WHERE as_of_date = ? ORDER BY supplier_id", [as_of_date]
                ).df()
                decided = decide_month(features, month_models, limit_policy, _previous_amounts(con, as_of_date))
                decided = _with_overrides(context, con, decided, overrides, as_of_date)
            with transaction(con):
                replace_months(con, SCORES_TABLE, [as_of_date], decided)
            if month_models is None:
                context.add_asset_metadata({"dagster/row_count": 0, "not_scored": not_scored[as_of_date]},
                                           partition_key=partition_key_of(as_of_date))
                continue
            eligible = int(sum(decided.column("eligible").to_pylist()))
            amount = float(sum(decided.column("trade_assurance_amount_usd").to_pylist()))
            # Numbers, per month's partition: the UI's Plots tab charts them across partitions.
            context.add_asset_metadata(
                {
                    "dagster/row_count": decided.num_rows,
                    "eligible": eligible,
                    "eligible_share": round(eligible / decided.num_rows, 6) if decided.num_rows else 0.0,
                    "amount_usd": round(amount, 2),
                    "model_version": month_models.breach_version,
                    "loss_rate_model_version": month_models.loss_rate_version,
                    "default_model_version": month_models.default_version,
                },
                partition_key=partition_key_of(as_of_date),
            )
            context.log.info(f"scored {as_of_date}: {decided.num_rows:,} suppliers, {eligible:,} eligible, ${amount:,.0f} covered")
    if not_scored:
        months = sorted(not_scored)
        context.log.warning(f"{len(months)} month(s) not scored ({months[0]}..{months[-1]}): {not_scored[months[-1]]}")
    return dg.MaterializeResult(
        metadata={
            "months_scored": len(as_of_dates) - len(not_scored),
            "months_not_scored": len(not_scored),
            "policy_version": limit_policy.version,
            "overrides_version": overrides.version,
            "override_audit_changes": audit_changes,
        }
    )


# --------------------------------------------------------------------------- analyst overrides (models/overrides.py)


def _audit_overrides(context: dg.AssetExecutionContext, con, overrides: Overrides) -> int:
    """Record what changed in the overrides file since the last run; the number of changes."""
    changes = record_override_changes(con, OVERRIDE_AUDIT_TABLE, overrides, context.run_id, datetime.now(timezone.utc).replace(tzinfo=None))
    for row in changes.to_pylist():
        context.log.info(f"override {row['override_id']} {row['change']} ({row['action']} {row['supplier_id']}, by {row['author']})")
    return changes.num_rows


def _with_overrides(context: dg.AssetExecutionContext, con, decided: pa.Table, overrides: Overrides, as_of_date) -> pa.Table:
    """The month's decisions after the overrides in force; overrides of suppliers not scored are counted and warned about."""
    outcome = apply_overrides(decided, overrides, frozen_amounts_before_start(con, SCORES_TABLE, overrides, as_of_date))
    if outcome.unknown_supplier:
        context.log.warning(
            f"{as_of_date}: {len(outcome.unknown_supplier)} override(s) name a supplier not scored this month, not applied: "
            f"{', '.join(outcome.unknown_supplier)} (check the supplier_id in {overrides.source})"
        )
    context.add_asset_metadata(
        {"overrides_applied": len(outcome.applied), "overrides_unknown_supplier": len(outcome.unknown_supplier)},
        partition_key=partition_key_of(as_of_date),
    )
    return outcome.table
