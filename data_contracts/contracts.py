"""Typed view of the declarative table contracts in `landing/*.yaml` and `published/*.yaml`.

The YAML files are the single source of truth: the landing-zone reader, the quarantine rules,
the Great Expectations suites and `docs/data_contracts.md` are all derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).parent
LANDING_DIR = CONTRACTS_DIR / "landing"
PUBLISHED_DIR = CONTRACTS_DIR / "published"

# The order tables are read in: a table's references point to tables earlier in this list,
# so quarantine can cascade (a dispute on a quarantined order is itself quarantined).
LANDING_TABLE_ORDER = ("suppliers", "orders", "inquiries", "disputes", "reviews")
PUBLISHED_TABLE_ORDER = ("supplier_scores", "supplier_features", "storefront_metrics")

LOGICAL_TYPES = ("VARCHAR", "DOUBLE", "BIGINT", "INTEGER", "BOOLEAN", "TIMESTAMP", "DATE", "VARCHAR[]")
COMPARISON_OPS = (">=", ">", "<=", "<", "=")

# A guard against placeholder and typo timestamps (1900-01-01, the Unix epoch 1970-01-01, a
# year typed 19xx), quarantined as `before_plausible_era`; not a claim about history (online
# marketplaces kept orders in the 1990s) and not a limit on the months a run covers, which are
# the data's. A landing contract holding older history moves it with `plausible_from: YYYY-MM-DD`.
EARLIEST_PLAUSIBLE_TIMESTAMP = datetime(2000, 1, 1)


@dataclass(frozen=True)
class ColumnContract:
    name: str
    type: str  # DuckDB type of the validated / published column
    description: str
    required: bool = True  # the column must be present in the input
    nullable: bool = False
    unique: bool = False
    allowed_values: tuple[str, ...] | None = None  # exact, case-sensitive
    pattern: str | None = None  # regular expression the whole value must match (data_contracts/rules.py anchors it)
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    # Timestamps must not lie after the data horizon, except promises about the future.
    horizon_bound: bool = True
    # Quarantine rule name when min/max is broken (e.g. non_positive_amount).
    range_rule: str = "out_of_range"
    # Rule name when only the maximum is broken (e.g. amount_above_maximum); default range_rule.
    max_rule: str | None = None

    @property
    def above_max_rule(self) -> str:
        return self.max_rule or self.range_rule

    @property
    def is_timestamp(self) -> bool:
        return self.type == "TIMESTAMP"


@dataclass(frozen=True)
class RowRule:
    """A rule between two columns of one row (`column op other`), or free DuckDB SQL.

    Either `column`/`op`/`other` or `sql` is set. A comparison holds when either side is
    null (nothing to compare yet: an order not shipped is not "shipped before created").
    """

    name: str
    description: str
    column: str | None = None
    op: str | None = None
    other: str | None = None
    sql: str | None = None


@dataclass(frozen=True)
class Reference:
    """`column` must match `table.ref_column` among that table's *accepted* rows."""

    column: str
    table: str
    ref_column: str
    missing_rule: str  # the referenced row does not exist at all
    quarantined_rule: str  # it exists but was itself quarantined (the cascade)
    description: str


@dataclass(frozen=True)
class CrossTableRule:
    """`column op table.ref_column`, joining on `via` (same name on both sides)."""

    name: str
    column: str
    op: str
    table: str
    ref_column: str
    via: str
    description: str


