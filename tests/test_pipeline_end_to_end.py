"""The whole pipeline, in-process, on a tiny generated landing zone: published tables meet docs/design.md §5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.partitions import MONTH_END_PARTITIONS, month_end_of, month_keys
from features import month_ends
from models import labels
from models.registry import registered_version_tags
from pipelines.runner import run_months
from pipelines.settings import Settings
from synthetic import generate_landing_zone

SCORE_COLUMNS = {
    "as_of_date": "DATE",
    "supplier_id": "VARCHAR",
    "eligible": "BOOLEAN",
    "ineligible_reasons": "VARCHAR[]",
    "breach_probability_6m": "DOUBLE",
    "risk_grade": "VARCHAR",
    "trade_assurance_amount_usd": "DOUBLE",
    "reason_codes": "VARCHAR[]",
    "model_version": "VARCHAR",
    "policy_version": "VARCHAR",
    "run_id": "VARCHAR",
    "published_at": "TIMESTAMP",
}
STOREFRONT_COLUMNS = {
    "transactions_12m",
    "deal_value_12m_usd",
    "response_rate_6m",
    "median_response_hours_6m",
    "on_time_shipment_rate_6m",
}
FIRST, LAST = "2024-01", "2025-08"
# Analyst overrides in the home folder (models/overrides.py): the two busiest suppliers, and one
# that does not exist (a counted warning, not a failure).
OVERRIDES_YAML = """\
overrides:
  - {{id: OV-EXCLUDE, supplier_id: {excluded}, action: exclude, reason: suspected fraud, author: ana,
     start: 2025-03-01, expiry: 2025-06-01}}
  - {{id: OV-FREEZE, supplier_id: {frozen}, action: freeze, reason: data incident, author: ben,
     start: 2025-06-01, expiry: 2025-08-01}}
  - {{id: OV-TYPO, supplier_id: S-NOT-A-SUPPLIER, action: cap, amount_usd: 1000, reason: typo, author: ana,
     start: 2024-01-01, expiry: 2030-01-01}}
