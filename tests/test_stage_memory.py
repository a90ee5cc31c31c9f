"""The stages after training read only the columns they use (the memory of a stage then grows with
what it computes, not with the width of the tables it reads), and give the same tables as a read
of whole rows did. Each test builds the whole-width answer the old way beside the narrow one."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from test_realised_outcomes import _scored_months, landing, world  # noqa: F401 - fixtures

from features import compute_supplier_features
from models.backtest import HISTORY_FEATURE_COLUMNS, build_backtest_history, load_scored_history, run_backtest
from models.model_features import resolve_model_features
from models.monitoring import SCORE_COLUMNS, Monitor, drift_columns, monitoring_tables
from models.monitoring_data import SEGMENT_SOURCE_COLUMNS, load_monitoring_run
from models.policy import POLICIES_DIR, Policy
from models.realised_outcomes import realised_outcomes
from models.training_set import build_training_set, store_training_set
from warehouse.publish import commit_months
from warehouse.query_log import CountingConnection, QueryLog

KEYS = ["as_of_date", "supplier_id"]


@pytest.fixture
def wide_world(world):  # noqa: F811 - the fixture imported above
    """The world with its real, whole-width features and scores carrying columns monitoring never reads."""
    con, horizon = world
    months = _scored_months(con, horizon)
    features = compute_supplier_features(con, months)
    con.register("_features", features)
    con.execute("CREATE OR REPLACE TABLE features.supplier_features AS SELECT * FROM _features")
    con.unregister("_features")
    con.execute("ALTER TABLE models.scores ADD COLUMN reason_codes VARCHAR[] DEFAULT ['LONG_REASON_CODE', 'ANOTHER']")
    return con, horizon, months


def _whole_rows(con, table: str) -> pd.DataFrame:
    frame = con.execute(f"SELECT * FROM {table} ORDER BY as_of_date, supplier_id").df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def test_monitoring_reads_only_its_columns_and_monitors_the_same(wide_world, tmp_path):
    con, horizon, months = wide_world
    log = QueryLog()
    run = load_monitoring_run(CountingConnection(con, log), months, features_table="features.supplier_features",
                              scores_table="models.scores", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              data_horizon=horizon, training_months=months[:2])
    features = _whole_rows(con, "features.supplier_features")
    inputs = drift_columns(f.name for f in resolve_model_features(None, features))
    # Narrow: the keys, the drift-tested inputs and the segments' columns; the scores without their reasons.
    assert list(run.monitor.features.columns) == list(dict.fromkeys([*KEYS, *inputs, *SEGMENT_SOURCE_COLUMNS]))
    assert len(run.monitor.features.columns) < len(features.columns)
    assert list(run.monitor.scores.columns) == [*KEYS, *SCORE_COLUMNS]
    reads = [s.sql for s in log.statements if "supplier_features" in s.sql or "models.scores" in s.sql]
    assert reads and not any("reason_codes" in sql or ("SELECT *" in sql and "LIMIT 0" not in sql) for sql in reads)
    # The same monitoring as whole rows give, month by month.
    whole = Monitor(features, _whole_rows(con, "models.scores")[[*KEYS, *SCORE_COLUMNS]], inputs)
    for month in months:
        outcomes = run.outcomes[run.outcomes["as_of_date"] == month]
        expected = monitoring_tables(whole.month(month, run.references[month], outcomes if len(outcomes) else None,
                                                 run.own_metrics(month, "ranking_metric")))
        got = monitoring_tables(run.month(month))
        for name in expected:
            pd.testing.assert_frame_equal(got[name], expected[name])
    assert any(len(monitoring_tables(run.month(m))["performance"]) for m in months)  # outcomes were compared too


def test_monitoring_a_month_without_features_tests_no_input(wide_world, tmp_path):
    con, horizon, months = wide_world
    con.execute("DELETE FROM features.supplier_features")
    run = load_monitoring_run(con, months, features_table="features.supplier_features", scores_table="models.scores",
                              tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", data_horizon=horizon)
    assert run.monitor.input_columns == [] and run.monitor.features.empty


def test_the_backtest_reads_only_the_features_a_replay_reads_and_replays_the_same(wide_world):
    con, horizon, months = wide_world
    # Scores the policies can replay: the risk columns in range, plus what the run's scores carry besides.
    con.execute("ALTER TABLE models.scores ADD COLUMN loss_rate_pre_shipment_6m DOUBLE DEFAULT 0.001")
    con.execute("ALTER TABLE models.scores ADD COLUMN loss_rate_post_delivery_6m DOUBLE DEFAULT 0.002")
    history = load_scored_history(con, horizon)
    scored = con.execute(
        "SELECT f.*, s.* EXCLUDE (as_of_date, supplier_id, reason_codes) FROM models.scores s "
        "JOIN features.supplier_features f USING (as_of_date, supplier_id) ORDER BY as_of_date, supplier_id").df()
    whole = build_backtest_history(scored, realised_outcomes(con, months, horizon).to_pandas())
    feature_columns = set(compute_supplier_features(con, months[:1]).column_names)
    assert set(history.columns) & feature_columns == set(HISTORY_FEATURE_COLUMNS) & feature_columns
    assert len(history.columns) < len(whole.columns)
    pd.testing.assert_frame_equal(history, whole[history.columns])
    for policy in (Policy.default(), Policy.from_yaml(POLICIES_DIR / "v1.yaml")):
        narrow, wide = run_backtest(history, policy), run_backtest(whole, policy)
        pd.testing.assert_frame_equal(narrow.monthly, wide.monthly)
        pd.testing.assert_frame_equal(narrow.totals, wide.totals)
        pd.testing.assert_frame_equal(narrow.decisions, wide.decisions[narrow.decisions.columns])


def test_the_training_set_is_written_inside_duckdb_with_the_rows_and_types_it_had(world):  # noqa: F811
    """The asset's table, written by a query, is the table the fetched rows made before."""
    con, horizon = world
    fetched = build_training_set(con, horizon)
    con.register("_fetched", fetched)
    con.execute("CREATE TABLE models.training_set_fetched AS SELECT * FROM _fetched")  # what the asset did
    con.unregister("_fetched")
    assert store_training_set(con, "models.training_set", horizon) == fetched.num_rows > 0
    assert con.execute("DESCRIBE models.training_set").fetchall() == con.execute("DESCRIBE models.training_set_fetched").fetchall()
    written = con.execute("SELECT * FROM models.training_set").fetch_arrow_table()  # in its stored order
    assert written.equals(con.execute("SELECT * FROM models.training_set_fetched").fetch_arrow_table())


