"""Benchmark the synthetic landing-zone generator: wall time, peak memory, truth quality.

    uv run python bench/bench_generate.py                 # default (~1M orders) and 20M orders
    uv run python bench/bench_generate.py --only default  # just one scenario

Each scenario runs in its own child process so its peak RSS is its own. Data goes to
bench/_data/ (git-ignored) and is deleted afterwards unless --keep. Results are written
to bench/results/generate.md.
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
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "_data"
RESULTS = BENCH_DIR / "results" / "generate.md"

SCENARIOS = {
    "default": dict(n_suppliers=5000, months=30),
    "20m_orders": dict(n_suppliers=50_000, months=30, orders_per_supplier_month=13.2, inquiries_per_order=2.0),
}


def run_scenario(name: str, out: Path) -> dict:
    """Runs inside the child process."""
    sys.path.insert(0, str(BENCH_DIR.parent))
    from synthetic import generate_landing_zone

    started = time.perf_counter()
    summary = generate_landing_zone(out, progress=lambda line: print(line, file=sys.stderr, flush=True), **SCENARIOS[name])
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # includes interpreter start-up and imports
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result = dict(
        scenario=name, arguments=SCENARIOS[name], seconds=round(wall, 1), cpu_seconds=round(cpu, 1),
        peak_rss_mib=round(peak_kib / 1024),
        disk_mib=round(disk / 2**20), rows=summary.row_counts, data_horizon=str(summary.data_horizon),
    )
    result.update(truth_quality(out))
    return result


def truth_quality(out: Path) -> dict:
    """Realised breach labels from the written files against `_truth/` (complete windows)."""
    import duckdb
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    frame = con.execute(
        f"""
        WITH truth AS (SELECT supplier_id, as_of_date, breach_probability_6m AS p
                       FROM read_parquet('{out}/_truth/*.parquet')),
        breaches AS (SELECT o.supplier_id, d.resolved_at
                     FROM read_parquet('{out}/disputes/*.parquet') d
                     JOIN read_parquet('{out}/orders/*.parquet') o USING (order_id)
                     WHERE d.outcome = 'buyer_favored')
        SELECT t.supplier_id, t.p, bool_or(b.resolved_at IS NOT NULL) AS y
        FROM truth t LEFT JOIN breaches b
          ON b.supplier_id = t.supplier_id
         AND b.resolved_at >= (t.as_of_date + INTERVAL 1 DAY)::TIMESTAMPTZ
         AND b.resolved_at < (t.as_of_date + INTERVAL 1 DAY + INTERVAL 6 MONTH)::TIMESTAMPTZ
        WHERE t.as_of_date + INTERVAL 6 MONTH <= (SELECT max(as_of_date) FROM truth)
        GROUP BY ALL
        """
    ).df()
    y = frame.y.to_numpy(dtype=float)
    p = frame.p.to_numpy()
    residual = pd.Series(y - p).groupby(frame.supplier_id.to_numpy()).sum()
    decile = np.minimum((frame.p.rank(pct=True).to_numpy() * 10).astype(int), 9)
    deciles = [
        dict(decile=d + 1, truth=round(float(p[decile == d].mean()), 4), realised=round(float(y[decile == d].mean()), 4))
        for d in range(10)
    ]
    return dict(
        labelled_rows=len(frame), mean_truth=round(float(p.mean()), 4), realised_rate=round(float(y.mean()), 4),
        clustered_z=round(float(residual.sum() / np.sqrt((residual**2).sum())), 2),
        oracle_auc=round(float(roc_auc_score(y, p)), 4), deciles=deciles,
    )


def write_markdown(results: list[dict], command: str) -> None:
    lines = [
        "# Synthetic generator benchmark",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{_cpu_count()} cores. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Wall time and peak RSS are those of a child process running `generate_landing_zone` "
        "(writing Parquet and `_truth/`); truth quality compares `_truth/` with breach labels "
        "computed from the written disputes (month ends whose 6-month window ends by the horizon).",
        "",
        "The 1-minute load average before and after each run is shown because the machine may be "
        "shared: with a load above the core count, wall times are upper bounds and the CPU seconds "
        "(user + system of the child, Parquet writing overlaps generation on a second thread) "
        "are the better guide to speed on an idle machine.",
        "",
        "| scenario | arguments | orders | inquiries | disputes | reviews | truth rows | wall s | CPU s | peak RSS MiB | on disk MiB | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rows = r["rows"]
        lines.append(
            f"| {r['scenario']} | `{json.dumps(r['arguments'])}` | {rows['orders']:,} | {rows['inquiries']:,} | "
            f"{rows['disputes']:,} | {rows['reviews']:,} | {rows['_truth']:,} | {r['seconds']} | {r['cpu_seconds']} | "
            f"{r['peak_rss_mib']:,} | {r['disk_mib']:,} | {r['load_average']} |"
        )
    lines += ["", "## Ground-truth quality", "",
              "| scenario | labelled supplier-months | mean truth | realised breach rate | clustered z | oracle AUC |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['scenario']} | {r['labelled_rows']:,} | {r['mean_truth']} | {r['realised_rate']} | "
                     f"{r['clustered_z']} | {r['oracle_auc']} |")
    for r in results:
        lines += ["", f"Per decile of truth ({r['scenario']}):", "", "| decile | mean truth | realised |", "|---:|---:|---:|"]
        lines += [f"| {d['decile']} | {d['truth']} | {d['realised']} |" for d in r["deciles"]]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_keeping_notes(RESULTS, "\n".join(lines))


def _cpu_count() -> int:
    return os.cpu_count() or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the generated data under bench/_data/")
    parser.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_scenario(args.child, DATA_DIR / args.child)))
        return

    results = []
    for name in [args.only] if args.only else list(SCENARIOS):
        print(f"== {name}", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        child = subprocess.run(
            [sys.executable, __file__, "--child", name], check=True, stdout=subprocess.PIPE, text=True
        )
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        results[-1]["load_average"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
        print(json.dumps({k: v for k, v in results[-1].items() if k != "deciles"}), file=sys.stderr, flush=True)
        if not args.keep:
            shutil.rmtree(DATA_DIR / name, ignore_errors=True)
    command = "uv run python bench/bench_generate.py" + (f" --only {args.only}" if args.only else "")
    write_markdown(results, command)
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
