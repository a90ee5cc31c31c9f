"""Row-level rules: which staged rows are quarantined, and why.

Every row gets at most one rule, the *first* it breaks in this fixed order (so the outcome is
deterministic and a row's reason is its most basic defect):

 1. `unparseable_timestamp`, `unparseable_number`, `unparseable_boolean`: text that is not a
    value of the column's type (CSV, text timestamps), in contract column order;
    `non_finite_number`: NaN or ±infinity;
 2. `null_required`: a required value is null or empty text;
 3. `unknown_enum`: not exactly one of the allowed values (case variants are unknown values);
 4. `invalid_format`: does not match the column's pattern (country codes, payment method);
 5. range rules: `non_positive_amount`, `negative_refund`, `rating_out_of_range` (the column's
    `range_rule`, default `out_of_range`; ratings must also be whole numbers), then
    `amount_above_maximum`, `refund_above_maximum` (the column's `max_rule`: a contract
    maximum, so no accepted value overflows a later sum), then `before_plausible_era`: a
    timestamp before the contract's `plausible_from` (EARLIEST_PLAUSIBLE_TIMESTAMP,
    2000-01-01, unless the contract says otherwise);
 6. the table's row rules, in contract order: `shipped_before_created`,
    `delivered_before_shipped`, `cancelled_before_created`, `cancelled_at_without_cancellation`,
    `resolved_before_opened`, `response_before_received`;
 7. `after_horizon`: a timestamp (other than `promised_ship_by`) after the data horizon;
 8. `duplicate_row` / `duplicate_id`: among rows that passed 1-7, several rows share an id.
    Identical copies (every contract column equal): the first (lowest file, row) is kept and
    the others are `duplicate_row`. Conflicting rows with the same id: none is kept, all are
    `duplicate_id` (we cannot know which one is true, and keeping "the first" would make the
    result depend on file names);
 9. references, against the referenced table's *accepted* rows: `orphan_supplier` /
    `orphan_order` (no such row in the landing zone at all), `supplier_quarantined` /
    `order_quarantined` (it exists but was itself quarantined: the cascade);
10. cross-table rules: `refund_exceeds_order_amount`, `dispute_before_order`,
    `review_before_order`.

Rules 1-6 are evaluated while reading (`single_row_rule_sql`); 7-10 afterwards, table by table
in dependency order, by `apply_table_rules`. Rules 2-7 and 10 are the contract's checks
(`data_contracts/rules.py`): the condition that quarantines a row is the check's own
`violation_sql`, the same SQL the aggregate checks count and the rule the GX expectation states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from data_contracts.contracts import ColumnContract, TableContract, _q
from data_contracts.landing_zone import raw_name
from data_contracts.rules import (
    AFTER_HORIZON,
    BEFORE_PLAUSIBLE_ERA,
    ContractCheck,
    contract_checks,
    cross_table_violation_sql,
    violation_sql,
)

# Rule names in evaluation order (for documentation and the report's row order).
RULE_ORDER: tuple[str, ...] = (
    "unparseable_timestamp",
    "unparseable_number",
    "unparseable_boolean",
    "non_finite_number",
    "null_required",
    "unknown_enum",
    "invalid_format",
    "non_positive_amount",
    "negative_refund",
    "rating_out_of_range",
    "out_of_range",
    "amount_above_maximum",
    "refund_above_maximum",
    "before_plausible_era",
    "shipped_before_created",
    "delivered_before_shipped",
    "cancelled_before_created",
    "cancelled_at_without_cancellation",
    "resolved_before_opened",
    "response_before_received",
    "after_horizon",
    "duplicate_row",
    "duplicate_id",
    "orphan_supplier",
    "supplier_quarantined",
    "orphan_order",
    "order_quarantined",
    "refund_exceeds_order_amount",
    "dispute_before_order",
    "review_before_order",
)

# One line per rule, for the report reader and docs/data_contracts.md.
RULE_DESCRIPTIONS: dict[str, str] = {
    "unparseable_timestamp": "text that is not an ISO-8601 timestamp (YYYY-MM-DD[ HH:MM[:SS[.f]]][Z|±HH:MM])",
    "unparseable_number": "text that is not a number",
    "unparseable_boolean": "text that is not a boolean (true/false, t/f, 1/0, yes/no)",
    "non_finite_number": "NaN or infinity in a numeric column",
    "null_required": "a required value is null (or empty text)",
    "unknown_enum": "not exactly one of the allowed values; case variants count as unknown",
    "invalid_format": "does not match the column's pattern (e.g. upper-case ISO country code)",
    "non_positive_amount": "orders.amount_usd <= 0",
    "negative_refund": "disputes.refund_usd < 0",
    "rating_out_of_range": "reviews.rating not a whole number from 1 to 5",
    "out_of_range": "outside the column's declared range",
    "amount_above_maximum": "orders.amount_usd above the contract maximum (`max`, 1e9 USD)",
    "refund_above_maximum": "disputes.refund_usd above the contract maximum (`max`, 1e9 USD)",
    "before_plausible_era": "a timestamp before the contract's plausible_from (default 2000-01-01)",
    "shipped_before_created": "orders.shipped_at < created_at",
    "delivered_before_shipped": "orders.delivered_at < shipped_at",
    "cancelled_before_created": "orders.cancelled_at < created_at",
    "cancelled_at_without_cancellation": "orders.cancelled_at set on an order whose status is not cancelled",
    "resolved_before_opened": "disputes.resolved_at < opened_at",
    "response_before_received": "inquiries.first_response_at < received_at",
    "after_horizon": "a timestamp (other than promised_ship_by) after the data horizon",
    "duplicate_row": "an identical copy of an earlier row (the first copy is kept)",
    "duplicate_id": "several different rows share one id (none is kept)",
    "orphan_supplier": "the supplier_id is not in suppliers at all",
    "supplier_quarantined": "the supplier exists but was quarantined (cascade)",
    "orphan_order": "the order_id is not in orders at all",
    "order_quarantined": "the order exists but was quarantined (cascade)",
    "refund_exceeds_order_amount": "disputes.refund_usd > the order's amount_usd",
    "dispute_before_order": "disputes.opened_at < the order's created_at",
    "review_before_order": "reviews.created_at < the order's created_at",
}

_UNPARSEABLE = {
    "TIMESTAMP": "unparseable_timestamp",
    "DOUBLE": "unparseable_number",
    "INTEGER": "unparseable_number",
    "BIGINT": "unparseable_number",
    "BOOLEAN": "unparseable_boolean",
}


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _shown(column: ColumnContract, alias: str = "") -> str:
    """SQL rendering a column's original value for `rule_detail`."""
    typed = f"{alias}{_q(column.name)}"
    if column.type == "VARCHAR":
        return f"coalesce({_lit(column.name + '=')} || '''' || {typed} || '''', {_lit(column.name + ' is null')})"
    original = f"coalesce({alias}{_q(raw_name(column.name))}, CAST({typed} AS VARCHAR))"
    return f"coalesce({_lit(column.name + '=')} || {original}, {_lit(column.name + ' is null')})"


