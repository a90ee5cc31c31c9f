"""The few lines a person reads after a run: what was scored, how good the model is, where things are."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.partitions import month_end_of
from models.vintages import RISK_MODEL_KINDS, vintages_from_table, why_not_scored
from pipelines.runner import RunOutcome
from pipelines.settings import Settings
from warehouse import open_warehouse

OOT_PREDICTIONS_TABLE = "models.oot_predictions"


def _auc(labels, scores) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < sum(labels) < len(labels) else None


def model_vs_oracle(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict[str, float | int | None] | None:
    """Out-of-time AUC of the model next to the generator's true probabilities on the same rows."""
    truth_files = sorted(truth_dir.glob("*.parquet"))
    if not truth_files:
        return None
    try:
        rows = con.execute(
            f"""
            SELECT p.breach_6m::INT AS label, p.breach_probability_6m AS model, t.breach_probability_6m AS oracle
            FROM {OOT_PREDICTIONS_TABLE} p
            JOIN read_parquet(?) t ON t.supplier_id = p.supplier_id AND t.as_of_date::DATE = p.as_of_date
            """,
            [[f.as_posix() for f in truth_files]],
        ).fetchall()
    except duckdb.CatalogException:
        return None
    if not rows:
        return None
    labels = [r[0] for r in rows]
    return {
        "rows": len(rows),
        "model_auc": _auc(labels, [r[1] for r in rows]),
        "oracle_auc": _auc(labels, [r[2] for r in rows]),
    }


# Ineligibility reasons that are about risk (the models), not about rules of the programme.
RISK_REFUSALS = ["RISK_ABOVE_CEILING", "LOSS_RATE_ABOVE_CEILING", "DEFAULT_RISK_ABOVE_CEILING"]


def risk_by_size(con: duckdb.DuckDBPyConnection, as_of_date) -> list[tuple] | None:
    """Per quintile of 12-month deal value at ``as_of_date``: the share refused for a risk reason,
    the share covered, the median loss rate and default probability. Size must not read as risk."""
    try:
        return con.execute(
            """
            WITH ranked AS (
                SELECT ntile(5) OVER (ORDER BY f.deal_value_12m_usd, s.supplier_id) AS quintile, s.*
                FROM published.supplier_scores s
                JOIN published.supplier_features f USING (as_of_date, supplier_id)
                WHERE s.as_of_date = ?
            )
            SELECT quintile,
                   avg((len(list_intersect(ineligible_reasons, ?)) > 0)::INT)::DOUBLE,
                   avg((trade_assurance_amount_usd > 0)::INT)::DOUBLE,
                   median(loss_rate_6m), median(default_probability_6m)
            FROM ranked GROUP BY quintile ORDER BY quintile
            """,
            [as_of_date, RISK_REFUSALS],
        ).fetchall()
    except duckdb.Error:  # a warehouse from before the loss-rate columns
        return None


def not_scored_line(con: duckdb.DuckDBPyConnection, months: list) -> str | None:
    """One line saying which months of the run have no scores and why (models/vintages.py)."""
    try:
        vintages = vintages_from_table(con.execute("SELECT * FROM models.vintages").fetch_arrow_table())
    except duckdb.CatalogException:
        vintages = []
    reasons = {month: why_not_scored(vintages, RISK_MODEL_KINDS, month) for month in months}
    missing = sorted(month for month, reason in reasons.items() if reason)
    if not missing:
        return None
    return f"  not scored            {len(missing)} month(s) ({missing[0]} .. {missing[-1]}): {reasons[missing[-1]]}"


