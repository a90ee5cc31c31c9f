"""The realised outcomes are computed once and read back as they would have been computed
(models/realised_outcomes.py): the stored table answers exactly what `compute_breach_labels`
answers, its three consumers (training set, monitoring, backtest) give the frames they gave
when each computed the labels itself, and anything the table cannot vouch for (another horizon,
definition or schema, a month it does not hold, a new ingest) is computed, never read stale."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from data_contracts import ingest_landing_zone
from data_contracts.outcomes import OutcomeDefinition
from features import month_ends
from models.backtest import build_backtest_history, load_scored_history
from models.labels import compute_breach_labels, is_label_complete
from models.monitoring import MONITORED_SCORES
from models.monitoring_data import OUTCOME_COLUMNS, load_monitoring_run
from models.realised_outcomes import (
    REALISED_OUTCOME_MONTHS_TABLE,
    REALISED_OUTCOMES_TABLE,
    forget_realised_outcomes,
    realised_outcomes,
    store_realised_outcomes,
)
from models.training_set import build_training_set, outcome_month_ends
from synthetic import generate_landing_zone
from warehouse.query_log import CountingConnection, QueryLog

# Twelve months from 2024-01: six with a complete six-month window at the horizon, six without.
FIRST_MONTH = date(2024, 1, 31)
# The view every label computation registers: one statement per computation mentions it.
LABEL_STATEMENT_MARK = "_label_periods_"


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outcomes-world")
    generate_landing_zone(folder, n_suppliers=60, months=12, seed=5, include_inquiries=False, include_reviews=False)
    return folder


@pytest.fixture
def world(landing):
    """A warehouse with the world ingested and its outcomes stored, as the run leaves it."""
    con = duckdb.connect()
    horizon = ingest_landing_zone(landing, con).data_horizon
    store_realised_outcomes(con, outcome_month_ends(con, horizon), horizon)
    yield con, horizon
    con.close()


def label_computations(log: QueryLog) -> int:
    return sum(LABEL_STATEMENT_MARK in statement.sql for statement in log.statements)


def test_the_run_stores_every_month_from_the_first_order_to_the_horizon(world):
    con, horizon = world
    months = [row[0] for row in con.execute(f"SELECT as_of_date FROM {REALISED_OUTCOME_MONTHS_TABLE} ORDER BY 1").fetchall()]
    assert months == month_ends(FIRST_MONTH, horizon.date())
    complete = [m for m in months if is_label_complete(m, horizon)]
    assert 0 < len(complete) < len(months)  # complete and still-open windows both kept, flagged as computed
    stored = con.execute(f"SELECT * FROM {REALISED_OUTCOMES_TABLE} ORDER BY as_of_date, supplier_id").fetch_arrow_table()
    assert stored.equals(compute_breach_labels(con, months, data_horizon=horizon))


@pytest.mark.parametrize(
    "pick, computed",
    [
        (lambda months, h: months, 0),  # every stored month: read, nothing computed
        (lambda months, h: [m for m in months if is_label_complete(m, h)], 0),  # the training set's months
        (lambda months, h: [m for m in months if not is_label_complete(m, h)], 0),  # open windows (backtest)
        (lambda months, h: [months[3]], 0),  # one month
        (lambda months, h: [date(2023, 12, 31), *months[:2]], 1),  # a month before the first order: computed
        (lambda months, h: [*months[-2:], date(2025, 3, 31)], 1),  # a month past the horizon: computed
        (lambda months, h: [], 0),  # nothing asked, nothing read
    ],
)
def test_stored_outcomes_are_what_compute_breach_labels_returns(world, pick, computed):
    con, horizon = world
    months = pick(month_ends(FIRST_MONTH, horizon.date()), horizon)
    log = QueryLog()
    got = realised_outcomes(CountingConnection(con, log), months, horizon)
    assert label_computations(log) == computed
    assert got.equals(compute_breach_labels(con, months, data_horizon=horizon))


@pytest.mark.parametrize(
    "horizon_shift, outcomes",
    [
        (timedelta(days=31), None),  # a later horizon completes more windows: the stored flags are stale
        (timedelta(seconds=-1), None),  # any other instant is another horizon
        (timedelta(0), OutcomeDefinition(definition="performance", low_rating_at_most=None)),  # another definition
    ],
)
def test_another_horizon_or_definition_is_computed_not_read(world, horizon_shift, outcomes):
    con, horizon = world
    months = month_ends(FIRST_MONTH, horizon.date())
    log = QueryLog()
    got = realised_outcomes(CountingConnection(con, log), months, horizon + horizon_shift, outcomes=outcomes)
    assert label_computations(log) == 1
    assert got.equals(compute_breach_labels(con, months, data_horizon=horizon + horizon_shift, outcomes=outcomes))


def test_without_a_horizon_or_after_a_new_ingest_the_outcomes_are_computed(world, landing):
    con, horizon = world
    months = month_ends(FIRST_MONTH, horizon.date())
    log = QueryLog()
    # no horizon given: compute_breach_labels reads the newest event, the stored table cannot vouch for it
    assert realised_outcomes(CountingConnection(con, log), months, None).equals(compute_breach_labels(con, months))
    assert label_computations(log) == 1
    forget_realised_outcomes(con)  # what the landing_zone asset does after ingesting
    assert realised_outcomes(CountingConnection(con, log), months, horizon).equals(
        compute_breach_labels(con, months, data_horizon=horizon))
    assert label_computations(log) == 2


def test_a_rerun_replaces_the_stored_months_whole_and_identically(world):
    con, horizon = world
    months = month_ends(FIRST_MONTH, horizon.date())
    before = con.execute(f"SELECT * FROM {REALISED_OUTCOMES_TABLE}").fetch_arrow_table()
    store_realised_outcomes(con, months, horizon)
    assert con.execute(f"SELECT * FROM {REALISED_OUTCOMES_TABLE}").fetch_arrow_table().equals(before)
    store_realised_outcomes(con, months[:4], horizon)  # a shorter history: nothing of the longer one stays
    assert [r[0] for r in con.execute(f"SELECT DISTINCT as_of_date FROM {REALISED_OUTCOMES_TABLE} ORDER BY 1").fetchall()] \
        == months[:4]
    assert [r[0] for r in con.execute(f"SELECT as_of_date FROM {REALISED_OUTCOME_MONTHS_TABLE} ORDER BY 1").fetchall()] \
        == months[:4]
    store_realised_outcomes(con, [], horizon)  # no orders at all: empty tables, every read computes
    assert con.execute(f"SELECT count(*) FROM {REALISED_OUTCOMES_TABLE}").fetchone()[0] == 0


# --------------------------------------------------------------------------- the three consumers


def test_the_training_set_is_the_same_and_reads_the_stored_outcomes(world):
    con, horizon = world
    log = QueryLog()
    stored = build_training_set(CountingConnection(con, log), horizon)
    assert label_computations(log) == 0
    forget_realised_outcomes(con)
    computed = build_training_set(CountingConnection(con, log), horizon)
    assert label_computations(log) == 1
    assert stored.num_rows > 0 and stored.equals(computed)


def _scored_months(con, horizon) -> list[date]:
    """Every other month, some complete and some not, with scores and a feature: what the
    backtest and the monitoring read besides the outcomes."""
    months = month_ends(FIRST_MONTH, horizon.date())[2::2]
    keys = con.execute(
        "SELECT p.as_of_date, s.supplier_id FROM (SELECT unnest(?::DATE[]) AS as_of_date) p "
        "JOIN validated.suppliers s ON s.joined_at < p.as_of_date + INTERVAL 1 DAY ORDER BY 1, 2", [months]
    ).df()
    rng = np.random.default_rng(3)
    scores = keys.assign(**{score.column: rng.uniform(0.001, 0.2, len(keys)) for score in MONITORED_SCORES},
                         **{score.version_column: f"{score.column}/1" for score in MONITORED_SCORES})
    features = keys.assign(completion_rate_6m=rng.uniform(0.5, 1.0, len(keys)))
    con.execute("CREATE SCHEMA IF NOT EXISTS features")
    con.execute("CREATE OR REPLACE TABLE models.scores AS SELECT * REPLACE (as_of_date::DATE AS as_of_date) FROM scores")
    con.execute("CREATE OR REPLACE TABLE features.supplier_features AS "
                "SELECT * REPLACE (as_of_date::DATE AS as_of_date) FROM features")
    return months


def test_the_backtest_history_is_the_same_and_reads_the_stored_outcomes(world):
    con, horizon = world
    months = _scored_months(con, horizon)
    log = QueryLog()
    history = load_scored_history(CountingConnection(con, log), horizon)
    assert label_computations(log) == 0
    scored = con.execute(
        "SELECT f.*, s.* EXCLUDE (as_of_date, supplier_id) FROM models.scores s "
        "JOIN features.supplier_features f USING (as_of_date, supplier_id) ORDER BY as_of_date, supplier_id").df()
    expected = build_backtest_history(scored, compute_breach_labels(con, months, data_horizon=horizon).to_pandas())
    assert not history["label_complete"].all() and history["label_complete"].any()
    pd.testing.assert_frame_equal(history, expected[history.columns])


def test_the_monitored_outcomes_are_the_same_and_read_from_the_stored_table(world, tmp_path):
    con, horizon = world
    months = _scored_months(con, horizon)
    log = QueryLog()
    run = load_monitoring_run(CountingConnection(con, log), months, features_table="features.supplier_features",
                              scores_table="models.scores", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              data_horizon=horizon)
    assert label_computations(log) == 0
    complete = [m for m in months if is_label_complete(m, horizon)]
    expected = compute_breach_labels(con, complete, data_horizon=horizon).to_pandas()
    expected = expected[expected["label_complete"]][["as_of_date", "supplier_id", *OUTCOME_COLUMNS]]
    assert len(run.outcomes) > 0
    pd.testing.assert_frame_equal(run.outcomes.reset_index(drop=True), expected.reset_index(drop=True))


# --------------------------------------------------------------------------- the assets


def test_the_assets_store_the_outcomes_once_and_an_ingest_forgets_them(landing, tmp_path):
    import dagster as dg

    from assets.landing import landing_zone
    from assets.modeling import realised_outcomes as realised_outcomes_asset
    from assets.modeling import training_set
    from pipelines.resources import LandingZoneResource, WarehouseResource
    from warehouse import open_warehouse

    resources = {"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
                 "landing": LandingZoneResource(path=str(landing), quarantine_parquet_dir=str(tmp_path / "quarantine"))}

    def stored_tables() -> tuple:
        con = open_warehouse(tmp_path / "warehouse.duckdb", read_only=True)
        try:
            tables = {row[0] for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'models'").fetchall()}
            outcomes = con.execute(f"SELECT * FROM {REALISED_OUTCOMES_TABLE} ORDER BY ALL").fetch_arrow_table() \
                if "realised_outcomes" in tables else None
            return tables, outcomes
        finally:
            con.close()

    result = dg.materialize([landing_zone, realised_outcomes_asset, training_set], resources=resources)
    tables, first = stored_tables()
    assert {"realised_outcomes", "realised_outcome_months", "training_set"} <= tables and first.num_rows > 0
    metadata = result.asset_materializations_for_node("realised_outcomes")[0].metadata
    horizon = datetime.fromisoformat(metadata["data_horizon"].value)
    months = month_ends(FIRST_MONTH, horizon.date())
    assert (metadata["months"].value, metadata["months_complete"].value, metadata["dagster/row_count"].value) == (
        len(months), sum(is_label_complete(m, horizon) for m in months), first.num_rows)
    assert dg.materialize([landing_zone], resources=resources).success  # a new ingest
    tables, _ = stored_tables()
    assert "realised_outcomes" not in tables and "realised_outcome_months" not in tables
    assert dg.materialize([realised_outcomes_asset], resources=resources).success  # rerun: the same rows
    assert stored_tables()[1].equals(first)