"""


def busiest_suppliers(landing: Path, n: int) -> list[str]:
    return [row[0] for row in duckdb.execute(
        "SELECT supplier_id FROM read_parquet(?) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
        [str(landing / "orders" / "**" / "*.parquet"), n]).fetchall()]
FIRST_SCORED, SCORED_MONTHS = "2024-12-31", 9
RISK_MODEL_NAMES = ("supplier_breach_risk", "supplier_loss_rate", "supplier_default_risk")

# A downstream service: opens warehouse.duckdb read-only about ten times a second and
# records the rows it sees per month (the file appears when the first months are published).
POLLING_READER = textwrap.dedent(
    """
    import json, os, sys, time, duckdb
    path, stop = sys.argv[1], sys.argv[2]
    seen, opened, absent, errors = {}, 0, 0, []
    print("ready", flush=True)
    while not os.path.exists(stop):
        if not os.path.exists(path):
            absent += 1
        else:
            try:
                with duckdb.connect(path, read_only=True) as con:
                    rows = con.execute("SELECT as_of_date::VARCHAR, count(*) FROM published.supplier_scores GROUP BY 1").fetchall()
                opened += 1
                for month, n in rows:
                    seen.setdefault(month, set()).add(n)
            except duckdb.CatalogException:
                opened += 1  # nothing published yet
            except duckdb.Error as error:
                errors.append(str(error).splitlines()[0])
        time.sleep(0.1)
    print(json.dumps({"opened": opened, "absent": absent, "errors": errors, "seen": {m: sorted(n) for m, n in seen.items()}}))
    """
)


@contextmanager
def counting_label_computations(calls: list):
    """Every call of `compute_breach_labels` in the block, by any module that imported it, is
    recorded in `calls` (its month ends)."""
    original = labels.compute_breach_labels

    def counted(con, as_of_dates, *args, **kwargs):
        calls.append(sorted(as_of_dates))
        return original(con, as_of_dates, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        for module in [m for name, m in list(sys.modules.items()) if name.split(".")[0] == "models"]:
            if getattr(module, "compute_breach_labels", None) is original:
                patch.setattr(module, "compute_breach_labels", counted)
        yield


@pytest.fixture(scope="module")
def run_label_computations() -> list:
    """The label computations of the module's run (filled by `pipeline_home`)."""
    return []


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory, run_label_computations) -> Settings:
    # A quote and a space in both folder names: every path must reach SQL as a parameter.
    root = tmp_path_factory.mktemp("e2e")
    landing = root / "o'brien landing"
    generate_landing_zone(landing, n_suppliers=300, start=FIRST, months=20, seed=11)
    settings = Settings(home=root / "o'brien home", landing=landing)
    excluded, frozen = busiest_suppliers(landing, 2)
    settings.home.mkdir(parents=True)
    settings.overrides.write_text(OVERRIDES_YAML.format(excluded=excluded, frozen=frozen))
    stop = root / "stop reading"
    reader = subprocess.Popen([sys.executable, "-c", POLLING_READER, str(settings.warehouse), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        with counting_label_computations(run_label_computations):
            outcome = run_months(settings, FIRST, LAST, log_level="WARNING")
    finally:
        stop.write_text("")
        reading = json.loads(reader.communicate(timeout=60)[0])
    settings_outcome = (settings, outcome, reading)
    yield settings_outcome
    os.environ.pop("DAGSTER_HOME", None)


@pytest.fixture(scope="module")
def warehouse(pipeline_home):
    settings, *_ = pipeline_home
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con
    con.close()


def column_types(con, table: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE published.{table}").fetchall()}


def test_every_asset_check_passed(pipeline_home):
    _, outcome, _ = pipeline_home
    assert outcome.failed_checks == []


def test_the_run_computes_the_realised_outcomes_once(pipeline_home, run_label_computations, warehouse):
    # one computation for every month from the first order to the horizon; the training set, the
    # monitoring and the backtest read it (models/realised_outcomes.py) instead of three of their own
    assert run_label_computations == [month_ends(month_end_of(FIRST), month_end_of(LAST))]
    stored = warehouse.execute("SELECT min(as_of_date), max(as_of_date), bool_or(label_complete), "
                               "bool_and(label_complete) FROM models.realised_outcomes").fetchone()
    assert stored == (month_end_of(FIRST), month_end_of(LAST), True, False)


def test_a_reader_polling_the_warehouse_during_the_run_never_made_it_fail(pipeline_home, warehouse):
    """docs/design.md §5: a reader never makes a run fail (the run above succeeded with the reader
    polling throughout) and never sees a partial month."""
    _, _, reading = pipeline_home
    whole = dict(warehouse.execute("SELECT as_of_date::VARCHAR, count(*) FROM published.supplier_scores GROUP BY 1").fetchall())
    print(f"reader: {reading['opened']} opens, {reading['absent']} polls before the file existed, errors {reading['errors']}")
    assert reading["errors"] == [] and reading["opened"] >= 1
    assert reading["seen"] and {month: counts for month, counts in reading["seen"].items()} == {month: [whole[month]] for month in reading["seen"]}


def test_supplier_scores_have_the_contract_columns_and_types(warehouse):
    types = column_types(warehouse, "supplier_scores")
    for column, expected in SCORE_COLUMNS.items():
        assert types.get(column) == expected, f"{column}: {types.get(column)} != {expected}"


def test_one_row_per_supplier_and_month_for_every_month(warehouse):
    months, rows, distinct, first = warehouse.execute(
        "SELECT count(DISTINCT as_of_date), count(*), count(DISTINCT (as_of_date, supplier_id)), min(as_of_date) "
        "FROM published.supplier_scores"
    ).fetchone()
    # Scored from the first quarterly model vintage on (six complete outcome months: as of 2024-12-31);
    # no model knew the eleven months before it (models/vintages.py).
    assert months == SCORED_MONTHS and str(first) == FIRST_SCORED and rows == distinct and rows > 0
    assert warehouse.execute("SELECT count(DISTINCT as_of_date) FROM published.supplier_features").fetchone()[0] == 20
    for table in ("supplier_features", "storefront_metrics"):
        keys = warehouse.execute(
            f"SELECT count(*) - count(DISTINCT (as_of_date, supplier_id)) FROM published.{table}"
        ).fetchone()[0]
        assert keys == 0
    missing = warehouse.execute(
        """SELECT count(*) FROM published.supplier_features f
           ANTI JOIN published.supplier_scores s USING (as_of_date, supplier_id)
           WHERE f.as_of_date >= ?""", [FIRST_SCORED]
    ).fetchone()[0]
    assert missing == 0, "every supplier with features has a score from the first vintage on"


def test_amounts_are_consistent_with_eligibility(warehouse):
    bad = warehouse.execute(
        """SELECT count(*) FROM published.supplier_scores
           WHERE trade_assurance_amount_usd < 0
              OR (NOT eligible AND trade_assurance_amount_usd <> 0)
              OR (NOT eligible AND len(ineligible_reasons) = 0)
              OR (eligible AND len(ineligible_reasons) > 0)
              OR breach_probability_6m NOT BETWEEN 0 AND 1
              OR model_version IS NULL OR policy_version IS NULL"""
    ).fetchone()[0]
    assert bad == 0
    eligible_share = warehouse.execute("SELECT avg(eligible::INT) FROM published.supplier_scores").fetchone()[0]
    assert 0 < eligible_share < 1, "a realistic world has both eligible and ineligible suppliers"


def test_storefront_metrics_have_the_buyer_facing_columns(warehouse):
    columns = set(column_types(warehouse, "storefront_metrics"))
    assert STOREFRONT_COLUMNS <= columns


def test_latest_view_has_one_row_per_supplier_at_the_last_month(warehouse):
    rows, suppliers, newest = warehouse.execute(
        "SELECT count(*), count(DISTINCT supplier_id), max(as_of_date) FROM published.supplier_scores_latest"
    ).fetchone()
    assert rows == suppliers and str(newest) == "2025-08-31"


def test_parquet_copies_match_the_warehouse(pipeline_home, warehouse):
    settings, *_ = pipeline_home
    for table in ("supplier_scores", "supplier_features", "storefront_metrics"):
        parquet = warehouse.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
            [f"{settings.published_parquet}/{table}/*/*.parquet"],
        ).fetchone()[0]
        in_duckdb = warehouse.execute(f"SELECT count(*) FROM published.{table}").fetchone()[0]
        assert parquet == in_duckdb > 0
        months = SCORED_MONTHS if table == "supplier_scores" else 20
        assert len(list((settings.published_parquet / table).glob("as_of_date=*"))) == months
        # Nothing but month folders, each holding its one file; no staging left beside them.
        assert all(p.name.startswith("as_of_date=") for p in (settings.published_parquet / table).iterdir())
        assert {f.name for f in (settings.published_parquet / table).glob("*/*")} == {"part-0.parquet"}
    assert not (settings.home / ".publish-staging").exists()


def test_quarantine_schema_exists_with_rule_and_source_file(warehouse):
    tables = warehouse.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'quarantine'"
    ).fetchall()
    assert {"orders", "suppliers", "disputes"} <= {t[0] for t in tables}
    columns = {row[0] for row in warehouse.execute("DESCRIBE quarantine.orders").fetchall()}
    assert {"rule", "source_file"} <= columns


def test_validate_command_and_the_pipeline_count_the_same_rows(pipeline_home, warehouse):
    from data_contracts import validate_landing_zone

    settings, *_ = pipeline_home
    report, exit_code, _text = validate_landing_zone(settings.landing)
    assert exit_code == 0
    in_warehouse = {
        (table, outcome): rows
        for table, outcome, rows in warehouse.execute(
            'SELECT "table", outcome, sum("rows") FROM validated._ingest_report GROUP BY ALL'
        ).fetchall()
    }
    for name, stats in report.tables.items():
        assert in_warehouse[(name, "read")] == stats.rows_read
        assert in_warehouse[(name, "accepted")] == stats.rows_accepted
        assert in_warehouse.get((name, "quarantined"), 0) == stats.rows_quarantined


OVERRIDDEN_SUPPLIERS = "SELECT DISTINCT supplier_id FROM {table} WHERE override_id IS NOT NULL"


def _supplier_months(warehouse, supplier_id: str) -> dict[str, tuple]:
    rows = warehouse.execute(
        """SELECT strftime(as_of_date, '%Y-%m'), override_id, override_action, override_reason, eligible,
                  trade_assurance_amount_usd, reason_codes, amount_drivers, amount_binding_from
           FROM published.supplier_scores WHERE supplier_id = ? ORDER BY 1""", [supplier_id]).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_the_published_row_shows_the_override_in_force_and_only_then(pipeline_home, dagster_instance, warehouse):
    settings, outcome, _ = pipeline_home
    excluded, frozen = busiest_suppliers(settings.landing, 2)
    months = _supplier_months(warehouse, excluded)
    in_force = {"2025-03", "2025-04", "2025-05"}  # start 2025-03-01 <= T < expiry 2025-06-01
    for month, (override_id, action, reason, eligible, amount, reason_codes, drivers, notice) in months.items():
        if month in in_force:
            assert (override_id, action, reason, eligible, amount) == ("OV-EXCLUDE", "exclude", "suspected fraud", False, 0.0)
            assert "OVERRIDE_EXCLUDED" in reason_codes and drivers == [] and notice is None
        else:  # before its start the month is untouched; after its expiry it stops by itself
            assert override_id is None and "OVERRIDE_EXCLUDED" not in reason_codes, month
    # the freeze holds the amount published at the month end before its start, whatever the policy says
    months = _supplier_months(warehouse, frozen)
    held = months["2025-05"][4]
    assert held > 0, "the busiest supplier but one is covered before the freeze"
    for month in ("2025-06", "2025-07"):
        override_id, _, _, eligible, amount, _, drivers, _ = months[month]
        assert (override_id, eligible, amount, drivers) == ("OV-FREEZE", True, held, ["OVERRIDE_FROZEN"]), month
    assert months["2025-08"][0] is None
    # every change to the file is audited once, by the run that first saw it
    audit = warehouse.execute(
        "SELECT override_id, change, run_id FROM published.override_audit ORDER BY sequence").fetchall()
    assert audit == [(name, "added", outcome.run_id) for name in ("OV-EXCLUDE", "OV-FREEZE", "OV-TYPO")]
    # the override of a supplier that does not exist is counted in each month's metadata
    by_partition = _materializations_in_run(dagster_instance, outcome.run_id, dg.AssetKey("supplier_scores"))
    # (in every scored month: a month before the first vintage has no scores to override)
    scored = [key for key in _run_partition_keys() if key >= FIRST_SCORED[:7]]
    assert {key: m["overrides_unknown_supplier"].value for key, m in by_partition.items()
            if "overrides_unknown_supplier" in m} == dict.fromkeys(scored, 1)


def test_a_lower_amount_is_published_with_its_notice(warehouse):
    """The default policy gives 28 days' notice of a decrease to a supplier that stays eligible:
    the row says from when the new amount binds and which amount binds until then."""
    notices, wrong = warehouse.execute(
        """SELECT count(*) FILTER (WHERE s.amount_binding_from IS NOT NULL),
                  count(*) FILTER (WHERE (s.amount_binding_from IS NOT NULL) <>
                                         coalesce(s.eligible AND s.override_id IS NULL
                                                  AND s.trade_assurance_amount_usd < p.trade_assurance_amount_usd, false)
                                      OR s.amount_binding_from <> s.as_of_date + 28
                                      OR s.amount_before_binding_usd <> p.trade_assurance_amount_usd)
           FROM published.supplier_scores s
           LEFT JOIN published.supplier_scores p
             ON p.supplier_id = s.supplier_id AND p.as_of_date = s.as_of_date - INTERVAL 1 DAY * day(s.as_of_date)"""
    ).fetchone()
    assert notices > 0 and wrong == 0
def test_each_vintage_is_judged_on_the_months_it_scored_as_their_outcomes_mature(warehouse):
    """The backtest's history carries each month's own vintage; the maturity report judges each
    vintage only on the months it scored (out of sample), counting those whose outcome is known."""
    from models.backtest import load_scored_history
    from models.vintage_maturity import vintage_maturity
    from warehouse.landing_metadata import read_data_horizon

    history = load_scored_history(warehouse, read_data_horizon(warehouse))
    published = dict(warehouse.execute(
        "SELECT model_version, count(DISTINCT as_of_date) FROM published.supplier_scores GROUP BY 1").fetchall())
    report = vintage_maturity(history)
    breach = report[report["model"] == "breach"].set_index("vintage")
    assert breach["months_scored"].to_dict() == published
    first = breach.loc["supplier_breach_risk/1@2024-12-31"]
    # of its months, those up to February 2025 have a six-month outcome complete by the horizon (August 2025)
    matured = warehouse.execute(
        """SELECT count(DISTINCT as_of_date) FROM published.supplier_scores
           WHERE model_version = 'supplier_breach_risk/1@2024-12-31' AND as_of_date <= '2025-02-28'"""
    ).fetchone()[0]
    assert first["months_matured"] == matured >= 3
    assert 0.5 < first["auc"] <= 1 and 0 < first["mean_predicted"] < 1 and 0 < first["realised"] < 1
    assert set(report["model"]) == {"breach", "default", "loss_rate"}


def test_backtest_coverage_reconciles_with_the_published_amounts(warehouse):
    """Replaying the published policy over the scored history gives back, month by month,
    exactly what was published: the backtest judges the policy that actually ran (the
    suppliers an analyst overrode are left out: an override is not the policy)."""
    from models.backtest import load_scored_history, run_backtest
    from models.policy import Policy
    from warehouse.landing_metadata import read_data_horizon

    overridden = OVERRIDDEN_SUPPLIERS.format(table="published.supplier_scores")
    history = load_scored_history(warehouse, read_data_horizon(warehouse))
    history = history[~history["supplier_id"].isin([row[0] for row in warehouse.execute(overridden).fetchall()])]
    result = run_backtest(history, Policy.default())
    replayed = result.monthly[result.monthly["policy"] == "policy"]
    replayed = {str(row.as_of_date)[:10]: (round(row.coverage_usd, 2), row.suppliers_covered) for row in replayed.itertuples()}
    published = {
        str(month): (round(total, 2), covered)
        for month, total, covered in warehouse.execute(
            f"""SELECT as_of_date, sum(trade_assurance_amount_usd), count(*) FILTER (WHERE trade_assurance_amount_usd > 0)
               FROM published.supplier_scores WHERE supplier_id NOT IN ({overridden}) GROUP BY 1"""
        ).fetchall()
    }
    assert replayed == published


def test_backtest_report_and_what_if_need_no_retraining(pipeline_home):
    from click.testing import CliRunner

    from pipelines.cli import main

    settings, *_ = pipeline_home
    assert (settings.reports / "backtest.html").stat().st_size > 10_000
    conservative = Path(__file__).resolve().parents[1] / "models" / "policies" / "conservative.yaml"
    versions_before = list((settings.home / "mlartifacts").rglob("MLmodel"))
    result = CliRunner().invoke(main, ["backtest", "--home", str(settings.home), "--policy", str(conservative)])
    assert result.exit_code == 0, result.output
    assert "tap-" in result.output and "report:" in result.output
    assert list((settings.home / "mlartifacts").rglob("MLmodel")) == versions_before


def test_monitoring_ran_every_month_without_alarm_and_wrote_its_report(pipeline_home, warehouse):
    """The monitoring is part of the monthly run: a month of drift and collapse results per
    partition, performance for the months whose outcomes completed, and the report."""
    settings, *_ = pipeline_home
    months = warehouse.execute("SELECT min(as_of_date)::VARCHAR, count(DISTINCT as_of_date) FROM monitoring.drift").fetchone()
    # every month but the first, which has no month before it and, scored by no vintage, no
    # training window to be compared with
    assert months == ("2024-02-29", 19)
    completed = warehouse.execute("SELECT count(DISTINCT as_of_date) FROM monitoring.performance").fetchone()[0]
    assert 0 < completed < 20  # the last six months' outcomes are still open
    assert warehouse.execute("SELECT count(*) FROM monitoring.collapse WHERE collapsed").fetchone()[0] == 0
    report = (settings.reports / "monitoring.html").read_text()
    assert "No alarms in any monitored month." in report


def _run_partition_keys() -> list[str]:
    return month_keys(month_end_of(FIRST), month_end_of(LAST))


@pytest.fixture(scope="module")
def dagster_instance(pipeline_home):
    settings, *_ = pipeline_home
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        yield instance


def test_the_partitions_are_exactly_the_datas_months(dagster_instance):
    """Registered from the landing zone before the run: its 20 months, oldest first, no empty decades."""
    assert dagster_instance.get_dynamic_partitions(MONTH_END_PARTITIONS) == _run_partition_keys()
    assert len(_run_partition_keys()) == 20


def test_published_checks_passed_for_every_partition_of_the_run(pipeline_home, dagster_instance):
    """A range run records each check once per month, so the UI shows every partition passed (not skipped)."""
    _, outcome, _ = pipeline_home
    check_keys = [
        dg.AssetCheckKey(dg.AssetKey(["published", "supplier_scores"]), "supplier_scores_meet_contract"),
        dg.AssetCheckKey(dg.AssetKey(["published", "supplier_scores"]), "parquet_matches_warehouse"),
        dg.AssetCheckKey(dg.AssetKey(["published", "supplier_features"]), "supplier_features_meet_contract"),
        dg.AssetCheckKey(dg.AssetKey(["published", "storefront_metrics"]), "storefront_metrics_meet_contract"),
    ]
    keys = _run_partition_keys()
    for check_key in check_keys:
        infos = {info.partition_key: info for info in dagster_instance.event_log_storage.get_asset_check_partition_info([check_key])}
        assert set(keys) <= set(infos), check_key
        for key in keys:
            assert infos[key].latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED, (check_key, key)
            assert infos[key].is_current, (check_key, key)  # it checked that partition's latest materialization
        history = dagster_instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1000)
        in_run = [record for record in history if record.run_id == outcome.run_id]
        assert sorted(record.partition for record in in_run) == keys, check_key