@dataclass(frozen=True)
class QuarantineCondition:
    """One WHEN of the quarantine's CASE: rows where `condition` holds get `rule`, explained by `detail`."""

    condition: str
    rule: str
    detail: str  # SQL rendering the offending value(s) for `_rule_detail`
    check: ContractCheck | None = None  # the contract check it compiles; None for the type rules (1)


# The order in which the contract's single-row checks are tried (module docstring, rules 2-6).
_CHECK_GROUPS = (
    lambda check: check.kind in ("not_null", "not_blank"),
    lambda check: check.kind == "in_set",
    lambda check: check.kind == "regex",
    lambda check: check.is_range_rule,
    lambda check: check.kind == "between" and check.rule == BEFORE_PLAUSIBLE_ERA,
    lambda check: check.kind in ("pair", "sql"),
)


def _detail(contract: TableContract, check: ContractCheck) -> str:
    if check.kind in ("not_null", "not_blank"):
        return _lit(f"{check.columns[0]} is null")
    if check.rule == BEFORE_PLAUSIBLE_ERA:
        return f"{_shown(contract.column(check.columns[0]))} || {_lit(' before ' + contract.plausible_from.date().isoformat())}"
    if check.kind == "pair":
        column, other = check.columns
        return f"{_shown(contract.column(column))} || ' vs ' || {_shown(contract.column(other))}"
    if check.kind == "sql":
        rule = next(r for r in contract.row_rules if r.name == check.rule)
        return _lit(rule.description or rule.name)
    return _shown(contract.column(check.columns[0]))