def describe_run(settings: Settings, outcome: RunOutcome, seconds: float, truth_dir: Path | None = None) -> str:
    with open_warehouse(settings.warehouse, read_only=True) as con:
        run_months = [month for (month,) in con.execute(
            "SELECT DISTINCT as_of_date FROM published.supplier_features WHERE as_of_date BETWEEN ? AND ? ORDER BY 1",
            [month_end_of(outcome.first_month).replace(day=1), month_end_of(outcome.last_month)],
        ).fetchall()]
        suppliers_scored, last = con.execute(
            "SELECT count(*), max(as_of_date) FROM published.supplier_scores WHERE run_id = ?", [outcome.run_id]
        ).fetchone()
        unscored = not_scored_line(con, run_months)
        if last is None:
            return "\n".join([
                "",
                f"Run {outcome.run_id} finished in {seconds:,.0f} s",
                f"  months processed      {len(run_months)} ({run_months[0] if run_months else '-'} .. "
                f"{run_months[-1] if run_months else '-'}): features and storefront figures published",
                unscored or "  not scored            no month",
                f"  warehouse      {settings.warehouse}",
            ])
        first = run_months[0] if run_months else None
        months = len(run_months)
        latest = con.execute(
            """SELECT count(*), avg(eligible::INT), sum(trade_assurance_amount_usd),
                      median(trade_assurance_amount_usd) FILTER (WHERE eligible),
                      any_value(loss_rate_model_version), any_value(default_model_version),
                      any_value(model_version), any_value(policy_version)
               FROM published.supplier_scores WHERE as_of_date = ?""",
            [last],
        ).fetchone()
        grades = con.execute(
            "SELECT risk_grade, count(*) FROM published.supplier_scores WHERE as_of_date = ? GROUP BY 1 ORDER BY 1", [last]
        ).fetchall()
        quality = model_vs_oracle(con, truth_dir) if truth_dir else None
        by_size = risk_by_size(con, last)
    (n_latest, share_eligible, total_amount, median_amount,
     loss_version, default_version, model_version, policy_version) = latest
    lines = [
        "",
        f"Run {outcome.run_id} finished in {seconds:,.0f} s",
        f"  months processed      {months} ({first} .. {run_months[-1]})",
        f"  supplier-months       {suppliers_scored:,} scored",
        *([unscored] if unscored else []),
        f"  latest scored month {last}: {n_latest:,} suppliers, {share_eligible or 0:.1%} eligible",
        f"    total Trade Assurance Amount   ${total_amount or 0:,.0f}",
        f"    median amount (eligible)       ${median_amount or 0:,.0f}",
        f"    risk grades                    " + ", ".join(f"{grade}: {n:,}" for grade, n in grades),
        f"  models {loss_version} (loss rate), {default_version} (default), {model_version} (breach, information)",
        f"  policy {policy_version}",
    ]
    if by_size:
        lines += [
            "    by 12-month deal value quintile (1 smallest .. 5 largest):",
            "      refused for risk               " + "  ".join(f"{row[1]:.1%}" for row in by_size),
            "      covered (amount > 0)           " + "  ".join(f"{row[2]:.1%}" for row in by_size),
            "      median loss rate (bp)          " + "  ".join(
                "n/a" if row[3] is None else f"{row[3] * 1e4:.1f}" for row in by_size),
            "      median default probability     " + "  ".join(
                "n/a" if row[4] is None else f"{row[4]:.2%}" for row in by_size),
        ]
    if quality:
        model_auc = f"{quality['model_auc']:.3f}" if quality["model_auc"] is not None else "n/a"
        oracle_auc = f"{quality['oracle_auc']:.3f}" if quality["oracle_auc"] is not None else "n/a"
        lines.append(
            f"  breach model, out-of-time AUC {model_auc} vs oracle (generator's true probabilities) {oracle_auc} "
            f"on the same {quality['rows']:,} supplier-months"
        )
    # A warning check (drift, calibration) does not fail the run: say so here, or nobody sees it.
    failed = getattr(outcome, "failed_checks", [])
    lines.append("  checks         " + (f"{len(failed)} warned or failed: " + "; ".join(failed) if failed
                                        else "all passed (monitoring: no drift or performance alarm)"))
    lines += [
        "",
        "Outputs",
        f"  warehouse      {settings.warehouse}  (schema published: supplier_scores, supplier_scores_latest, supplier_features, storefront_metrics)",
        f"  parquet        {settings.published_parquet}/<table>/as_of_date=YYYY-MM-DD/",
        f"  quarantine     {settings.quarantine_parquet}/ and warehouse schema quarantine",
        f"  reports        {settings.reports}/ (backtest.html, monitoring.html)",
        *([f"  run log        {outcome.log_path}"] if getattr(outcome, "log_path", None) else []),
        "Look around",
        f"  Dagster UI     DAGSTER_HOME={settings.dagster_home} ASSURANCE_HOME={settings.home} uv run dagster dev -m pipelines.definitions",
        f"  MLflow UI      uv run mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}",
        f"  query          uv run python -c \"import duckdb; print(duckdb.connect('{settings.warehouse}', read_only=True).sql('FROM published.supplier_scores_latest LIMIT 5'))\"",
    ]
    return "\n".join(lines)