def _materializations_in_run(instance, run_id: str, asset_key: dg.AssetKey) -> dict[str, dict]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key), limit=1000).records
    return {
        record.asset_materialization.partition: record.asset_materialization.metadata
        for record in records
        if record.run_id == run_id
    }


def test_each_partition_carries_its_own_month_row_count_and_numbers(pipeline_home, dagster_instance, warehouse):
    """One range run, but each month's materialization says that month's rows, as numbers."""
    _, outcome, _ = pipeline_home
    keys = _run_partition_keys()
    tables = {
        dg.AssetKey("supplier_features"): "published.supplier_features",
        dg.AssetKey("storefront_metrics"): "published.storefront_metrics",
        dg.AssetKey("supplier_scores"): "published.supplier_scores",
        dg.AssetKey(["published", "supplier_scores"]): "published.supplier_scores",
        dg.AssetKey(["published", "supplier_features"]): "published.supplier_features",
        dg.AssetKey(["published", "storefront_metrics"]): "published.storefront_metrics",
    }
    for asset_key, table in tables.items():
        expected = dict(warehouse.execute(f"SELECT strftime(as_of_date, '%Y-%m'), count(*) FROM {table} GROUP BY 1").fetchall())
        by_partition = _materializations_in_run(dagster_instance, outcome.run_id, asset_key)
        assert sorted(by_partition) == keys, asset_key
        for key, metadata in by_partition.items():
            row_count = metadata["dagster/row_count"]
            assert isinstance(row_count, dg.IntMetadataValue) and row_count.value == expected.get(key, 0), (asset_key, key)
            assert not any(name.startswith("distribution_") for name in metadata), (asset_key, key)
    scores = _materializations_in_run(dagster_instance, outcome.run_id, dg.AssetKey("supplier_scores"))
    for key, metadata in scores.items():
        if key < FIRST_SCORED[:7]:
            assert "before the first model vintage" in metadata["not_scored"].value, key
            continue
        assert isinstance(metadata["eligible_share"], dg.FloatMetadataValue)
        assert isinstance(metadata["amount_usd"], dg.FloatMetadataValue)
        assert metadata["model_version"].value.endswith(("@2024-12-31", "@2025-03-31", "@2025-06-30")), key


