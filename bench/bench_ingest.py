"""Benchmark: ingest (`ingest_landing_zone`, all quarantine rules) against a bare DuckDB read-and-write.

    uv run python bench/bench_ingest.py --sizes 1m,8m                      # this checkout
    uv run python bench/bench_ingest.py --sizes 1m,8m --code CHECKOUT --label NAME   # another one (before/after)

The worlds are bench_run.py's (bench/_data/run_<size>, generated there if missing). Each figure
comes from a fresh child process (its own peak RSS): first the bare DuckDB read of every landing
table written into a file-backed database (bench_run.measure_duckdb_copy), then ingest into a
file-backed warehouse with its quarantine Parquet, as the pipeline's `landing_zone` step does.
Results are appended to bench/results/ingest.json and rendered in bench/results/ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "results" / "ingest.md"
RESULTS_JSON = BENCH_DIR / "results" / "ingest.json"


def measure_ingest(size: str, code: Path) -> dict:
    sys.path.insert(0, str(code))
    import duckdb
    import psutil

    from bench_run import _peak_rss, landing_dir
    from data_contracts import ingest_landing_zone

    started, cpu0 = time.time(), psutil.Process().cpu_times()
    with tempfile.TemporaryDirectory() as folder:
        with duckdb.connect(str(Path(folder) / "warehouse.duckdb")) as con:
            report = ingest_landing_zone(landing_dir(size), con, quarantine_parquet_dir=Path(folder) / "quarantine")
            con.execute("CHECKPOINT")
    cpu1 = psutil.Process().cpu_times()
    return {"wall_s": round(time.time() - started, 1), "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
            "peak_rss_gib": round(_peak_rss() / 2**30, 2), "rows": sum(t.rows_read for t in report.tables.values())}


def render(results: list[dict]) -> str:
    lines = [
        "# Benchmark: ingest against a bare DuckDB read-and-write",
        "",
        "Command: `uv run python bench/bench_ingest.py --sizes 1m,8m [--code CHECKOUT --label NAME]` (repository root).",
        "Each row: a fresh child process for the bare read-and-write, then one for ingest, on the same world,",
        "one after the other. The 2 cores were shared with other jobs (load average per row): wall times are",
        "upper bounds, CPU seconds the steadier figure.",
        "",
        "| size | code | rows read | DuckDB read+write wall (s) | CPU (s) | peak RSS (GiB) | ingest wall (s) | CPU (s) | peak RSS (GiB) | ingest / bare (wall) | (CPU) | measured | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        bare, ingest = r["duckdb_copy"], r["ingest"]
        lines.append(
            f"| {r['size']} | {r['code']} | {ingest['rows']:,} | {bare['wall_s']} | {bare['cpu_s']} | {bare['peak_rss_gib']} | "
            f"{ingest['wall_s']} | {ingest['cpu_s']} | {ingest['peak_rss_gib']} | {ingest['wall_s'] / bare['wall_s']:.1f}x | "
            f"{ingest['cpu_s'] / bare['cpu_s']:.1f}x | {r['measured']} | {r['load_avg']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,8m")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose ingest is measured")
    parser.add_argument("--label", default="this branch")
    parser.add_argument("--child", choices=("ingest", "duckdb_copy"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    code = args.code.resolve()
    sys.path.insert(0, str(BENCH_DIR))
    import bench_run

    if args.child:
        measure = measure_ingest if args.child == "ingest" else bench_run.measure_duckdb_copy
        print(json.dumps(measure(args.sizes, code)))
        return
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else []
    for size in args.sizes.split(","):
        bench_run.ensure_landing_zone(size)
        measured = {what: bench_run.in_child(what, size, code, __file__) for what in ("duckdb_copy", "ingest")}
        print(size, args.label, json.dumps(measured), flush=True)
        results.append({"size": size, "code": args.label, **measured, "load_avg": round(os.getloadavg()[0], 1),
                        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
        write_keeping_notes(RESULTS_MD, render(results))


if __name__ == "__main__":
    main()