@dataclass(frozen=True)
class TableContract:
    name: str
    layer: str  # "landing" or "published"
    description: str
    optional: bool
    columns: tuple[ColumnContract, ...]
    primary_key: tuple[str, ...] = ()
    extra_columns: str = "ignored"  # landing: ignored; published: "allowed" or "forbidden"
    row_rules: tuple[RowRule, ...] = ()
    references: tuple[Reference, ...] = ()
    cross_table_rules: tuple[CrossTableRule, ...] = ()
    # Landing: a timestamp before this instant is quarantined as `before_plausible_era`.
    plausible_from: datetime | None = None
    source_path: Path | None = field(default=None, compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[ColumnContract]:
        return [c for c in self.columns if c.required]

    def column(self, name: str) -> ColumnContract:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def ddl_columns(self) -> str:
        """`"a" VARCHAR, "b" TIMESTAMP, …` in contract order, for CREATE TABLE."""
        return ", ".join(f"{_q(c.name)} {c.type}" for c in self.columns)


def _q(identifier: str | None) -> str:
    return '"' + str(identifier).replace('"', '""') + '"'


class ContractDefinitionError(ValueError):
    """A contract YAML file is malformed (a programming error in this package, not bad data)."""


def _parse_column(raw: dict, table: str) -> ColumnContract:
    unknown = set(raw) - {
        "name", "type", "description", "required", "nullable", "unique", "allowed_values",
        "pattern", "min", "max", "min_exclusive", "max_exclusive", "horizon_bound", "range_rule", "max_rule",
    }
    if unknown:
        raise ContractDefinitionError(f"{table}.{raw.get('name')}: unknown keys {sorted(unknown)}")
    if raw["type"] not in LOGICAL_TYPES:
        raise ContractDefinitionError(f"{table}.{raw['name']}: type {raw['type']!r} not in {LOGICAL_TYPES}")
    required = bool(raw.get("required", True))
    allowed = raw.get("allowed_values")
    return ColumnContract(
        name=raw["name"],
        type=raw["type"],
        description=" ".join(str(raw.get("description", "")).split()),
        required=required,
        nullable=bool(raw.get("nullable", not required)),
        unique=bool(raw.get("unique", False)),
        allowed_values=tuple(str(v) for v in allowed) if allowed is not None else None,
        pattern=raw.get("pattern"),
        min=raw.get("min"),
        max=raw.get("max"),
        min_exclusive=bool(raw.get("min_exclusive", False)),
        max_exclusive=bool(raw.get("max_exclusive", False)),
        horizon_bound=bool(raw.get("horizon_bound", True)),
        range_rule=str(raw.get("range_rule", "out_of_range")),
        max_rule=raw.get("max_rule"),
    )


def _plausible_from(raw: dict) -> datetime | None:
    if raw["layer"] != "landing":
        return None
    value = raw.get("plausible_from", EARLIEST_PLAUSIBLE_TIMESTAMP)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise ContractDefinitionError(f"{raw['table']}: plausible_from {value!r} is not a date") from None


def load_contract(path: Path) -> TableContract:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    name = raw["table"]
    columns = tuple(_parse_column(c, name) for c in raw["columns"])
    names = {c.name for c in columns}

    def check_cols(where: str, *cols: str | None) -> None:
        for col in cols:
            if col is not None and col not in names:
                raise ContractDefinitionError(f"{name}: {where} refers to unknown column {col!r}")

    row_rules = []
    for r in raw.get("row_rules", []) or []:
        rule = RowRule(
            name=r["name"], description=" ".join(str(r.get("description", "")).split()),
            column=r.get("column"), op=r.get("op"), other=r.get("other"), sql=r.get("sql"),
        )
        if rule.sql is None:
            check_cols(f"row rule {rule.name}", rule.column, rule.other)
            if rule.op not in COMPARISON_OPS:
                raise ContractDefinitionError(f"{name}: row rule {rule.name} has bad op {rule.op!r}")
        row_rules.append(rule)
    references = []
    for r in raw.get("references", []) or []:
        check_cols("reference", r["column"])
        references.append(Reference(
            column=r["column"], table=r["table"], ref_column=r["ref_column"],
            missing_rule=r["missing_rule"], quarantined_rule=r["quarantined_rule"],
            description=" ".join(str(r.get("description", "")).split()),
        ))
    cross = []
    for r in raw.get("cross_table_rules", []) or []:
        check_cols(f"cross-table rule {r['name']}", r["column"], r["via"])
        if r["op"] not in COMPARISON_OPS:
            raise ContractDefinitionError(f"{name}: cross-table rule {r['name']} has bad op {r['op']!r}")
        cross.append(CrossTableRule(
            name=r["name"], column=r["column"], op=r["op"], table=r["table"],
            ref_column=r["ref_column"], via=r["via"],
            description=" ".join(str(r.get("description", "")).split()),
        ))
    primary_key = tuple(raw.get("primary_key", []) or [])
    check_cols("primary_key", *primary_key)
    return TableContract(
        name=name,
        layer=raw["layer"],
        description=" ".join(str(raw.get("description", "")).split()),
        optional=bool(raw.get("optional", False)),
        columns=columns,
        primary_key=primary_key,
        extra_columns=raw.get("extra_columns", "ignored" if raw["layer"] == "landing" else "forbidden"),
        row_rules=tuple(row_rules),
        references=tuple(references),
        cross_table_rules=tuple(cross),
        plausible_from=_plausible_from(raw),
        source_path=Path(path),
    )


def _load_dir(directory: Path, order: tuple[str, ...]) -> dict[str, TableContract]:
    contracts = {p.stem: load_contract(p) for p in sorted(directory.glob("*.yaml"))}
    for stem, contract in contracts.items():
        if contract.name != stem:
            raise ContractDefinitionError(f"{directory / stem}.yaml declares table {contract.name!r}")
    known = [t for t in order if t in contracts]
    return {t: contracts[t] for t in known + sorted(set(contracts) - set(known))}


@lru_cache(maxsize=1)
def _landing() -> dict[str, TableContract]:
    return _load_dir(LANDING_DIR, LANDING_TABLE_ORDER)


@lru_cache(maxsize=1)
def _published() -> dict[str, TableContract]:
    return _load_dir(PUBLISHED_DIR, PUBLISHED_TABLE_ORDER)


def load_landing_contracts() -> dict[str, TableContract]:
    """Landing tables by name, in dependency order (suppliers, orders, inquiries, disputes, reviews)."""
    return dict(_landing())


def load_published_contracts() -> dict[str, TableContract]:
    """Published tables by name (supplier_scores, supplier_features, storefront_metrics)."""
    return dict(_published())