def test_feature_distribution_is_that_months_numbers(pipeline_home, dagster_instance, warehouse):
    _, outcome, _ = pipeline_home
    by_partition = _materializations_in_run(dagster_instance, outcome.run_id, dg.AssetKey("supplier_features"))
    first = by_partition[FIRST]["distribution"]
    assert isinstance(first, dg.TableMetadataValue)
    rows = {record.data["feature"]: record.data for record in first.records}
    assert "tenure_months" in rows and "as_of_date" not in rows
    for feature, row in rows.items():
        assert isinstance(row["null_share"], float) and 0.0 <= row["null_share"] <= 1.0, feature
    month_end = warehouse.execute(
        "SELECT max(tenure_months)::DOUBLE, avg((orders_6m IS NULL)::INT) FROM published.supplier_features WHERE strftime(as_of_date, '%Y-%m') = ?",
        [FIRST],
    ).fetchone()
    assert rows["tenure_months"]["max"] == month_end[0]
    assert abs(rows["orders_6m"]["null_share"] - month_end[1]) < 1e-6


# Last: it closes the shared warehouse connection and reruns months.
def test_rerunning_months_reproduces_identical_values(pipeline_home, warehouse):
    settings, first, _ = pipeline_home
    value_columns = "as_of_date, supplier_id, eligible, ineligible_reasons, breach_probability_6m, risk_grade, trade_assurance_amount_usd, reason_codes, model_version, policy_version, amount_binding_from, amount_before_binding_usd, override_id, override_action, override_reason"
    before = warehouse.execute(f"SELECT {value_columns} FROM published.supplier_scores WHERE as_of_date >= '2025-06-01' ORDER BY 1, 2").fetchall()
    warehouse.close()
    versions = {name: registered_version_tags(settings.mlflow_tracking_uri, name) for name in RISK_MODEL_NAMES}
    second = run_months(settings, "2025-06", LAST, log_level="WARNING")
    # Every vintage's inputs are unchanged: all reused, none retrained or registered again.
    assert {name: registered_version_tags(settings.mlflow_tracking_uri, name) for name in RISK_MODEL_NAMES} == versions
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        after = con.execute(f"SELECT {value_columns} FROM published.supplier_scores WHERE as_of_date >= '2025-06-01' ORDER BY 1, 2").fetchall()
        run_ids = {row[0] for row in con.execute("SELECT DISTINCT run_id FROM published.supplier_scores WHERE as_of_date >= '2025-06-01'").fetchall()}
        untouched = {row[0] for row in con.execute("SELECT DISTINCT run_id FROM published.supplier_scores WHERE as_of_date < '2025-06-01'").fetchall()}
    finally:
        con.close()
    assert after == before
    assert run_ids == {second.run_id} and untouched == {first.run_id}
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:  # the same overrides file: nothing new to audit
        assert con.execute("SELECT count(*) FROM published.override_audit").fetchone()[0] == 3
    finally:
        con.close()


