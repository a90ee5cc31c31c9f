"""Each contract rule is declared once (data_contracts/rules.py) and means the same in every
rendering: the row the quarantine drops is exactly the row the Great Expectations expectation
flags, and the row the DuckDB aggregate counts.

For every single-row rule of every contract (landing and published) a frame is built with
values on both sides of the rule's bound (just below, at, just above; case and whitespace
variants of an enumeration; strings that match a pattern only as a substring or only before a
final newline; pairs in both orders and equal; NULLs), and the three renderings are run on it.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from data_contracts import load_landing_contracts, load_published_contracts
from data_contracts.contracts import TableContract
from data_contracts.expectations import _batch_definition, gx_expectation
from data_contracts.quarantine import horizon_rules, single_row_rules
from data_contracts.rules import ContractCheck, contract_checks, violation_sql

HORIZON = datetime(2026, 6, 30, 12, 0, 0)
LANDING = load_landing_contracts()
PUBLISHED = load_published_contracts()

# Rules GX cannot state on one pandas frame: free SQL between columns, and a whole number in a
# column the landing zone stages as DOUBLE. They exist once all the same (the quarantine and the
# aggregate run the same SQL); GX is told nothing about them.
NO_GX_RENDERING = {"sql", "whole_number"}

# Text tried against every pattern: valid values of the patterns in the contracts, and their
# near misses (another case, a character more or less, a value hidden inside a longer string,
# a final newline, which Python's `$` would let through, surrounding spaces).
PATTERN_CANDIDATES = [
    "CN", "US", "cn", "Us", "C", "USA", "xCNx", "CN\n", "\nCN", " CN", "CN ", "C1",
    "card", "bank_transfer", "paypal2", "Card", "2card", "card-x", "card\n", "_card", "card ", "",
]


def _cases() -> list[tuple[str, TableContract, ContractCheck]]:
    cases = []
    for layer, contracts in (("landing", LANDING), ("published", PUBLISHED)):
        for contract in contracts.values():
            horizon = HORIZON if layer == "landing" else None
            for check in contract_checks(contract, horizon, reference_tables=False):
                if violation_sql(check) is not None:
                    cases.append((f"{layer}.{contract.name}:{check.label}", contract, check))
    return cases


CASES = _cases()


def _column_values(contract: TableContract, column: str, check: ContractCheck) -> list:
    """Values of one column that sit on both sides of the check's rule, and a NULL."""
    kind, p = check.kind, check.params
    typ = contract.column(column).type
    if kind == "not_null":
        return [None, _some_value(typ)]
    if kind == "not_blank":
        return ["", " ", "   ", "\t", " \n", "x", " x ", None]
    if kind == "in_set":
        values = list(p["values"])
        variants = [v.upper() for v in values] + [v.title() for v in values] + [f" {v}" for v in values] + [f"{v} " for v in values]
        return values + [v for v in variants if v not in values] + ["zzz", None]
    if kind == "regex":
        return PATTERN_CANDIDATES + [None]
    if kind == "whole_number":
        return [1.0, 1.5, -2.0, 2.000001, 5.0, 1e9, 0.5, None]
    if kind == "between":
        values: list = []
        for bound in (p["min"], p["max"]):
            if bound is None:
                continue
            if isinstance(bound, datetime):
                step = timedelta(microseconds=1)
                values += [bound - step, bound, bound + step, bound - timedelta(days=3650)]
            elif isinstance(bound, date):
                values += [bound - timedelta(days=1), bound, bound + timedelta(days=1)]
            else:
                b = float(bound)
                values += [b - 1, math.nextafter(b, -math.inf), b, math.nextafter(b, math.inf), b + 1]
        return values + [None]
    raise AssertionError(f"no boundary values for {check.kind}")


def _some_value(typ: str):
    return {"VARCHAR": "x", "DOUBLE": 1.5, "INTEGER": 3.0, "BIGINT": 3.0, "BOOLEAN": True,
            "TIMESTAMP": datetime(2025, 1, 1), "DATE": date(2025, 1, 1), "VARCHAR[]": ["x"]}[typ]


def _pair_rows(contract: TableContract, check: ContractCheck) -> dict[str, list]:
    """Both orders, equal, and a NULL on either side."""
    first, second = check.columns
    typ = contract.column(first).type
    low, high = {"TIMESTAMP": (datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 0, 0, 1)),
                 "DATE": (date(2025, 1, 1), date(2025, 1, 2))}.get(typ, (1.0, math.nextafter(1.0, math.inf)))
    return {first: [low, low, high, None, low, None], second: [high, low, low, low, None, None]}