def single_row_rules(contract: TableContract) -> list[QuarantineCondition]:
    """Rules 1-6 in evaluation order: the type rules, then the contract's single-row checks."""
    whens: list[QuarantineCondition] = []
    for c in contract.columns:
        if c.type == "VARCHAR":
            continue
        ident, raw = _q(c.name), _q(raw_name(c.name))
        whens.append(QuarantineCondition(f"{raw} IS NOT NULL AND trim({raw}) <> '' AND {ident} IS NULL",
                                         _UNPARSEABLE[c.type], _shown(c)))
    for c in contract.columns:
        if c.type in ("DOUBLE", "INTEGER", "BIGINT"):
            whens.append(QuarantineCondition(f"{_q(c.name)} IS NOT NULL AND NOT isfinite({_q(c.name)})",
                                             "non_finite_number", _shown(c)))
    checks = contract_checks(contract, reference_tables=False)
    for in_group in _CHECK_GROUPS:
        for check in (c for c in checks if in_group(c)):
            whens.append(QuarantineCondition(violation_sql(check), check.rule, _detail(contract, check), check))
    return whens


def single_row_rule_sql(contract: TableContract) -> tuple[str, str]:
    """(`_rule` CASE, `_rule_detail` CASE) for rules 1-6, over the staged column names."""
    whens = single_row_rules(contract)
    if not whens:
        return "CAST(NULL AS VARCHAR)", "CAST(NULL AS VARCHAR)"
    rule_case = "CASE " + " ".join(f"WHEN {w.condition} THEN {_lit(w.rule)}" for w in whens) + " END"
    detail_case = "CASE " + " ".join(f"WHEN {w.condition} THEN {w.detail}" for w in whens) + " END"
    return rule_case, detail_case


def horizon_rules(contract: TableContract, horizon: datetime) -> list[QuarantineCondition]:
    """Rule 7: a timestamp (other than a promise about the future) after the data horizon."""
    return [
        QuarantineCondition(violation_sql(check), check.rule,
                            f"{_shown(contract.column(check.columns[0]))} || {_lit(' after horizon ' + str(horizon))}", check)
        for check in contract_checks(contract, horizon, reference_tables=False) if check.rule == AFTER_HORIZON
    ]


def apply_horizon_rule(con: duckdb.DuckDBPyConnection, stage: str, contract: TableContract,
                       horizon: datetime) -> None:
    whens = horizon_rules(contract, horizon)
    if not whens:
        return
    cond = " OR ".join(f"({w.condition})" for w in whens)
    detail = "CASE " + " ".join(f"WHEN {w.condition} THEN {w.detail}" for w in whens) + " END"
    con.execute(f"UPDATE {stage} SET _rule = {_lit(AFTER_HORIZON)}, _rule_detail = {detail} "
                f"WHERE _rule IS NULL AND ({cond})")


