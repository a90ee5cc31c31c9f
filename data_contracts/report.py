"""What an ingest did: counts per table and rule, exit codes and the `assurance validate` text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from data_contracts.contracts import LANDING_TABLE_ORDER
from data_contracts.outcomes import OutcomeDefinition
from data_contracts.quarantine import RULE_ORDER

TOLERANCES_PATH = Path(__file__).parent / "tolerances.yaml"

EXIT_CLEAN = 0
EXIT_QUARANTINE_BEYOND_TOLERANCE = 1
EXIT_UNUSABLE_INPUT = 2

IGNORED_FILES_SHOWN = 20  # names listed in the report; the count covers them all


def load_tolerances(path: Path = TOLERANCES_PATH) -> dict[str, float]:
    """Allowed quarantined share per table; key `default` for tables not listed."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    tolerances = {"default": float(raw.get("default", 0.0))}
    tolerances.update({t: float(v) for t, v in (raw.get("tables") or {}).items()})
    return tolerances


def _rule_sort_key(rule: str) -> tuple[int, str]:
    return (RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER), rule)


@dataclass
class TableIngestStats:
    table: str
    files: list[str]
    rows_read: int
    rows_accepted: int
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_by_rule.values())

    @property
    def quarantined_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass
class IngestReport:
    tables: dict[str, TableIngestStats]
    data_horizon: datetime | None  # inclusive: timestamps after it are quarantined
    horizon_source: str  # "argument", "orders.created_at" or "none (no accepted orders)"
    absent_optional_tables: list[str] = field(default_factory=list)
    # Beside the tables, not read: folders that are no contract table (-> files in them), and
    # files at the top level of the landing zone.
    unknown_tables: dict[str, int] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)
    # What the labels learn from: the manifest's `outcomes` (claims when it says nothing).
    outcome_definition: OutcomeDefinition = field(default_factory=OutcomeDefinition)

    @property
    def all_ignored_files(self) -> list[str]:
        """Every file not read: top-level files, then each table's non-data files."""
        return [*self.ignored_files, *(f for s in self.tables.values() for f in s.ignored_files)]

    def over_tolerance(self, tolerances: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
        """Tables whose quarantined share exceeds their tolerance: table -> (share, tolerance)."""
        tolerances = load_tolerances() if tolerances is None else tolerances
        default = tolerances.get("default", 0.0)
        return {
            name: (stats.quarantined_share, tolerances.get(name, default))
            for name, stats in self.tables.items()
            if stats.quarantined_share > tolerances.get(name, default)
        }

    def exit_code(self, tolerances: dict[str, float] | None = None) -> int:
        """0: nothing quarantined beyond tolerance; 1: some table is beyond it.

        (2, unusable input, is never a report: it is a `LandingZoneError`.)
        """
        return EXIT_QUARANTINE_BEYOND_TOLERANCE if self.over_tolerance(tolerances) else EXIT_CLEAN

    def to_text(self, tolerances: dict[str, float] | None = None) -> str:
        tolerances = load_tolerances() if tolerances is None else tolerances
        over = self.over_tolerance(tolerances)
        lines = []
        if self.data_horizon is not None:
            lines.append(f"data horizon: {self.data_horizon:%Y-%m-%d %H:%M:%S} UTC (from {self.horizon_source})")
        else:
            lines.append(f"data horizon: unknown ({self.horizon_source})")
        lines.append(f"outcomes: {self.outcome_definition.canonical()} (what the risk models learn from)")
        width = max([len(t) for t in self.tables] + [5])
        lines.append("")
        lines.append(f"{'table':<{width}}  {'files':>5}  {'read':>12}  {'accepted':>12}  {'quarantined':>12}  share")
        for name, s in self.tables.items():
            flag = "  BEYOND TOLERANCE" if name in over else ""
            lines.append(
                f"{name:<{width}}  {len(s.files):>5}  {s.rows_read:>12,}  {s.rows_accepted:>12,}  "
                f"{s.rows_quarantined:>12,}  {s.quarantined_share:6.2%}{flag}")
        for name in self.absent_optional_tables:
            lines.append(f"{name:<{width}}  absent or not collected: features and labels that need it will be null")
        quarantined = [(n, s) for n, s in self.tables.items() if s.quarantined_by_rule]
        if quarantined:
            lines.append("")
            lines.append("quarantined rows by rule (see warehouse schema `quarantine`):")
            for name, s in quarantined:
                for rule in sorted(s.quarantined_by_rule, key=_rule_sort_key):
                    lines.append(f"  {name}.{rule}: {s.quarantined_by_rule[rule]:,}")
        if self.unknown_tables:
            lines.append("")
            lines.append(
                f"unknown tables ({len(self.unknown_tables)} folder(s), not read; the tables are "
                f"{', '.join(LANDING_TABLE_ORDER)}): "
                + ", ".join(f"{name}/ ({n:,} file{'s' if n != 1 else ''})" for name, n in self.unknown_tables.items()))
        ignored = self.all_ignored_files
        if ignored:
            shown = ", ".join(ignored[:IGNORED_FILES_SHOWN]) + (", ..." if len(ignored) > IGNORED_FILES_SHOWN else "")
            lines.append("")
            lines.append(f"ignored files ({len(ignored):,}, not .parquet/.csv data of a table): {shown}")
        lines.append("")
        if over:
            detail = ", ".join(f"{t} {share:.2%} > {tol:.2%}" for t, (share, tol) in over.items())
            lines.append(f"result: rows quarantined beyond tolerance ({detail}) -> exit 1")
        else:
            total = sum(s.rows_quarantined for s in self.tables.values())
            lines.append(f"result: ok ({total:,} rows quarantined, within tolerance) -> exit 0")
        return "\n".join(lines)
