"""Do two homes hold the same published values? Row by row, every table that a stage writes.

    uv run python bench/compare_homes.py HOME_A HOME_B

Compares, between the two homes' working warehouses, every table of the schemas in
``COMPARED_SCHEMAS`` (the published tables, the internal tables they are made from, the
monitoring tables), and the published Parquet copies, as multisets of rows with identical
values (`EXCEPT ALL` both ways, so duplicates count; NULLs compare equal). The columns that
name the run (``RUN_COLUMNS``) differ by design between two runs and are left out. Exit 1 and
one line per difference when anything differs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

COMPARED_SCHEMAS = ("published", "features", "models", "monitoring", "validated", "outcomes")
# Written per run (assets/publishing.py, the override audit): never equal between two runs.
RUN_COLUMNS = ("run_id", "published_at", "recorded_at")
PARQUET_FOLDER = "published"


@dataclass
class Comparison:
    tables: int = 0
    rows: int = 0
    differences: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.differences:
            return f"{len(self.differences)} difference(s): " + "; ".join(self.differences)
        return f"identical: {self.tables} tables, {self.rows:,} rows (run columns {', '.join(RUN_COLUMNS)} left out)"


def _working_file(home: Path) -> Path:
    return home / ".work" / "warehouse.duckdb"


def _tables(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name, list(column_name ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_catalog = ? AND table_schema IN (SELECT unnest(?)) "
        "GROUP BY ALL ORDER BY 1", [alias, list(COMPARED_SCHEMAS)]).fetchall()
    return {name: columns for name, columns in rows}


def _compare_relations(con: duckdb.DuckDBPyConnection, what: str, a: str, b: str, columns: list[str],
                       out: Comparison) -> None:
    kept = ", ".join(f'"{c}"' for c in columns if c not in RUN_COLUMNS)
    count_a = con.execute(f"SELECT count(*) FROM {a}").fetchone()[0]
    count_b = con.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
    only_a = con.execute(f"SELECT count(*) FROM (SELECT {kept} FROM {a} EXCEPT ALL SELECT {kept} FROM {b})").fetchone()[0]
    only_b = con.execute(f"SELECT count(*) FROM (SELECT {kept} FROM {b} EXCEPT ALL SELECT {kept} FROM {a})").fetchone()[0]
    out.tables += 1
    out.rows += count_a
    if count_a != count_b or only_a or only_b:
        out.differences.append(f"{what}: {count_a:,} vs {count_b:,} rows, {only_a:,} only in the first, {only_b:,} only in the second")


def compare_homes(home_a: Path, home_b: Path) -> Comparison:
    out = Comparison()
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{_working_file(home_a)}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{_working_file(home_b)}' AS b (READ_ONLY)")
        tables_a, tables_b = _tables(con, "a"), _tables(con, "b")
        for name in sorted(set(tables_a) ^ set(tables_b)):
            out.differences.append(f"{name}: only in {'the first' if name in tables_a else 'the second'} home")
        for name in sorted(set(tables_a) & set(tables_b)):
            if tables_a[name] != tables_b[name]:
                out.differences.append(f"{name}: columns differ")
                continue
            _compare_relations(con, name, f"a.{name}", f"b.{name}", tables_a[name], out)
        for folder in sorted(p for p in (home_a / PARQUET_FOLDER).glob("*") if p.is_dir()):
            other = home_b / PARQUET_FOLDER / folder.name
            files = f"'{folder}/*/*.parquet'", f"'{other}/*/*.parquet'"
            if not other.is_dir():
                out.differences.append(f"Parquet {folder.name}: only in the first home")
                continue
            a, b = (f"read_parquet({f}, hive_partitioning = true)" for f in files)
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()]
            _compare_relations(con, f"Parquet {folder.name}", a, b, columns, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("home_a", type=Path)
    parser.add_argument("home_b", type=Path)
    args = parser.parse_args()
    comparison = compare_homes(args.home_a, args.home_b)
    print(comparison.summary())
    sys.exit(1 if comparison.differences else 0)


if __name__ == "__main__":
    main()