def test_readme_sample_output_has_the_lines_the_summary_prints(pipeline_home):
    """README.md's sample output is rewritten by pipelines.readme_figures from a home: its lines
    (what each says, not the figures of one run) are those the script prints for a real run."""
    import re

    from pipelines.readme_figures import README, block_of, replace_block, sample_output

    settings, *_ = pipeline_home
    generated = sample_output(settings, seconds=1.0)

    def line_kinds(block: str) -> list[str]:
        # each line up to its first figure: "Run", "months processed", "total Trade Assurance Amount", ...
        # (the run id is a random uuid, which may start with a letter: it is no part of the kind)
        lines = [re.sub(r"^Run \S+", "Run", line) for line in block.splitlines()]
        return [re.split(r"[\d$]", line, maxsplit=1)[0].strip() for line in lines]

    readme = README.read_text()
    assert line_kinds(block_of(readme)) == line_kinds(generated)
    # the rewrite replaces the block and nothing else, and is idempotent
    rewritten = replace_block(readme, generated)
    assert block_of(rewritten) == generated
    assert replace_block(rewritten, generated) == rewritten
    assert rewritten.split("<!-- sample-output:begin")[0] == readme.split("<!-- sample-output:begin")[0]
    assert rewritten.split("<!-- sample-output:end -->")[1] == readme.split("<!-- sample-output:end -->")[1]
