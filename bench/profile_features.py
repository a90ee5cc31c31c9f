"""Where the supplier-feature time goes: each build step timed on its own, in sequence.

    uv run python bench/profile_features.py --orders 20000000          # DuckDB, in process
    uv run python bench/profile_features.py --orders 5000000 --sql     # every family in SQL

Uses the input ``bench/bench_features.py`` caches (built on first use) and the same
DuckDB settings. Prints wall and CPU seconds per step and the process's peak RSS. The
steps are the ones ``run_feature_query_on`` runs: on DuckDB one stream per source table
into ``features.window_totals``; with ``--sql`` each family's SQL statement (the path a
distributed engine takes), for comparison.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_features  # noqa: E402

from features import window_aggregates as wa  # noqa: E402
from features.event_intervals import IN_PROCESS_FAMILIES, in_process_rolled_table  # noqa: E402
from features.sql_engine import DuckDBFeatureEngine  # noqa: E402
from features.supplier_features import (  # noqa: E402
    EVENT_FAMILIES,
    IN_PROCESS_TABLE,
    RolledTables,
    feature_select_sql,
    output_feature_columns,
    rolled_columns_of,
)
from features.windows import as_of_calendar_table, month_ends  # noqa: E402


def timed(label, action):
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    print(f"{label:<40} {time.perf_counter() - started:7.1f} s  {time.process_time() - cpu:7.1f} CPU s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000_000)
    parser.add_argument("--sql", action="store_true", help="every family through its SQL definition")
    args = parser.parse_args()
    con = bench_features.connect(bench_features.ensure_database(args.orders))
    engine = DuckDBFeatureEngine(con.cursor())
    started, cpu = time.perf_counter(), time.process_time()

    as_of = month_ends(bench_features.AS_OF_START, bench_features.AS_OF_END)
    engine.register_arrow("as_of_calendar", as_of_calendar_table(as_of))
    timed("calendar", lambda: wa.create_supplier_calendar(engine, "validated"))
    timed("dispute facts", lambda: wa.create_dispute_facts(engine, "validated"))
    in_process = [] if args.sql else [name for name in EVENT_FAMILIES if name in IN_PROCESS_FAMILIES]
    in_sql = [name for name in EVENT_FAMILIES if name not in in_process]
    tables: list[str] = []
    if in_process:
        table = in_process_rolled_table(engine, "validated", in_process, rolled_columns_of(in_process), step=timed)
        engine.register_arrow(IN_PROCESS_TABLE, table)
        tables.append(IN_PROCESS_TABLE)
    facts = wa.facts_needed(stream for name in in_sql for stream in EVENT_FAMILIES[name].streams(name))
    if "order_facts" in facts:
        timed("order facts", lambda: wa.create_order_facts(engine, "validated"))
    if "inquiry_facts" in facts:
        timed("inquiry facts", lambda: wa.create_inquiry_facts(engine, "validated"))
    for name in in_sql:
        family = EVENT_FAMILIES[name]
        tables += timed(name, lambda name=name: wa.create_rolled_statistics(engine, "validated", name))
        if family.build_bespoke is not None:
            timed(f"{name} (bespoke)", lambda family=family: family.build_bespoke(engine, "validated"))
            tables += family.bespoke_tables
    rolled = RolledTables(frozenset(EVENT_FAMILIES), tuple(tables), frozenset({"disputes", "inquiries", "reviews"}))
    timed("output", lambda: engine.fetch_arrow(feature_select_sql(rolled, output_feature_columns())))
    print(f"{'all steps':<40} {time.perf_counter() - started:7.1f} s  {time.process_time() - cpu:7.1f} CPU s")
    timed("bare scan (for scale)", lambda: [con.execute(sql).to_arrow_table() for sql in bench_features.BARE_SCAN_SQL])
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