def boundary_frame(contract: TableContract, check: ContractCheck) -> pd.DataFrame:
    if check.kind == "pair":
        columns = _pair_rows(contract, check)
    else:
        columns = {check.columns[0]: _column_values(contract, check.columns[0], check)}
    frame = pd.DataFrame(columns)
    for name in frame.columns:
        typ = contract.column(name).type
        if typ == "TIMESTAMP":
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
        elif typ in ("DOUBLE", "INTEGER", "BIGINT"):
            frame[name] = frame[name].astype("float64")  # landing numbers are staged as DOUBLE
    return frame


def rows_matching(sql: str, frame: pd.DataFrame) -> set[int]:
    con = duckdb.connect()
    con.register("frame", frame.reset_index(names="_row"))
    return {row for (row,) in con.execute(f"SELECT _row FROM frame WHERE {sql}").fetchall()}


def rows_counted_by_the_aggregate(check: ContractCheck, frame: pd.DataFrame) -> int:
    con = duckdb.connect()
    con.register("frame", frame)
    return con.execute(f"SELECT count(*) FILTER (WHERE {violation_sql(check)}) FROM frame").fetchone()[0]


def rows_flagged_by_gx(check: ContractCheck, frame: pd.DataFrame) -> set[int]:
    batch = _batch_definition("rule_agreement").get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(gx_expectation(check), result_format="COMPLETE")
    return set(result.result.get("unexpected_index_list") or [])


def quarantine_condition(contract: TableContract, check: ContractCheck) -> str | None:
    """The WHEN the quarantine runs for this check (None for published tables: nothing is quarantined)."""
    if contract.layer != "landing":
        return None
    conditions = [w for w in [*single_row_rules(contract), *horizon_rules(contract, HORIZON)] if w.check == check]
    assert len(conditions) == 1, f"{check.label} is quarantined by {len(conditions)} conditions"
    assert conditions[0].rule == check.rule
    return conditions[0].condition


@pytest.mark.parametrize(("contract", "check"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_quarantine_aggregate_and_expectation_flag_the_same_rows(contract, check):
    if check.kind == "sql":
        pytest.skip("free SQL over several columns: the quarantine and the aggregate run the same statement; no GX rendering")
    frame = boundary_frame(contract, check)
    flagged_by_sql = rows_matching(violation_sql(check), frame)
    # The frame straddles the rule: some rows break it, some keep it.
    assert flagged_by_sql and len(flagged_by_sql) < len(frame), f"{check.label}: the frame does not straddle the rule"
    assert rows_counted_by_the_aggregate(check, frame) == len(flagged_by_sql)
    condition = quarantine_condition(contract, check)
    if condition is not None:
        assert rows_matching(condition, frame) == flagged_by_sql
    if check.kind in NO_GX_RENDERING:
        assert not check.gx_capable
        return
    assert rows_flagged_by_gx(check, frame) == flagged_by_sql, frame.assign(sql=frame.index.isin(flagged_by_sql))


def test_every_single_row_rule_of_the_landing_contracts_is_a_contract_check():
    """The quarantine holds no rule of its own beyond the type rules (unparseable, non-finite):
    every other WHEN is a contract check's own SQL."""
    own = {"unparseable_timestamp", "unparseable_number", "unparseable_boolean", "non_finite_number"}
    for contract in LANDING.values():
        for when in [*single_row_rules(contract), *horizon_rules(contract, HORIZON)]:
            if when.check is None:
                assert when.rule in own, when.rule
            else:
                assert when.condition == violation_sql(when.check)


def test_a_value_followed_by_a_newline_breaks_a_pattern_everywhere():
    """Python's `$` also matches before a final newline: GX (which searches with Python's re)
    would pass `CN\\n` where the quarantine (RE2) drops it, unless the pattern is anchored for
    each engine in its own terms."""
    check = next(c for c in contract_checks(LANDING["suppliers"]) if c.kind == "regex")
    frame = pd.DataFrame({"country": ["CN", "CN\n"]})
    assert rows_matching(violation_sql(check), frame) == {1}
    assert rows_flagged_by_gx(check, frame) == {1}
