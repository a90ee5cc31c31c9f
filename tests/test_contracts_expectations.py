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
        # row 0: a decrease from $2,000 with notice; row 2: capped by an analyst
        "amount_binding_from": [date(2025, 7, 28)] + [None] * (n - 1),
        "amount_before_binding_usd": [2000.0] + [None] * (n - 1),
        "override_id": [None, None, "OV-1"] + [None] * (n - 3),
        "override_action": [None, None, "cap"] + [None] * (n - 3),
        "override_reason": [None, None, "under review"] + [None] * (n - 3),
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
    bad.loc[0, "amount_before_binding_usd"] = 900.0  # a "notice" on an increase from $900
    bad = pd.concat([bad, bad.iloc[[0]]], ignore_index=True)  # duplicate (as_of_date, supplier_id)
    result = check_published_frame(bad, PUBLISHED["supplier_scores"])
    assert {o.rule for o in result.failures} == {"amount_when_ineligible", "out_of_range", "duplicate_id",
                                                 "notice_only_on_decrease"}

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


def test_a_pattern_means_the_whole_value_in_quarantine_duckdb_checks_and_gx(monkeypatch, tmp_path):
    """One declaration, one meaning: an unanchored contract pattern must not be a full match
    in the quarantine and a substring search in the expectation suites (GX searches)."""
    from dataclasses import replace

    import data_contracts.ingest as ingest_module
    from data_contracts.expectations import _run_gx, contract_checks

    suppliers = LANDING["suppliers"]
    columns = tuple(replace(c, pattern="[A-Z]{2}") if c.name == "country" else c for c in suppliers.columns)
    unanchored = replace(suppliers, columns=columns)
    frame = pd.DataFrame({"country": ["CN", "xCNx", "CNN"]})
    # quarantine: only the whole two-letter value passes
    tables = valid_tables()
    tables["suppliers"].loc[1, "country"] = "xVNx"
    monkeypatch.setattr(ingest_module, "load_landing_contracts", lambda: {**LANDING, "suppliers": unanchored})
    con = duckdb.connect()
    ingest_landing_zone(write_landing(tmp_path / "landing", tables), con)
    assert con.execute("SELECT country, rule FROM quarantine.suppliers").fetchall() == [("xVNx", "invalid_format")]
    # the DuckDB check and Great Expectations: the same two rows fail
    regex_check = next(c for c in contract_checks(unanchored) if c.kind == "regex")
    con.register("frame", frame)
    from data_contracts.expectations import violation_sql
    assert con.execute(f"SELECT count(*) FILTER (WHERE {violation_sql(regex_check)}) FROM frame").fetchone()[0] == 2
    [gx_outcome] = _run_gx(frame, unanchored, [regex_check])
    assert gx_outcome.unexpected_count == 2


def test_months_are_checked_together_and_a_broken_month_is_named():
    from data_contracts import check_published_months

    june, july = _scores(), _scores()
    july["as_of_date"] = date(2025, 7, 31)
    july["amount_binding_from"] = [date(2025, 8, 28)] + [None] * (len(july) - 1)  # a notice runs past its month end
    both = pd.concat([june, july.iloc[:4]], ignore_index=True)
    results = check_published_months(both, PUBLISHED["supplier_scores"])
    assert {month: (r.passed, r.row_count) for month, r in results.items()} == {
        date(2025, 6, 30): (True, 6), date(2025, 7, 31): (True, 4)}
    assert "checked with the run's 10 rows" in results[date(2025, 7, 31)].mode

    july.loc[1, "trade_assurance_amount_usd"] = 500.0  # ineligible but covered: July only
    results = check_published_months(pd.concat([june, july], ignore_index=True), PUBLISHED["supplier_scores"])
    assert results[date(2025, 6, 30)].passed
    assert [o.rule for o in results[date(2025, 7, 31)].failures] == ["amount_when_ineligible"]
