"""Benchmark: reading a landing zone's month span before a run starts (`data_contracts.span`).

    uv run python bench/bench_span.py --sizes 1m,8m [--repeats 3]

`assurance run` reads the month span before the Dagster run starts, to choose and check its
months. The worlds are bench_run.py's (bench/_data/run_<size>, generated there if missing).
Each repeat is a fresh child process (no cache: the span is cached per process), timing only
`landing_zone_month_span` (imports excluded). Writes bench/results/span.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "results" / "span.md"


def measure(landing: Path) -> dict:
    """One measurement in this process: wall and CPU seconds of the span read, peak RSS."""
    import resource

    sys.path.insert(0, str(REPO))
    from data_contracts.span import landing_zone_month_span

    started, cpu = time.perf_counter(), time.process_time()
    first, last = landing_zone_month_span(landing)
    return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "first": first.isoformat(), "last": last.isoformat()}


def measure_in_child(landing: Path) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--child", str(landing)], capture_output=True, text=True, cwd=REPO)
    if completed.returncode != 0:
        raise RuntimeError(f"span read of {landing} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,8m", help="bench_run.py world sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child))))
        return
    sys.path.insert(0, str(BENCH_DIR))
    from bench_run import ensure_landing_zone

    lines = [
        "# Benchmark: the month span read before a run",
        "",
        f"Command: `uv run python bench/bench_span.py --sizes {args.sizes} --repeats {args.repeats}` "
        "(written by the script). Each repeat is a fresh process; imports are not timed. Wall seconds "
        "on a shared machine are upper bounds (load average per row); CPU seconds are the steadier figure.",
        "",
        "| size | orders | span | wall s, median (all) | CPU s, median (all) | peak RSS GiB | measured | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes.split(","):
        landing = ensure_landing_zone(size)
        orders = json.loads((landing / "_generated.json").read_text())["n_orders"]
        runs = [measure_in_child(landing) for _ in range(args.repeats)]
        walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
        print(f"{size}: wall {walls}, CPU {cpus}", flush=True)
        lines.append(
            f"| {size} | {orders:,} | {runs[0]['first']} .. {runs[0]['last']} | {statistics.median(walls):.2f} "
            f"({', '.join(f'{w:.2f}' for w in walls)}) | {statistics.median(cpus):.2f} ({', '.join(f'{c:.2f}' for c in cpus)}) "
            f"| {max(r['peak_rss_gib'] for r in runs):.2f} | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
            f"| {os.getloadavg()[0]:.1f} |")
    write_keeping_notes(RESULTS_MD, "\n".join(lines))
    print(f"wrote {RESULTS_MD}")


if __name__ == "__main__":
    main()
