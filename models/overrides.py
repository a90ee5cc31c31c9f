"""Analyst overrides: freeze, cap or exclude a supplier for a stated period, after the policy.

docs/design.md §7 lets a risk analyst override the policy for one supplier, with a reason, an author
and an expiry; overrides are audited and shown in the published row. The overrides are an
input, like the policy file: a YAML file (``$ASSURANCE_HOME/overrides.yaml`` unless
``ASSURANCE_OVERRIDES`` names another), validated here with pydantic:

.. code-block:: yaml

    overrides:
      - id: OV-2025-014               # unique, stable: the audit follows it
        supplier_id: S000042
        action: cap                   # freeze | cap | exclude
        amount_usd: 20000             # cap: required; freeze: optional; exclude: not allowed
        reason: chargebacks under investigation (RISK-881)
        author: j.doe@example.com
        start: 2025-07-31             # applies to month ends T with start <= T < expiry
        expiry: 2026-01-31

What each action does to the policy's decision for a month end T it is in force at:

* ``exclude``: not eligible, amount 0, reason ``OVERRIDE_EXCLUDED``.
* ``cap``: the amount is at most ``amount_usd`` (driver ``OVERRIDE_CAPPED`` when that is
  below the policy's amount); eligibility is the policy's.
* ``freeze``: the amount is ``amount_usd``, or without it the supplier's published amount at
  the month end before the override's first month (0 if it was not scored then), whatever
  the policy says now; a positive frozen amount makes the supplier eligible (driver
  ``OVERRIDE_FROZEN``; the policy's failing rules stay in ``reason_codes``).

An override that changes the amount binds at once: the row carries no decrease notice.
Because a month's amount rises from the previous *published* amount, the growth limit paces
the return to the policy's amount after a cap or an exclusion expires.

Rules that keep history honest: an override applies to T only when ``start <= T < expiry``,
so it stops by itself and never reaches a month before its start; two overrides of one
supplier may not overlap in time (the file is refused, naming both). The same file and the
same scores give the same rows on every rerun. An override of a supplier that is not scored
in a month is counted and reported, not silently dropped.

The audit (``record_override_changes``) diffs the file against the last audited state at
every run and appends one row per added, changed or removed override.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.transaction import transaction
from models.policy.common import OVERRIDE_CAPPED, OVERRIDE_EXCLUDED, OVERRIDE_FROZEN

FREEZE, CAP, EXCLUDE = "freeze", "cap", "exclude"
OVERRIDE_ACTIONS: tuple[str, ...] = (FREEZE, CAP, EXCLUDE)
# Audit change kinds.
ADDED, CHANGED, REMOVED = "added", "changed", "removed"
DEFAULT_OVERRIDES_FILE_NAME = "overrides.yaml"


class OverridesFileError(ValueError):
    """An overrides file that cannot be used; the one-line message names the entry and the fix."""


class OverrideEntry(BaseModel):
    """One analyst override, as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, pattern=r"^\S+$", description="Unique, stable name; the audit follows it.")
    supplier_id: str = Field(min_length=1, description="The supplier overridden.")
    action: Literal["freeze", "cap", "exclude"] = Field(description="freeze, cap or exclude.")
    amount_usd: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="cap: the most the supplier may have; freeze: the amount held (default: the "
        "published amount at the month end before start); exclude: not allowed.",
    )
    reason: str = Field(min_length=1, description="Why: shown in the published row.")
    author: str = Field(min_length=1, description="Who decided it.")
    start: date = Field(description="First day it is in force: applies to month ends on or after it.")
    expiry: date = Field(description="First day it is no longer in force.")

    @field_validator("start", "expiry", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            raise ValueError("expected a date YYYY-MM-DD without a time")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OverrideEntry:
        if self.expiry <= self.start:
            raise ValueError(f"expiry {self.expiry} must be after start {self.start}")
        if self.action == CAP and self.amount_usd is None:
            raise ValueError("a cap needs amount_usd (the most the supplier may have)")
        if self.action == EXCLUDE and self.amount_usd is not None:
            raise ValueError("an exclusion sets the amount to 0: remove amount_usd")
        return self

    def in_force(self, as_of_date: date) -> bool:
        return self.start <= as_of_date < self.expiry

    @property
    def first_month_end(self) -> date:
        """The first month end the override applies to (the end of start's month)."""
        following = (self.start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)

    @property
    def freeze_base_date(self) -> date:
        """The month end whose published amount a freeze without ``amount_usd`` holds."""
        return self.first_month_end.replace(day=1) - timedelta(days=1)

    @property
    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class _OverridesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: list[OverrideEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class Overrides:
    """A validated set of overrides (sorted by id); empty when there is no file."""

    entries: tuple[OverrideEntry, ...] = ()
    source: str | None = None

    @property
    def version(self) -> str:
        """Eight hex digits over the entries' content: formatting and order do not change it."""
        joined = ",".join(f"{e.id}:{e.content_hash}" for e in self.entries)
        return hashlib.sha256(joined.encode()).hexdigest()[:8]

    def in_force(self, as_of_date: date) -> tuple[OverrideEntry, ...]:
        return tuple(e for e in self.entries if e.in_force(as_of_date))

    @classmethod
    def from_entries(cls, entries: Sequence[Mapping[str, Any] | OverrideEntry], source: str | None = None) -> Overrides:
        return _parse({"overrides": [dict(e) if isinstance(e, Mapping) else e for e in entries]}, source)


def load_overrides(path: Path | str | None, *, required: bool = False) -> Overrides:
    """Read and validate an overrides file; a missing file means no overrides unless ``required``.

    Raises ``OverridesFileError`` with one line naming the file, the entry and what to fix.
    """
    if path is None:
        return Overrides()
    path = Path(path)
    if not path.exists():
        if required:
            raise OverridesFileError(f"{path}: no such overrides file; create it or unset ASSURANCE_OVERRIDES")
        return Overrides(source=str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        line = str(error).replace("\n", " ")
        raise OverridesFileError(f"{path}: not valid YAML ({line}); fix the syntax") from error
    if raw is None:
        return Overrides(source=str(path))
    if not isinstance(raw, Mapping):
        raise OverridesFileError(f"{path}: expected a mapping with the key 'overrides' (a list of overrides)")
    try:
        return _parse(raw, str(path))
    except OverridesFileError as error:
        raise OverridesFileError(f"{path}: {error}") from error


def _parse(raw: Mapping[str, Any], source: str | None) -> Overrides:
    try:
        parsed = _OverridesFile.model_validate(raw)
    except ValidationError as error:
        raise OverridesFileError(_describe(error, raw)) from None
    entries = sorted(parsed.overrides, key=lambda e: e.id)
    for first, second in zip(entries, entries[1:], strict=False):
        if first.id == second.id:
            raise OverridesFileError(f"override id {first.id!r} appears twice: give each override its own id")
    by_supplier: dict[str, list[OverrideEntry]] = {}
    for entry in entries:
        by_supplier.setdefault(entry.supplier_id, []).append(entry)
    for supplier, own in sorted(by_supplier.items()):
        own.sort(key=lambda e: (e.start, e.id))
        for first, second in zip(own, own[1:], strict=False):
            if second.start < first.expiry:
                raise OverridesFileError(
                    f"overrides {first.id!r} and {second.id!r} both apply to supplier {supplier!r} from "
                    f"{second.start}: one override per supplier at a time; end one before the other starts"
                )
    return Overrides(tuple(entries), source)


def _describe(error: ValidationError, raw: Mapping[str, Any]) -> str:
    """The first problem as one line: which entry, which field, what to do; and how many more."""
    problems = error.errors()
    first = problems[0]
    loc = list(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    if loc[:1] == ["overrides"] and len(loc) >= 2 and isinstance(loc[1], int):
        index = loc[1]
        items = raw.get("overrides") or []
        item = items[index] if isinstance(items, list) and index < len(items) else None
        name = f" (id {item['id']!r})" if isinstance(item, Mapping) and "id" in item else ""
        field = ".".join(str(part) for part in loc[2:])
        if first["type"] == "extra_forbidden":
            message = f"unknown key; allowed: {', '.join(OverrideEntry.model_fields)}"
        elif first["type"] == "missing":
            message = "missing: every override needs id, supplier_id, action, reason, author, start and expiry"
        where = f"override #{index + 1}{name}" + (f", {field}" if field else "")
        return f"{where}: {message}{more}"
    if first["type"] == "extra_forbidden":
        return f"unknown top-level key {loc[0]!r}: the file holds only 'overrides' (a list){more}"
    return f"{'.'.join(str(p) for p in loc) or 'file'}: {message}{more}"


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class OverrideOutcome:
    """One month's decisions after the overrides, and what happened to each override in force."""

    table: pa.Table
    applied: tuple[str, ...]  # override ids applied to a scored supplier
    unknown_supplier: tuple[str, ...]  # override ids whose supplier is not scored this month


def apply_overrides(
    decided: pa.Table, overrides: Overrides, frozen_amounts: Mapping[str, float] | None = None
) -> OverrideOutcome:
    """Apply the overrides in force at the table's month end to one month of decisions.

    ``decided``: rows of ``models.supplier_decisions.SCORE_SCHEMA`` for one as-of date.
    ``frozen_amounts``: per freeze override without ``amount_usd``, the amount it holds
    (``frozen_amounts_before_start``). Rows without an override in force are returned as
    they are. Pure and deterministic.
    """
    if decided.num_rows == 0:
        return OverrideOutcome(decided, (), ())
    months = set(decided.column("as_of_date").to_pylist())
    if len(months) > 1:
        raise ValueError(f"apply_overrides takes one month of decisions, got {len(months)}")
    in_force = overrides.in_force(months.pop())
    if not in_force:
        return OverrideOutcome(decided, (), ())
    columns = {name: decided.column(name).to_pylist() for name in decided.column_names}
    row_of = {supplier: i for i, supplier in enumerate(columns["supplier_id"])}
    applied, unknown = [], []
    for entry in in_force:
        i = row_of.get(entry.supplier_id)
        if i is None:
            unknown.append(entry.id)
            continue
        _apply_one(columns, i, entry, frozen_amounts or {})
        applied.append(entry.id)
    return OverrideOutcome(pa.table(columns, schema=decided.schema), tuple(applied), tuple(unknown))


def _apply_one(columns: dict[str, list], i: int, entry: OverrideEntry, frozen_amounts: Mapping[str, float]) -> None:
    before = columns["trade_assurance_amount_usd"][i]
    if entry.action == EXCLUDE:
        columns["eligible"][i] = False
        columns["trade_assurance_amount_usd"][i] = 0.0
        columns["ineligible_reasons"][i] = _with(columns["ineligible_reasons"][i], OVERRIDE_EXCLUDED)
        columns["reason_codes"][i] = _with(columns["reason_codes"][i], OVERRIDE_EXCLUDED)
        columns["amount_drivers"][i] = []
    elif entry.action == CAP:
        if entry.amount_usd < before:
            columns["trade_assurance_amount_usd"][i] = entry.amount_usd
            columns["amount_drivers"][i] = _with(columns["amount_drivers"][i], OVERRIDE_CAPPED)
    else:
        if entry.amount_usd is not None:
            frozen = entry.amount_usd
        elif entry.id in frozen_amounts:
            frozen = float(frozen_amounts[entry.id])
        else:
            raise ValueError(f"override {entry.id!r} freezes supplier {entry.supplier_id!r}: no frozen amount given")
        eligible = bool(columns["eligible"][i]) or frozen > 0
        columns["eligible"][i] = eligible
        columns["trade_assurance_amount_usd"][i] = frozen
        if eligible:
            columns["ineligible_reasons"][i] = []
        columns["amount_drivers"][i] = [OVERRIDE_FROZEN] if eligible else []
    if entry.action == EXCLUDE or columns["trade_assurance_amount_usd"][i] != before:
        # The analyst's amount binds at once: no decrease notice.
        columns["amount_binding_from"][i] = None
        columns["amount_before_binding_usd"][i] = None
    columns["override_id"][i] = entry.id
    columns["override_action"][i] = entry.action
    columns["override_reason"][i] = entry.reason


def _with(codes: list[str] | None, code: str) -> list[str]:
    return list(dict.fromkeys([*(codes or []), code]))


def frozen_amounts_before_start(
    con: duckdb.DuckDBPyConnection, scores_table: str, overrides: Overrides, as_of_date: date
) -> dict[str, float]:
    """For each freeze in force at ``as_of_date`` without ``amount_usd``: the supplier's amount at
    the month end before the override's first month, read from ``scores_table``.

    A supplier not scored that month held nothing: 0. A month never scored cannot say what to
    hold: ``OverridesFileError`` asks for the amount (or that month's run).
    """
    amounts: dict[str, float] = {}
    for entry in overrides.in_force(as_of_date):
        if entry.action != FREEZE or entry.amount_usd is not None:
            continue
        base = entry.freeze_base_date
        try:
            scored, amount = con.execute(
                f"SELECT count(*) > 0, max(trade_assurance_amount_usd) FILTER (WHERE supplier_id = ?) "
                f"FROM {scores_table} WHERE as_of_date = ?",
                [entry.supplier_id, base],
            ).fetchone()
        except duckdb.CatalogException:
            scored, amount = False, None
        if not scored:
            raise OverridesFileError(
                f"override {entry.id!r} freezes supplier {entry.supplier_id!r} at its amount of {base}, a month "
                "that was never scored: state amount_usd in the override, or run that month first"
            )
        amounts[entry.id] = 0.0 if amount is None else float(amount)
    return amounts


# --------------------------------------------------------------------------- audit

AUDIT_SCHEMA = pa.schema(
    [
        ("sequence", pa.int64()),
        ("override_id", pa.string()),
        ("change", pa.string()),
        ("supplier_id", pa.string()),
        ("action", pa.string()),
        ("amount_usd", pa.float64()),
        ("reason", pa.string()),
        ("author", pa.string()),
        ("start_date", pa.date32()),
        ("expiry_date", pa.date32()),
        ("entry_hash", pa.string()),
        ("overrides_version", pa.string()),
        ("source_file", pa.string()),
        ("run_id", pa.string()),
        ("seen_at", pa.timestamp("us")),
    ]
)
_ENTRY_FIELDS = ("supplier_id", "action", "amount_usd", "reason", "author", "start_date", "expiry_date", "entry_hash")


def _entry_values(entry: OverrideEntry) -> dict[str, Any]:
    return {
        "supplier_id": entry.supplier_id, "action": entry.action, "amount_usd": entry.amount_usd,
        "reason": entry.reason, "author": entry.author, "start_date": entry.start,
        "expiry_date": entry.expiry, "entry_hash": entry.content_hash,
    }


def override_changes(last_audited: Mapping[str, Mapping[str, Any]], overrides: Overrides) -> list[dict[str, Any]]:
    """The changes from the last audited state (override id -> its values, removed ones left
    out) to ``overrides``: added and changed with their new values, removed with their last
    ones; sorted by override id. Pure: the audit's diff."""
    current = {entry.id: entry for entry in overrides.entries}
    changes = []
    for override_id in sorted(set(current) | set(last_audited)):
        entry, last = current.get(override_id), last_audited.get(override_id)
        if entry is None:
            changes.append({"override_id": override_id, "change": REMOVED, **{k: last[k] for k in _ENTRY_FIELDS}})
        elif last is None:
            changes.append({"override_id": override_id, "change": ADDED, **_entry_values(entry)})
        elif last["entry_hash"] != entry.content_hash:
            changes.append({"override_id": override_id, "change": CHANGED, **_entry_values(entry)})
    return changes


def record_override_changes(
    con: duckdb.DuckDBPyConnection, audit_table: str, overrides: Overrides, run_id: str, seen_at: datetime
) -> pa.Table:
    """Append to ``audit_table`` (created if absent) one row per override added, changed or
    removed since the last audited state, in one transaction; return the rows appended.
    Idempotent: the same file again appends nothing."""
    schema = audit_table.split(".", 1)[0]
    with transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.register("_audit_probe", AUDIT_SCHEMA.empty_table())
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {audit_table} AS SELECT * FROM _audit_probe")
        finally:
            con.unregister("_audit_probe")
        last_rows = con.execute(
            f"SELECT * FROM {audit_table} QUALIFY row_number() OVER (PARTITION BY override_id ORDER BY sequence DESC) = 1"
        ).fetch_arrow_table().to_pylist()
        last_audited = {row["override_id"]: row for row in last_rows if row["change"] != REMOVED}
        next_sequence = con.execute(f"SELECT coalesce(max(sequence), 0) + 1 FROM {audit_table}").fetchone()[0]
        rows = [
            {"sequence": next_sequence + k, **change, "overrides_version": overrides.version,
             "source_file": overrides.source, "run_id": run_id, "seen_at": seen_at}
            for k, change in enumerate(override_changes(last_audited, overrides))
        ]
        appended = pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA)
        if rows:
            con.register("_audit_rows", appended)
            try:
                con.execute(f"INSERT INTO {audit_table} BY NAME SELECT * FROM _audit_rows")
            finally:
                con.unregister("_audit_rows")
    return appended
