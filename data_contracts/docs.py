"""Render `docs/data_contracts.md` from the contract YAML files.

    uv run python -m data_contracts.docs          # (re)write the page
    uv run python -m data_contracts.docs --check  # exit 1 if the committed page is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from data_contracts.contracts import ColumnContract, TableContract, load_landing_contracts, load_published_contracts
from data_contracts.expectations import DEFAULT_FULL_ROWS_LIMIT
from data_contracts.ingest import HORIZON_MAX_GAP_DAYS
from data_contracts.landing_zone import WRONG_TYPE_MIN_VALUES
from data_contracts.quarantine import RULE_DESCRIPTIONS, RULE_ORDER
from data_contracts.report import load_tolerances

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "data_contracts.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(c: ColumnContract, landing: bool) -> str:
    parts = []
    if c.unique:
        parts.append("unique")
    if c.allowed_values is not None:
        parts.append("one of " + ", ".join(f"`{v}`" for v in c.allowed_values))
    if c.pattern is not None:
        parts.append(f"matches `{c.pattern}`")
    if c.min is not None or c.max is not None:
        low = "" if c.min is None else f"{c.min:g} {'<' if c.min_exclusive else '≤'} "
        high = "" if c.max is None else f" {'<' if c.max_exclusive else '≤'} {c.max:g}"
        rules = dict.fromkeys(r for r in (c.range_rule, c.above_max_rule if c.max is not None else None) if r and r != "out_of_range")
        parts.append(f"{low}value{high}" + (f" ({', '.join(f'`{r}`' for r in rules)})" if rules else ""))
    if c.is_timestamp and landing and not c.horizon_bound:
        parts.append("may lie after the horizon")
    return "; ".join(parts)


def _table_section(t: TableContract) -> list[str]:
    lines = [f"### `{t.name}`" + (" (optional)" if t.optional and t.layer == "landing" else ""), "", t.description, ""]
    if t.primary_key:
        lines.append(f"Key: `{', '.join(t.primary_key)}`. " + {
            "ignored": "Extra columns in the files are ignored.",
            "allowed": "Extra columns are allowed.",
            "forbidden": "No other columns.",
        }.get(t.extra_columns, ""))
        lines.append("")
    if t.plausible_from is not None:
        lines.append(f"Timestamps before {t.plausible_from:%Y-%m-%d} (`plausible_from`) are quarantined as `before_plausible_era`.")
        lines.append("")
    if t.layer == "landing":
        lines.append("| column | type | required | nullable | constraints | description |")
        lines.append("|---|---|---|---|---|---|")
        for c in t.columns:
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | "
                         f"{'yes' if c.nullable else 'no'} | {_cell(_constraints(c, True))} | {_cell(c.description)} |")
    else:
        lines.append("| column | type | nullable | constraints | description |")
        lines.append("|---|---|---|---|---|")
        for c in t.columns:
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | "
                         f"{_cell(_constraints(c, False))} | {_cell(c.description)} |")
    rules = []
    for r in t.row_rules:
        what = f"`{r.sql}`" if r.sql else f"`{r.column} {r.op} {r.other}` (when both are set)"
        rules.append(f"- `{r.name}`: {r.description} Must hold: {what}.")
    for ref in t.references:
        rules.append(f"- `{ref.missing_rule}` / `{ref.quarantined_rule}`: {ref.description} "
                     f"(`{ref.column}` → `{ref.table}.{ref.ref_column}`)")
    for r in t.cross_table_rules:
        rules.append(f"- `{r.name}`: {r.description} Must hold: `{r.column} {r.op} {r.table}.{r.ref_column}` "
                     f"(joined on `{r.via}`).")
    if rules:
        lines += ["", "Rules:", "", *rules]
    lines.append("")
    return lines


def render_markdown() -> str:
    landing = load_landing_contracts()
    published = load_published_contracts()
    tolerances = load_tolerances()
    lines = [
        "# Data contracts",
        "",
        "<!-- Generated from data_contracts/landing/*.yaml and data_contracts/published/*.yaml by",
        "     `uv run python -m data_contracts.docs`. Do not edit by hand: edit the YAML and regenerate. -->",
        "",
        "The landing zone (docs/design.md §3) and the published tables (docs/design.md §5) are contracts: they change",
        "only by adding (a new optional column, a new table). This page is rendered from the YAML files",
        "in `data_contracts/` that the validator, the quarantine rules and the Great Expectations",
        "suites are built from, so it cannot drift from what is enforced.",
        "",
        "## Reading a landing zone",
        "",
        "- One folder per table under the landing root; every `*.parquet`, `*.pq`, `*.csv` or",
        "  `*.csv.gz` file below it is read, in sorted path order, including hive-partitioned",
        "  sub-folders (`key=value/`: a missing contract column is taken from the path). Files and",
        "  folders starting with `.` or `_` (`_SUCCESS`, `.crc`) are skipped; other files are listed",
        "  in the report as ignored, with their count, and so are files at the top level and",
        "  sub-folders that are no table (\"unknown tables\", with their file counts).",
        "- Symbolic links inside a table folder (to a file or a folder) are followed when they resolve",
        "  inside the landing zone; a link that points outside it, is broken, loops or reaches data",
        "  already read stops the run with a `LandingZoneError` naming the link.",
        "- CSV: UTF-8 (a byte-order mark is fine), comma-delimited, a header row, `\"` quotes (quoted",
        "  newlines are fine); empty fields are null. Column names are exact and case-sensitive;",
        "  column order does not matter; extra columns are ignored.",
        "- Timestamps are UTC: ISO 8601 `YYYY-MM-DD[(T| )HH:MM[:SS[.ffffff]]]`, optionally followed",
        "  by `Z` or an offset (`+02:00`), which is converted to UTC. In Parquet: `TIMESTAMP` (any unit,",
        "  naive means UTC), `TIMESTAMP WITH TIME ZONE`, `DATE`, or ISO text.",
        "- Parquet numbers must be numeric types and booleans `BOOLEAN`; text there is a wrong type.",
        "",
        "### Unusable input (`LandingZoneError`, `assurance validate` exit 2)",
        "",
        "Nothing is written, and the one-line message names the table, file, column, the expectation",
        "and what to do next, when:",
        "",
        "- the landing folder or a required table (`suppliers`, `orders`, `disputes`) is missing;",
        "- a file lacks a required column (optional columns may be missing: they become null);",
        "- a Parquet column has a type that cannot become the contract type (e.g. `amount_usd` as text);",
        f"- a CSV column has at least {WRONG_TYPE_MIN_VALUES} values and none of them parses as its type;",
        "- a file is empty (0 bytes / no header), corrupt or unreadable;",
        "- a CSV is not UTF-8 (e.g. latin-1 with accents) or not comma-delimited (e.g. `;`);",
        "- a timestamp column mixes timezone offsets (within a file or across the table's files).",
        "",
        "### Row rules (quarantine)",
        "",
        "Every row read is either accepted into `validated.<table>` or quarantined into",
        "`quarantine.<table>` with the *first* rule it breaks, in this order (rules 1-"
        f"{RULE_ORDER.index('after_horizon')} look at the",
        "row alone and are checked while reading; the rest need other rows or tables). The counts reconcile:",
        "read = accepted + quarantined, per table, checked by the ingest itself.",
        "",
        "| # | rule | meaning |",
        "|---|---|---|",
    ]
    for i, rule in enumerate(RULE_ORDER, 1):
        lines.append(f"| {i} | `{rule}` | {_cell(RULE_DESCRIPTIONS.get(rule, ''))} |")
    lines += [
        "",
        "- **Duplicates** are judged among rows that passed the earlier rules. Identical copies",
        "  (every contract column equal) keep the first (lowest file path, then row) and quarantine",
        "  the others as `duplicate_row`; rows sharing an id with *different* content are all",
        "  quarantined as `duplicate_id` — nothing says which one is true, and keeping the first",
        "  would make the result depend on file names.",
        "- **Cascades**: references are checked against the referenced table's *accepted* rows, in",
        "  the order suppliers → orders → inquiries → disputes → reviews. An order of a quarantined",
        "  supplier is `supplier_quarantined`; a dispute or review of a quarantined order is",
        "  `order_quarantined`; of an order that does not exist at all, `orphan_order`.",
        "- **Data horizon**: the end of day (23:59:59.999999) of the last order date among orders that",
        f"  passed rules 1-{RULE_ORDER.index('after_horizon')}, walking forward from the median order date "
        "and stopping before the first",
        f"  gap of more than {HORIZON_MAX_GAP_DAYS} days without orders (so one order mistyped as 2099",
        "  cannot push the horizon out and hide every other future timestamp). The `horizon`",
        "  argument overrides it. Every timestamp except `promised_ship_by` must be at or before it.",
        "",
        "### Quarantine tables (contract)",
        "",
        "`quarantine.<table>`: every contract column of the table as VARCHAR (the value as delivered:",
        "the original text for CSV and text timestamps), then `rule`, `rule_detail` (the offending",
        "column and value), `source_file` (path relative to the landing root) and `source_row`",
        "(0-based row within that file, header excluded). `validated._ingest_report` holds",
        "`table, outcome (read | accepted | quarantined), rule, rows, data_horizon`.",
        "",
        "### Tolerances (`data_contracts/tolerances.yaml`)",
        "",
        "`assurance validate` exits 1 when a table's quarantined share exceeds its tolerance:",
        "",
        "| table | tolerance |",
        "|---|---|",
    ]
    for name in landing:
        lines.append(f"| `{name}` | {tolerances.get(name, tolerances['default']):.2%} |")
    lines += [
        "",
        "### Checks after ingest (Great Expectations)",
        "",
        "Each rule of a contract is declared once (`data_contracts/rules.py`) and compiled from that",
        "one declaration to the quarantine's SQL condition, to the DuckDB aggregate that counts its",
        "violations and to its Great Expectations expectation; a test runs all three on rows either",
        "side of every bound and requires the same rows flagged.",
        "`build_expectation_suite(contract)` turns each contract into a GX 1.x `ExpectationSuite`",
        "(not-null and not blank, unique key, allowed values, patterns, ranges, column-pair order, exact",
        "column set; each expectation's `meta.rule` names the quarantine rule it enforces).",
        "`run_expectation_suite(con, table, contract)` checks `validated.<table>`: GX runs on the whole",
        f"table up to {DEFAULT_FULL_ROWS_LIMIT:,} rows; above that GX runs on a deterministic sample (a",
        "fixed hash bucket of the key, the same rows every run) and every check's *exact* unexpected",
        "count comes from DuckDB aggregates over all rows, in the same result shape. Column types,",
        "whole numbers, free-SQL row rules, references and cross-table rules are checked in DuckDB",
        "only. The accepted rows should always",
        "pass: the quarantine already removed violations, so a failure here is a bug, not dirty data.",
        "",
        "## Landing tables",
        "",
    ]
    for t in landing.values():
        lines += _table_section(t)
    lines += [
        "## Published tables",
        "",
        "Checked with `data_contracts.check_published_frame(frame, contract)` before publishing.",
        "",
    ]
    for t in published.values():
        lines += _table_section(t)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render_markdown()
    if "--check" in argv:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run `uv run python -m data_contracts.docs`", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
