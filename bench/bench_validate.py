"""Benchmark: ingest_landing_zone + the Great Expectations suites at ~1M and ~20M orders.

    uv run python bench/bench_validate.py                 # both sizes, writes bench/results/validate.md
    uv run python bench/bench_validate.py --sizes 1m      # one size
    uv run python bench/bench_validate.py --keep          # keep generated landing zones for re-runs

Landing zones come from `synthetic.generate_landing_zone` (50,000 suppliers and 13.2 orders
per supplier-month for ~20M orders; 5,000 suppliers at the default rate for ~1M) and are cached
under bench/_data/ (git-ignored). Each size is measured in a fresh child process so peak RSS
(ru_maxrss) belongs to that size alone; the ingest writes into a file-backed DuckDB, as the
pipeline's warehouse does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "_data"
RESULTS = BENCH_DIR / "results" / "validate.md"
RESULTS_JSON = BENCH_DIR / "results" / "validate.json"  # per-size results; a re-run of one size keeps the others
SIZES = {
    "1m": dict(n_suppliers=5_000, months=30),
    "20m": dict(n_suppliers=50_000, months=30, orders_per_supplier_month=13.2),
}


def landing_dir(size: str) -> Path:
    return DATA_DIR / f"validate_{size}"


def ensure_landing_zone(size: str) -> tuple[Path, float | None]:
    out = landing_dir(size)
    marker = out / "_generated.json"
    if marker.exists():
        return out, None
    sys.path.insert(0, str(BENCH_DIR.parent))
    from synthetic.landing_zone import generate_landing_zone

    started = time.perf_counter()
    summary = generate_landing_zone(out, seed=7, **SIZES[size])
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"n_orders": summary.n_orders, "seconds": seconds}))
    return out, seconds


def child(size: str) -> dict:
    """Measure one size in this (fresh) process."""
    sys.path.insert(0, str(BENCH_DIR.parent))
    import duckdb

    from data_contracts import ingest_landing_zone, load_landing_contracts, run_expectation_suite

    landing = landing_dir(size)
    db_path = DATA_DIR / f"validate_{size}.duckdb"
    for p in (db_path, Path(str(db_path) + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(db_path))
    started = time.perf_counter()
    report = ingest_landing_zone(landing, con)
    ingest_seconds = time.perf_counter() - started
    rss_after_ingest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    contracts = load_landing_contracts()
    suites = {}
    started = time.perf_counter()
    for name in report.tables:
        t0 = time.perf_counter()
        result = run_expectation_suite(con, name, contracts[name], horizon=report.data_horizon)
        suites[name] = {"passed": result.passed, "mode": result.mode, "rows": result.row_count,
                        "gx_rows": result.rows_checked_by_gx, "seconds": round(time.perf_counter() - t0, 2)}
    gx_seconds = time.perf_counter() - started
    con.close()
    for p in (db_path, Path(str(db_path) + ".wal")):
        p.unlink(missing_ok=True)
    return {
        "size": size,
        "rows": {n: s.rows_read for n, s in report.tables.items()},
        "files": sum(len(s.files) for s in report.tables.values()),
        "quarantined": sum(s.rows_quarantined for s in report.tables.values()),
        "ingest_seconds": round(ingest_seconds, 1),
        "gx_seconds": round(gx_seconds, 1),
        "suites": suites,
        "peak_rss_gib_ingest": round(rss_after_ingest / 2**20, 2),
        "peak_rss_gib_total": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def render(results: list[dict], command: str) -> str:
    lines = [
        "# Benchmark: landing-zone validation",
        "",
        f"Command: `{command}` (from the repository root)",
        "",
        f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.platform()}. Other jobs shared the 2 cores (load average per row below), so wall",
        "times are upper bounds.",
        "",
        "What is timed: `ingest_landing_zone` (read every Parquet file, apply all quarantine rules, write",
        "`validated.*`, `quarantine.*`, `_ingest_report` into a file-backed DuckDB), then",
        "`run_expectation_suite` for every table (GX on the whole table up to 100,000 rows, otherwise GX",
        "on a deterministic ~100,000-row hash sample plus exact DuckDB aggregates over all rows).",
        "Peak RSS is the child process's `ru_maxrss`.",
        "",
        "| size | orders | all rows | files | ingest (s) | GX suites (s) | peak RSS after ingest (GiB) | peak RSS total (GiB) | quarantined | measured | load avg | exact command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']} | {r['rows']['orders']:,} | {sum(r['rows'].values()):,} | {r['files']} | "
            f"{r['ingest_seconds']} | {r['gx_seconds']} | {r['peak_rss_gib_ingest']} | "
            f"{r['peak_rss_gib_total']} | {r['quarantined']:,} | {r.get('measured_at', '')} | "
            f"{r.get('load_average', '')} | `{r.get('command', '')}` |")
    lines += ["", "Per-table suites:", "", "| size | table | rows | mode | GX rows | seconds | passed |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        for name, s in r["suites"].items():
            lines.append(f"| {r['size']} | {name} | {s['rows']:,} | {s['mode']} | {s['gx_rows']:,} | "
                         f"{s['seconds']} | {s['passed']} |")
    gen = [r for r in results if r.get("generate_seconds")]
    if gen:
        lines += ["", "Generating the landing zones (not part of the timings above): " + ", ".join(
            f"{r['size']} {r['generate_seconds']:.0f} s" for r in gen) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,20m")
    parser.add_argument("--keep", action="store_true", help="keep generated landing zones under bench/_data/")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        _, generate_seconds = ensure_landing_zone(size)
        out = subprocess.run([sys.executable, __file__, "--child", size], check=True,
                             capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["generate_seconds"] = generate_seconds
        results.append(result)
        print(json.dumps(result), flush=True)
        if not args.keep:
            shutil.rmtree(landing_dir(size), ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    for r in results:
        r["measured_at"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        r["load_average"] = round(os.getloadavg()[0], 1)
        r["command"] = "uv run python bench/bench_validate.py --sizes " + r["size"] + (" --keep" if args.keep else "")
        merged[r["size"]] = r
    RESULTS_JSON.write_text(json.dumps(merged, indent=1), encoding="utf-8")
    ordered = [merged[s] for s in SIZES if s in merged]
    write_keeping_notes(RESULTS, render(ordered, "uv run python bench/bench_validate.py [--sizes 1m|20m] [--keep]"))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