def _month_rows(as_of_date, suppliers: int = 3) -> pa.Table:
    return pa.table({"as_of_date": pa.array([as_of_date] * suppliers, pa.date32()),
                     "supplier_id": [f"S{i}" for i in range(suppliers)], "value": [float(i) for i in range(suppliers)]})


def test_publishing_reads_one_table_at_a_time_inside_its_transaction():
    """A table given as a function is read when its turn comes: the scores are already in
    place (in the same transaction) when the features are read, and none is read twice."""
    con = duckdb.connect()
    months = [date(2025, 1, 31), date(2025, 2, 28)]
    reads = []

    def scores():
        reads.append("scores")
        return pa.concat_tables([_month_rows(m) for m in months])

    def features():
        reads.append("features")
        assert con.execute("SELECT count(*) FROM published.supplier_scores").fetchone()[0] == 6  # scores went first
        return _month_rows(months[0], 2)

    counts = commit_months(con, months, {"supplier_scores": scores, "supplier_features": features})
    assert reads == ["scores", "features"]
    assert counts == {months[0]: {"supplier_scores": 3, "supplier_features": 2},
                      months[1]: {"supplier_scores": 3, "supplier_features": 0}}


def test_a_table_read_late_with_a_stray_month_publishes_nothing():
    con = duckdb.connect()
    months = [date(2025, 1, 31)]
    commit_months(con, months, {"supplier_scores": _month_rows(months[0])})
    with pytest.raises(ValueError, match="supplier_features: rows for 2025-02-28 given to publish 2025-01-31"):
        commit_months(con, months, {"supplier_scores": lambda: _month_rows(months[0], 1),
                                    "supplier_features": lambda: _month_rows(date(2025, 2, 28))})
    assert con.execute("SELECT count(*) FROM published.supplier_scores").fetchone()[0] == 3  # rolled back whole
