"""Every rule of a contract, declared once, and its SQL.

`contract_checks` turns a `TableContract` (the YAML) into a list of `ContractCheck`s: one per
verifiable statement (a required value, an enumeration, a pattern, a range, a pair of columns,
...), named by the quarantine rule it enforces. Each check is then compiled, never restated:

* `violation_sql(check)`: DuckDB SQL true for a row that breaks it. The quarantine's row rules
  (`data_contracts/quarantine.py`) are exactly these conditions, and so are the whole-table
  aggregates of the contract checks (`count(*) FILTER (WHERE ...)`, `data_contracts/expectations.py`);
* the Great Expectations expectation (`data_contracts/expectations.py`), for the checks GX can
  express on one frame.

`tests/test_contracts_rules.py` feeds every rule of every contract rows on both sides of its
bound and checks that the quarantine condition and the expectation flag the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from data_contracts.contracts import TableContract, _q

_OPS_SQL = {">=": ">=", ">": ">", "<=": "<=", "<": "<", "=": "="}

# Rules a timestamp column gets from its contract, not from its own bounds: quarantined after
# the range rules (before_plausible_era) and after the row rules (after_horizon).
BEFORE_PLAUSIBLE_ERA = "before_plausible_era"
AFTER_HORIZON = "after_horizon"
NULL_REQUIRED = "null_required"


@dataclass(frozen=True)
class ContractCheck:
    """One verifiable statement of a contract (`kind` names the GX expectation family)."""

    # columns_match_set | not_null | not_blank | unique | compound_unique | in_set | regex | between
    # | whole_number | pair | sql | types | reference | cross_table
    kind: str
    rule: str  # the contract rule it enforces, e.g. null_required, non_positive_amount
    columns: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def gx_capable(self) -> bool:
        return self.kind in {"columns_match_set", "not_null", "not_blank", "unique", "compound_unique",
                             "in_set", "regex", "between", "pair"}

    @property
    def label(self) -> str:
        """Unique within a table, e.g. `between(amount_usd):non_positive_amount`."""
        target = f"({', '.join(self.columns)})" if self.columns and self.kind not in ("columns_match_set", "types") else ""
        return f"{self.kind}{target}:{self.rule}"

    @property
    def is_range_rule(self) -> bool:
        """A bound of the column's own (min, max, whole number), as opposed to the era and horizon bounds."""
        return self.kind == "whole_number" or (self.kind == "between" and self.rule not in (BEFORE_PLAUSIBLE_ERA, AFTER_HORIZON))


def re2_whole_value(pattern: str) -> str:
    """A contract `pattern` as a regular expression the whole value must match, for DuckDB (RE2:
    `$` is the end of the text only)."""
    return f"^(?:{pattern})$"


def python_whole_value(pattern: str) -> str:
    """The same for Python's `re`, which GX uses on pandas (and which searches): `$` there would
    also match before a final newline, so the end is `\\Z`."""
    return rf"\A(?:{pattern})\Z"


# A required text value that is empty or only spaces (DuckDB's trim() removes spaces only).
BLANK_TEXT_PYTHON_REGEX = r"\A *\Z"


