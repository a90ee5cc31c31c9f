"""Great Expectations 1.x suites derived from the contracts, and the checks Dagster calls.

Each contract becomes a list of `ContractCheck`s (`data_contracts/rules.py`, where each rule is
declared once); every check has two renderings here:

* a GX expectation (`build_expectation_suite`), run by GX on a pandas frame, and
* a DuckDB aggregate (`count(*) FILTER (WHERE violation_sql)`), run on the whole table where it
  lives; the quarantine runs the same `violation_sql` per row.

Why both: GX on pandas is the shared, readable vocabulary (and what data people already know),
but materialising 20M orders into pandas for it takes minutes and many GiB. So
`run_expectation_suite` runs GX on the *whole* table when it has at most `full_rows_limit`
rows; above that it runs GX on a deterministic sample (rows whose key hash falls in a fixed
bucket: the same rows every run, independent of thread scheduling) and computes every check's
exact unexpected count over the full table in DuckDB (single-scan `count(*) FILTER (...)`
aggregates), reporting both through the same `ContractCheckResult`. The row-level rules were
already enforced by quarantine during ingest, so on `validated.*` these checks are an
independent second line: they should always pass, and failing means a bug, not dirty data.

Checks GX cannot express on one frame (column types, references to another table, cross-table
comparisons, free SQL row rules) are evaluated in DuckDB only, with `engine="duckdb"`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from data_contracts.contracts import TableContract, _q
from data_contracts.rules import (
    BLANK_TEXT_PYTHON_REGEX,
    ContractCheck,
    check_columns,
    contract_checks,
    cross_table_violation_sql,
    python_whole_value,
    violation_sql,
)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DEFAULT_FULL_ROWS_LIMIT = 100_000

@dataclass
class ExpectationOutcome:
    check: str  # e.g. "not_null(order_id)"
    rule: str
    expectation_type: str | None  # GX expectation type, None for DuckDB-only checks
    success: bool
    unexpected_count: int | None
    element_count: int | None
    engine: str  # "great_expectations" or "duckdb"
    examples: list[Any] = field(default_factory=list)
    sample_success: bool | None = None  # GX verdict on the sample, when the full count came from DuckDB


@dataclass
class ContractCheckResult:
    table: str
    passed: bool
    row_count: int
    mode: str  # "full" (GX saw every row) or "sample+aggregates"
    rows_checked_by_gx: int
    outcomes: list[ExpectationOutcome]

    @property
    def unexpected_counts(self) -> dict[str, int]:
        return {o.check: o.unexpected_count or 0 for o in self.outcomes}

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_text(self) -> str:
        head = (f"{self.table}: {'passed' if self.passed else 'FAILED'} "
                f"({self.row_count:,} rows, {self.mode}, GX saw {self.rows_checked_by_gx:,})")
        lines = [head]
        for o in self.failures:
            lines.append(f"  {o.check} [{o.rule}]: {o.unexpected_count} unexpected"
                         + (f", e.g. {o.examples[:3]}" if o.examples else ""))
        return "\n".join(lines)


# --------------------------------------------------------------------------- GX rendering


def _gx():
    import great_expectations as gx  # slow import (seconds): only when a suite is needed

    return gx


def gx_expectation(check: ContractCheck):
    gxe = _gx().expectations
    meta = {"rule": check.rule, "check": check.label}
    col = check.columns[0] if check.columns else None
    if check.kind == "columns_match_set":
        return gxe.ExpectTableColumnsToMatchSet(column_set=list(check.columns),
                                                exact_match=check.params["exact"], meta=meta)
    if check.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, meta=meta)
    if check.kind == "not_blank":
        return gxe.ExpectColumnValuesToNotMatchRegex(column=col, regex=BLANK_TEXT_PYTHON_REGEX, meta=meta)
    if check.kind == "unique":
        return gxe.ExpectColumnValuesToBeUnique(column=col, meta=meta)
    if check.kind == "compound_unique":
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(check.columns), meta=meta)
    if check.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=check.params["values"], meta=meta)
    if check.kind == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=python_whole_value(check.params["pattern"]), meta=meta)
    if check.kind == "between":
        p = check.params
        return gxe.ExpectColumnValuesToBeBetween(column=col, min_value=p["min"], max_value=p["max"],
                                                 strict_min=p["strict_min"], strict_max=p["strict_max"],
                                                 meta=meta)
    if check.kind == "pair":
        a, b = check.columns
        op = check.params["op"]
        if op in ("<=", "<"):
            a, b = b, a
        if op == "=":
            return gxe.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b,
                                                       ignore_row_if="either_value_is_missing", meta=meta)
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=op in (">=", "<="),
                                                           ignore_row_if="either_value_is_missing", meta=meta)
    raise ValueError(f"{check.kind} has no GX rendering")


def build_expectation_suite(contract: TableContract, horizon: datetime | None = None):
    """A `gx.ExpectationSuite` named after the table, one expectation per GX-capable check.

    Each expectation's `meta` carries the contract rule it enforces.
    """
    gx = _gx()
    _context()  # GX 1.x suites need an active context even before they are run
    suite = gx.ExpectationSuite(name=f"{contract.layer}.{contract.name}")
    for check in contract_checks(contract, horizon):
        if check.gx_capable:
            suite.add_expectation(gx_expectation(check))
    return suite


_CONTEXT = None


def _context():
    """One ephemeral context per process: nothing written to disk, no analytics, no progress bars."""
    global _CONTEXT
    if _CONTEXT is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.enable_analytics(False)
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        _CONTEXT = context
    return _CONTEXT


def _batch_definition(name: str):
    context = _context()
    try:
        source = context.data_sources.get("contracts")
    except Exception:  # not yet created in this process
        source = context.data_sources.add_pandas(name="contracts")
    try:
        asset = source.get_asset(name)
    except Exception:
        asset = source.add_dataframe_asset(name=name)
    try:
        return asset.get_batch_definition("whole_frame")
    except Exception:
        return asset.add_batch_definition_whole_dataframe("whole_frame")


def gx_ready_frame(frame):
    """The same values in the dtypes GX's pandas engine compares vectorised.

    GX's `column_values.between` takes its vectorised path only for int64/float64 and
    datetime64[ns] columns; on anything else (DuckDB hands over datetime64[us] and int32) it
    calls a Python function per value, which made the range checks most of a suite's time.
    Widening int8..int32 to int64 and microseconds to nanoseconds changes no value; a
    timestamp outside the nanosecond range (before 1677 or after 2262) keeps its column as it
    is (the slow path, same verdict). List values (VARCHAR[] columns, arrays in pandas) become
    tuples: GX fingerprints every batch it is handed, twice, and arrays, being unhashable,
    sent it to pickling the whole frame instead."""
    import numpy as np
    import pandas as pd

    widened = {}
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype.itemsize < 8:
            widened[name] = frame[name].astype(np.int64)
        elif dtype == object:
            present = frame[name].dropna()
            if len(present) and isinstance(present.iloc[0], (np.ndarray, list)):
                widened[name] = frame[name].map(lambda value: tuple(value) if isinstance(value, (np.ndarray, list)) else value)
        elif isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
            column = frame[name]
            low, high = column.min(), column.max()
            if pd.isna(low) or (pd.Timestamp.min <= low and high <= pd.Timestamp.max):
                widened[name] = column.astype("datetime64[ns]")
    return frame.assign(**widened) if widened else frame


def _run_gx(frame, contract: TableContract, checks: list[ContractCheck]) -> list[ExpectationOutcome]:
    gx_checks = [c for c in checks if c.gx_capable]
    _context()
    suite = _gx().ExpectationSuite(name=f"{contract.layer}.{contract.name}")
    for check in gx_checks:
        suite.add_expectation(gx_expectation(check))
    frame = gx_ready_frame(frame)
    batch = _batch_definition(f"{contract.layer}.{contract.name}").get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format="SUMMARY")
    by_label = {}
    for r in result.results:
        cfg = r.expectation_config
        label = (cfg.meta or {}).get("check")
        res = r.result or {}
        by_label[label] = ExpectationOutcome(
            check=label, rule=(cfg.meta or {}).get("rule", ""), expectation_type=cfg.type,
            success=bool(r.success), unexpected_count=res.get("unexpected_count", 0 if r.success else None),
            element_count=res.get("element_count"), engine="great_expectations",
            examples=list(res.get("partial_unexpected_list") or [])[:5])
    return [by_label[c.label] for c in gx_checks if c.label in by_label]


# --------------------------------------------------------------------------- DuckDB rendering


def _duckdb_outcomes(con: duckdb.DuckDBPyConnection, relation: str, schema: str | None,
                     contract: TableContract, checks: list[ContractCheck], row_count: int,
                     actual: dict[str, str]) -> list[ExpectationOutcome]:
    """Exact unexpected counts over the whole relation (`actual`: its column types), in as few
    scans as possible."""
    outcomes: dict[str, ExpectationOutcome] = {}

    def add(check: ContractCheck, unexpected: int, examples: list | None = None,
            gx_type: str | None = None, element_count: int | None = row_count) -> None:
        outcomes[check.label] = ExpectationOutcome(
            check=check.label, rule=check.rule, expectation_type=gx_type, success=unexpected == 0,
            unexpected_count=unexpected, element_count=element_count, engine="duckdb",
            examples=examples or [])

    present = [c for c in checks if all(col in actual for col in check_columns(c))]
    filters = [(c, violation_sql(c)) for c in present]
    filters = [(c, f) for c, f in filters if f is not None]
    if filters:
        aggs = ", ".join(f"count(*) FILTER (WHERE {f})" for _, f in filters)
        counts = con.execute(f"SELECT {aggs} FROM {relation}").fetchone()
        for (check, _), n in zip(filters, counts):
            add(check, int(n), gx_type=_gx_type_name(check))
    for check in checks:
        if check.label in outcomes:
            continue
        missing = [col for col in check_columns(check) if col not in actual]
        if check.kind == "columns_match_set":
            expected = set(check.columns)
            extra = set(actual) - expected if check.params["exact"] else set()
            problems = sorted(expected - set(actual)) + sorted(extra)
            add(check, len(problems), problems, _gx_type_name(check), element_count=len(actual))
        elif missing:
            add(check, row_count, [f"missing column {m}" for m in missing])
        elif check.kind == "types":
            wrong = [f"{c.name}: {actual[c.name]} (contract {c.type})" for c in contract.columns
                     if c.name in actual and not _type_compatible(actual[c.name], c.type)]
            add(check, len(wrong), wrong, element_count=len(contract.columns))
        elif check.kind in ("unique", "compound_unique"):
            cols = ", ".join(_q(c) for c in check.columns)
            not_null = " AND ".join(f"{_q(c)} IS NOT NULL" for c in check.columns)
            n, examples = con.execute(
                f"SELECT coalesce(sum(n), 0), list(k) FILTER (WHERE k IS NOT NULL)[:5] FROM "
                f"(SELECT count(*) AS n, CAST(({cols}) AS VARCHAR) AS k FROM {relation} "
                f"WHERE {not_null} GROUP BY ALL HAVING count(*) > 1)").fetchone()
            add(check, int(n), examples or [], _gx_type_name(check))
        elif check.kind in ("reference", "cross_table"):
            ref_table = check.params["table"]
            ref_relation = f"{schema}.{_q(ref_table)}" if schema else None
            if ref_relation is None or not _relation_exists(con, schema, ref_table):
                continue  # nothing to check against (e.g. a published frame on its own)
            col = _q(check.columns[0])
            if check.kind == "reference":
                sql = (f"SELECT count(*) FROM {relation} s WHERE s.{col} IS NOT NULL AND NOT EXISTS "
                       f"(SELECT 1 FROM {ref_relation} r WHERE r.{_q(check.params['ref_column'])} = s.{col})")
            else:
                via = _q(check.params["via"])
                broken = cross_table_violation_sql(check.params["op"], check.columns[0], check.params["ref_column"])
                sql = f"SELECT count(*) FROM {relation} s JOIN {ref_relation} r ON r.{via} = s.{via} WHERE {broken}"
            add(check, int(con.execute(sql).fetchone()[0]))
    return [outcomes[c.label] for c in checks if c.label in outcomes]


def _gx_type_name(check: ContractCheck) -> str | None:
    return {
        "columns_match_set": "expect_table_columns_to_match_set",
        "not_null": "expect_column_values_to_not_be_null",
        "not_blank": "expect_column_values_to_not_match_regex",
        "unique": "expect_column_values_to_be_unique",
        "compound_unique": "expect_compound_columns_to_be_unique",
        "in_set": "expect_column_values_to_be_in_set",
        "regex": "expect_column_values_to_match_regex",
        "between": "expect_column_values_to_be_between",
        "pair": "expect_column_pair_values_a_to_be_greater_than_b",
    }.get(check.kind)


_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE"}


def _type_compatible(actual: str, expected: str) -> bool:
    """Same type, or a lossless relative (published frames come from pandas/pyarrow)."""
    if actual == expected:
        return True
    if expected in ("DOUBLE",):
        return actual in _NUMERIC or actual.startswith("DECIMAL")
    if expected in ("BIGINT", "INTEGER"):
        return actual in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
    if expected == "TIMESTAMP":
        return actual.startswith("TIMESTAMP")
    if expected == "DATE":
        return actual == "DATE" or actual.startswith("TIMESTAMP")
    if expected == "VARCHAR[]":
        return actual.endswith("[]") and actual.startswith("VARCHAR")
    return False


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str | None, table: str) -> bool:
    if schema is None:
        return False
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table]).fetchone()[0])


# --------------------------------------------------------------------------- entry points


def _sample_sql(relation: str, contract: TableContract, row_count: int, limit: int) -> str:
    """Deterministic sample of about `limit` rows: a fixed hash bucket of the key."""
    buckets = max(1, math.ceil(row_count / limit))
    key = ", ".join(_q(k) for k in contract.primary_key) or "*"
    return f"SELECT * FROM {relation} WHERE hash({key}) % {buckets} = 0"


def _check_relation(con: duckdb.DuckDBPyConnection, relation: str, schema: str | None,
                    contract: TableContract, horizon: datetime | None, full_rows_limit: int
                    ) -> ContractCheckResult:
    checks = contract_checks(contract, horizon)
    row_count = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    columns = {name: dtype for name, dtype, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    exact = _duckdb_outcomes(con, relation, schema, contract, checks, row_count, columns)
    gx_checks = [c for c in checks if c.gx_capable and all(col in columns for col in check_columns(c))]
    if row_count <= full_rows_limit:
        frame = con.execute(f"SELECT * FROM {relation}").df()
        mode = "full"
    else:
        frame = con.execute(_sample_sql(relation, contract, row_count, full_rows_limit)).df()
        mode = "sample+aggregates"
    gx_outcomes = {o.check: o for o in _run_gx(frame, contract, gx_checks)}
    outcomes = []
    for o in exact:
        g = gx_outcomes.get(o.check)
        if g is not None and mode == "full":
            # GX saw every row: its verdict is the result; DuckDB's count is kept only if GX has none.
            if g.unexpected_count is None:
                g.unexpected_count = o.unexpected_count
            outcomes.append(g)
        else:
            if g is not None:
                o.sample_success = g.success
                o.success = o.success and g.success
                o.examples = o.examples or g.examples
            outcomes.append(o)
    return ContractCheckResult(
        table=contract.name, passed=all(o.success for o in outcomes), row_count=row_count,
        mode=mode, rows_checked_by_gx=len(frame), outcomes=outcomes)


def run_expectation_suite(con: duckdb.DuckDBPyConnection, table_name: str, contract: TableContract,
                          schema: str = "validated", horizon: datetime | None = None,
                          full_rows_limit: int = DEFAULT_FULL_ROWS_LIMIT) -> ContractCheckResult:
    """Check `schema.table_name` against its contract (what the Dagster asset checks call).

    On `validated.*` every check should pass: the quarantine already removed rows that break
    them. References and cross-table rules are checked against the same schema's tables.
    """
    relation = f"{schema}.{_q(table_name)}"
    return _check_relation(con, relation, schema, contract, horizon, full_rows_limit)


def check_published_frame(frame, contract: TableContract,
                          full_rows_limit: int = DEFAULT_FULL_ROWS_LIMIT) -> ContractCheckResult:
    """Check a published table's frame (pandas or pyarrow) against its published contract."""
    con = duckdb.connect(":memory:")
    try:
        con.register("published_frame", frame)
        return _check_relation(con, "published_frame", None, contract, None, full_rows_limit)
    finally:
        con.close()


def check_published_months(frame, contract: TableContract,
                           full_rows_limit: int = DEFAULT_FULL_ROWS_LIMIT) -> dict[Any, ContractCheckResult]:
    """`check_published_frame` per `as_of_date` of a frame holding several months.

    Every contract rule holds for the whole frame only if it holds for each month (the key
    includes the month), so the months are checked together in one suite; only when that
    fails is each month checked on its own, to tell which months broke what.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    months = sorted(set(table.column("as_of_date").to_pylist()))
    together = check_published_frame(table, contract, full_rows_limit)
    if together.passed:
        counts = pc.value_counts(table.column("as_of_date")).to_pylist()
        rows = {entry["values"]: entry["counts"] for entry in counts}
        return {month: ContractCheckResult(
            table=together.table, passed=True, row_count=rows[month], mode=f"checked with the run's {together.row_count:,} rows ({together.mode})",
            rows_checked_by_gx=together.rows_checked_by_gx, outcomes=together.outcomes) for month in months}
    return {month: check_published_frame(table.filter(pc.equal(table.column("as_of_date"), pa.scalar(month, table.schema.field("as_of_date").type))),
                                         contract, full_rows_limit) for month in months}
