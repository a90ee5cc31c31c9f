"""Great Expectations suites from the contracts: they pass on accepted data and can fail."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest
from test_contracts_support import valid_tables, write_landing

from data_contracts import (
    build_expectation_suite,
    check_published_frame,
    ingest_landing_zone,
    load_landing_contracts,
    load_published_contracts,
    run_expectation_suite,
)

LANDING = load_landing_contracts()
PUBLISHED = load_published_contracts()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    tables = valid_tables()
    tables["orders"].loc[2, "amount_usd"] = -3.0  # quarantined, so validated stays clean
    tables["reviews"].loc[0, "rating"] = 9
    root = write_landing(tmp_path_factory.mktemp("gx") / "landing", tables)
    con = duckdb.connect()
    report = ingest_landing_zone(root, con)
    return con, report


def test_suite_is_a_gx_suite_built_from_the_contract():
    import great_expectations as gx

    suite = build_expectation_suite(LANDING["orders"])
    assert isinstance(suite, gx.ExpectationSuite)
    types = {e.expectation_type for e in suite.expectations}
    assert {"expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
            "expect_column_values_to_be_in_set", "expect_column_values_to_be_between",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "expect_table_columns_to_match_set"} <= types
    rules = {e.meta["rule"] for e in suite.expectations}
    assert {"null_required", "non_positive_amount", "unknown_enum", "shipped_before_created"} <= rules


@pytest.mark.parametrize("table", list(LANDING))
def test_accepted_rows_satisfy_their_contract(ingested, table):
    con, report = ingested
    result = run_expectation_suite(con, table, LANDING[table], horizon=report.data_horizon)
    assert result.passed, result.to_text()
    assert result.mode == "full" and result.rows_checked_by_gx == result.row_count
    assert any(o.engine == "great_expectations" for o in result.outcomes)


def test_suite_fails_on_a_table_that_breaks_the_contract(ingested):
    con, _ = ingested
    con.execute("CREATE OR REPLACE TABLE validated.orders_broken AS SELECT * FROM validated.orders")
    con.execute("UPDATE validated.orders_broken SET amount_usd = -1 WHERE order_id = 'O00001'")
    con.execute("UPDATE validated.orders_broken SET status = 'Shipped' WHERE order_id = 'O00003'")
    con.execute("UPDATE validated.orders_broken SET shipped_at = created_at - INTERVAL 1 DAY WHERE order_id = 'O00000'")
    con.execute("UPDATE validated.orders_broken SET supplier_id = 'S999' WHERE order_id = 'O00004'")
    result = run_expectation_suite(con, "orders_broken", LANDING["orders"])
    assert not result.passed
    failed = {o.rule: o.unexpected_count for o in result.failures}
    assert failed == {"non_positive_amount": 1, "unknown_enum": 1, "shipped_before_created": 1,
                      "orphan_supplier": 1}
    by_rule = {o.rule: o for o in result.failures}
    assert by_rule["unknown_enum"].engine == "great_expectations"
    assert by_rule["unknown_enum"].examples == ["Shipped"]
    assert by_rule["orphan_supplier"].engine == "duckdb"  # a reference is not a one-frame expectation
    assert "FAILED" in result.to_text()


def test_large_tables_use_a_deterministic_sample_plus_exact_aggregates(ingested):
    con, _ = ingested
    con.execute("CREATE OR REPLACE TABLE validated.orders_broken2 AS SELECT * FROM validated.orders")
    con.execute("UPDATE validated.orders_broken2 SET amount_usd = 0 WHERE order_id IN ('O00005', 'O00006')")
    first = run_expectation_suite(con, "orders_broken2", LANDING["orders"], full_rows_limit=5)
    second = run_expectation_suite(con, "orders_broken2", LANDING["orders"], full_rows_limit=5)
    assert first.mode == "sample+aggregates" and first.rows_checked_by_gx < first.row_count
    assert first.rows_checked_by_gx == second.rows_checked_by_gx  # deterministic sample
    assert not first.passed
    amount = next(o for o in first.outcomes if o.rule == "non_positive_amount")
    assert amount.engine == "duckdb" and amount.unexpected_count == 2  # exact, whatever the sample
    clean = run_expectation_suite(con, "orders", LANDING["orders"], full_rows_limit=5)
    assert clean.passed, clean.to_text()


def _scores(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "as_of_date": [date(2025, 6, 30)] * n,
        "supplier_id": [f"S{i}" for i in range(n)],
        "eligible": [i % 2 == 0 for i in range(n)],
        "ineligible_reasons": [[] if i % 2 == 0 else ["not_opted_in"] for i in range(n)],
        "breach_probability_6m": [0.05 * i for i in range(n)],
        "risk_grade": ["A"] * n,
        "trade_assurance_amount_usd": [1000.0 if i % 2 == 0 else 0.0 for i in range(n)],
        "reason_codes": [["good_history"]] * n,
        "amount_drivers": [["RISK_REDUCED"]] * n,
        "model_version": ["3"] * n,
        "policy_version": ["p1"] * n,
        "loss_rate_6m": [0.002 * i for i in range(n)],
        "loss_rate_pre_shipment_6m": [0.001 * i for i in range(n)],
        "loss_rate_post_delivery_6m": [0.0005 * i for i in range(n)],
        "default_probability_6m": [0.01 * i for i in range(n)],
        "loss_rate_model_version": ["supplier_loss_rate/1"] * n,
        "default_model_version": ["supplier_default_risk/1"] * n,
        "outcome_definition": ["claims"] * n,
        "run_id": ["r"] * n,
        "published_at": [datetime(2025, 7, 1)] * n,
    })


def test_published_frame_checks():
    good = _scores()
    assert check_published_frame(good, PUBLISHED["supplier_scores"]).passed

    bad = _scores()
    bad.loc[1, "trade_assurance_amount_usd"] = 500.0  # ineligible but covered
    bad.loc[2, "breach_probability_6m"] = 1.5
    bad.loc[3, "default_probability_6m"] = -0.1  # a probability below 0
    bad = pd.concat([bad, bad.iloc[[0]]], ignore_index=True)  # duplicate (as_of_date, supplier_id)
    result = check_published_frame(bad, PUBLISHED["supplier_scores"])
    assert {o.rule for o in result.failures} == {"amount_when_ineligible", "out_of_range", "duplicate_id"}

    missing = _scores().drop(columns=["run_id"])
    assert "columns" in {o.rule for o in check_published_frame(missing, PUBLISHED["supplier_scores"]).failures}

    features = pd.DataFrame({"as_of_date": [date(2025, 6, 30)] * 2, "supplier_id": ["S1", "S2"],
                             "orders_6m": [3, 4], "anything_new": [0.1, None]})
    assert check_published_frame(features, PUBLISHED["supplier_features"]).passed

    metrics = pd.DataFrame({"as_of_date": [date(2025, 6, 30)] * 2, "supplier_id": ["S1", "S2"],
                            "transactions_12m": [3, 0], "deal_value_12m_usd": [10.0, 0.0],
                            "response_rate_6m": [0.5, None], "median_response_hours_6m": [2.0, None],
                            "on_time_shipment_rate_6m": [1.2, 0.9]})
    result = check_published_frame(metrics, PUBLISHED["storefront_metrics"])
    assert not result.passed and [o.check for o in result.failures] == ["between(on_time_shipment_rate_6m):out_of_range"]
