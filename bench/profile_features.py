"""Where the supplier-feature time goes: each build step timed on its own, in sequence.

    uv run python bench/profile_features.py --orders 20000000

Uses the input ``bench/bench_features.py`` caches (built on first use) and the same
DuckDB settings. Prints wall and CPU seconds per step and the process's peak RSS. The
steps are the ones ``run_feature_query_on`` runs, so the sum is one full computation.
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
from features.sql_engine import DuckDBFeatureEngine  # noqa: E402
from features.supplier_features import (  # noqa: E402
    EVENT_FAMILIES,
    feature_select_sql,
    output_feature_columns,
)
from features.windows import as_of_calendar_table, month_ends  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000_000)
    parser.add_argument("--only", help="comma-separated event families to build (default all)")
    args = parser.parse_args()
    con = bench_features.connect(bench_features.ensure_database(args.orders))
    engine = DuckDBFeatureEngine(con.cursor())
    families = args.only.split(",") if args.only else list(EVENT_FAMILIES)

    def timed(label, action):
        started, cpu = time.perf_counter(), time.process_time()
        result = action()
        print(f"{label:<22} {time.perf_counter() - started:7.1f} s  {time.process_time() - cpu:7.1f} CPU s",
              flush=True)
        return result

    as_of = month_ends(bench_features.AS_OF_START, bench_features.AS_OF_END)
    engine.register_arrow("as_of_calendar", as_of_calendar_table(as_of))
    timed("calendar", lambda: wa.create_supplier_calendar(engine, "validated"))
    timed("dispute facts", lambda: wa.create_dispute_facts(engine, "validated"))
    timed("order facts", lambda: wa.create_order_facts(engine, "validated"))
    built = {"disputes_recorded"}
    for name in families:
        timed(name, lambda name=name: EVENT_FAMILIES[name].build(engine, "validated"))
        built.add(name)
    if set(families) == set(EVENT_FAMILIES):
        timed("output", lambda: engine.fetch_arrow(feature_select_sql(built, output_feature_columns())))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