def contract_checks(contract: TableContract, horizon: datetime | None = None,
                    reference_tables: bool = True) -> list[ContractCheck]:
    """The contract's checks. Within a column the order is the quarantine's: the lower bound and
    whole-number rule before the upper bound."""
    checks = [ContractCheck("columns_match_set", "columns", tuple(contract.column_names),
                            {"exact": contract.extra_columns != "allowed"}),
              ContractCheck("types", "column_types", tuple(contract.column_names))]
    for c in contract.columns:
        if not c.nullable:
            checks.append(ContractCheck("not_null", NULL_REQUIRED, (c.name,)))
            if c.type == "VARCHAR":
                checks.append(ContractCheck("not_blank", NULL_REQUIRED, (c.name,)))
    if len(contract.primary_key) == 1:
        checks.append(ContractCheck("unique", "duplicate_id", contract.primary_key))
    elif contract.primary_key:
        checks.append(ContractCheck("compound_unique", "duplicate_id", contract.primary_key))
    for c in contract.columns:
        if c.unique and (c.name,) != contract.primary_key:
            checks.append(ContractCheck("unique", "duplicate_id", (c.name,)))
        if c.allowed_values is not None:
            checks.append(ContractCheck("in_set", "unknown_enum", (c.name,), {"values": list(c.allowed_values)}))
        if c.pattern is not None:
            checks.append(ContractCheck("regex", "invalid_format", (c.name,), {"pattern": c.pattern}))
        whole_number = ContractCheck("whole_number", c.range_rule, (c.name,)) if c.type in ("INTEGER", "BIGINT") else None
        if c.max is not None and c.above_max_rule != c.range_rule:
            if c.min is not None:
                checks.append(ContractCheck("between", c.range_rule, (c.name,), {
                    "min": c.min, "max": None, "strict_min": c.min_exclusive, "strict_max": False}))
            checks += [whole_number] if whole_number else []
            checks.append(ContractCheck("between", c.above_max_rule, (c.name,), {
                "min": None, "max": c.max, "strict_min": False, "strict_max": c.max_exclusive}))
        else:
            if c.min is not None or c.max is not None:
                checks.append(ContractCheck("between", c.range_rule, (c.name,), {
                    "min": c.min, "max": c.max, "strict_min": c.min_exclusive, "strict_max": c.max_exclusive}))
            checks += [whole_number] if whole_number else []
        if contract.plausible_from is not None and c.is_timestamp:
            checks.append(ContractCheck("between", BEFORE_PLAUSIBLE_ERA, (c.name,), {
                "min": contract.plausible_from, "max": None, "strict_min": False, "strict_max": False}))
        if horizon is not None and c.is_timestamp and c.horizon_bound:
            checks.append(ContractCheck("between", AFTER_HORIZON, (c.name,), {
                "min": None, "max": horizon, "strict_min": False, "strict_max": False}))
    for rule in contract.row_rules:
        if rule.sql is not None:
            checks.append(ContractCheck("sql", rule.name, (), {"sql": rule.sql}))
        else:
            checks.append(ContractCheck("pair", rule.name, (rule.column, rule.other), {"op": rule.op}))
    if reference_tables:
        for ref in contract.references:
            checks.append(ContractCheck("reference", ref.missing_rule, (ref.column,),
                                        {"table": ref.table, "ref_column": ref.ref_column}))
        for rule in contract.cross_table_rules:
            checks.append(ContractCheck("cross_table", rule.name, (rule.column,), {
                "op": rule.op, "table": rule.table, "ref_column": rule.ref_column, "via": rule.via}))
    return checks


def check_columns(check: ContractCheck) -> tuple[str, ...]:
    return () if check.kind in ("columns_match_set", "types", "sql") else check.columns


def sql_literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    if isinstance(value, (int, float)):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def violation_sql(check: ContractCheck, alias: str = "") -> str | None:
    """DuckDB SQL true for a row that breaks the check, for the checks that are a per-row filter:
    the one rendering of those rules, which the quarantine and the aggregate checks both run.
    A NULL never breaks a check other than not_null (nothing to compare yet). `alias` prefixes
    the columns (`s.`)."""
    col = f"{alias}{_q(check.columns[0])}" if check.columns else None
    p = check.params
    if check.kind == "not_null":
        return f"{col} IS NULL"
    if check.kind == "not_blank":
        return f"trim({col}) = ''"
    if check.kind == "in_set":
        return f"{col} IS NOT NULL AND {col} NOT IN ({', '.join(sql_literal(v) for v in p['values'])})"
    if check.kind == "regex":
        return f"{col} IS NOT NULL AND NOT regexp_matches({col}, {sql_literal(re2_whole_value(p['pattern']))})"
    if check.kind == "between":
        parts = []
        if p["min"] is not None:
            parts.append(f"{col} {'<=' if p['strict_min'] else '<'} {sql_literal(p['min'])}")
        if p["max"] is not None:
            parts.append(f"{col} {'>=' if p['strict_max'] else '>'} {sql_literal(p['max'])}")
        return f"{col} IS NOT NULL AND ({' OR '.join(parts)})"
    if check.kind == "whole_number":
        return f"{col} IS NOT NULL AND {col} <> round({col})"
    if check.kind == "pair":
        a, b = (f"{alias}{_q(c)}" for c in check.columns)
        return f"{a} IS NOT NULL AND {b} IS NOT NULL AND NOT ({a} {_OPS_SQL[p['op']]} {b})"
    if check.kind == "sql":
        return f"NOT coalesce(({p['sql']}), true)"
    return None


def cross_table_violation_sql(op: str, column: str, ref_column: str) -> str:
    """A cross-table rule `s.column op r.ref_column` broken (NULL on either side holds)."""
    return f"NOT coalesce(s.{_q(column)} {_OPS_SQL[op]} r.{_q(ref_column)}, true)"