def apply_duplicate_rule(con: duckdb.DuckDBPyConnection, stage: str, contract: TableContract) -> None:
    if not contract.primary_key:
        return
    key = ", ".join(_q(k) for k in contract.primary_key)
    join = " AND ".join(f"s.{_q(k)} IS NOT DISTINCT FROM d.{_q(k)}" for k in contract.primary_key)
    # Two passes so the content hash is only computed for the (few) duplicated ids.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _lz_dups AS
        SELECT {key} FROM {stage} WHERE _rule IS NULL GROUP BY ALL HAVING count(*) > 1""")
    if con.execute("SELECT count(*) FROM _lz_dups").fetchone()[0] == 0:
        con.execute("DROP TABLE _lz_dups")
        return
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _lz_dup_groups AS
        SELECT {', '.join('s.' + _q(k) for k in contract.primary_key)},
               count(DISTINCT hash({', '.join('s.' + _q(c) for c in contract.column_names)})) AS versions,
               min(s._row_id) AS first_row_id, count(*) AS copies
        FROM {stage} s JOIN _lz_dups d ON {join}
        WHERE s._rule IS NULL
        GROUP BY ALL""")
    key_detail = " || ', ' || ".join(f"{_lit(k + '=')} || CAST(s.{_q(k)} AS VARCHAR)" for k in contract.primary_key)
    con.execute(f"""
        UPDATE {stage} AS s
        SET _rule = CASE WHEN d.versions > 1 THEN 'duplicate_id' ELSE 'duplicate_row' END,
            _rule_detail = {key_detail} || CASE WHEN d.versions > 1
                THEN ' appears ' || d.copies || ' times with different content'
                ELSE ' is an identical copy of an earlier row' END
        FROM _lz_dup_groups d
        WHERE {join} AND s._rule IS NULL AND (d.versions > 1 OR s._row_id <> d.first_row_id)""")
    con.execute("DROP TABLE _lz_dups; DROP TABLE _lz_dup_groups")


def apply_reference_rules(con: duckdb.DuckDBPyConnection, stage: str, contract: TableContract,
                          stages: dict[str, str]) -> None:
    for ref in contract.references:
        ref_stage = stages[ref.table]
        col, ref_col = _q(ref.column), _q(ref.ref_column)
        con.execute(f"""
            UPDATE {stage} AS s
            SET _rule = CASE WHEN EXISTS (SELECT 1 FROM {ref_stage} r WHERE r.{ref_col} = s.{col})
                             THEN {_lit(ref.quarantined_rule)} ELSE {_lit(ref.missing_rule)} END,
                _rule_detail = {_lit(ref.column + '=')} || '''' || s.{col} || ''''
                    || CASE WHEN EXISTS (SELECT 1 FROM {ref_stage} r WHERE r.{ref_col} = s.{col})
                            THEN {_lit(' is quarantined in ' + ref.table)}
                            ELSE {_lit(' not in ' + ref.table)} END
            WHERE s._rule IS NULL
              AND NOT EXISTS (SELECT 1 FROM {ref_stage} r WHERE r._rule IS NULL AND r.{ref_col} = s.{col})""")


def apply_cross_table_rules(con: duckdb.DuckDBPyConnection, stage: str, contract: TableContract,
                            stages: dict[str, str], contracts: dict[str, TableContract]) -> None:
    for rule in contract.cross_table_rules:
        ref_stage = stages[rule.table]
        ref_column = contracts[rule.table].column(rule.ref_column)
        via = _q(rule.via)
        detail = (f"{_shown(contract.column(rule.column), 's.')} || ' vs {rule.table}.' || "
                  f"{_shown(ref_column, 'r.')}")
        con.execute(f"""
            UPDATE {stage} AS s
            SET _rule = {_lit(rule.name)}, _rule_detail = {detail}
            FROM {ref_stage} AS r
            WHERE r._rule IS NULL AND r.{via} = s.{via} AND s._rule IS NULL
              AND {cross_table_violation_sql(rule.op, rule.column, rule.ref_column)}""")


def apply_table_rules(con: duckdb.DuckDBPyConnection, stage: str, contract: TableContract,
                      horizon: datetime | None, stages: dict[str, str],
                      contracts: dict[str, TableContract]) -> None:
    """Rules 7-10 for one table; referenced tables must already be final."""
    if horizon is not None:
        apply_horizon_rule(con, stage, contract, horizon)
    apply_duplicate_rule(con, stage, contract)
    apply_reference_rules(con, stage, contract, stages)
    apply_cross_table_rules(con, stage, contract, stages, contracts)
