"""Benchmark: the whole `assurance run`, stage by stage, beside two references on the same world.

    uv run python bench/bench_run.py                  # 1m and 8m, writes bench/results/run.md, run.json, run_stages.png
    uv run python bench/bench_run.py --sizes 1m       # one size (other sizes' recorded results are kept)
    uv run python bench/bench_run.py --sizes 20m      # the large world (~20M orders; allow an hour)
    uv run python bench/bench_run.py --sizes 1m --code /path/to/other/checkout --label "main e7e7e37"
                                                       # the same world run by another checkout's code (before/after)

For each size, a landing zone from `synthetic.generate_landing_zone` (cached under bench/_data/,
git-ignored) is run into a fresh home folder by the CLI's own path (the month span,
`pipelines.runner.month_range`, then `run_months`), in a fresh child process so its peak RSS is its own.

What is measured:
- per Dagster step (one asset, or one asset check), its wall seconds from the run's event log
  (STEP_START to STEP_SUCCESS), and the process CPU seconds and peak RSS sampled every 0.25 s by a
  thread (CPU counts DuckDB's and LightGBM's threads: all run in the process);
- the time before the run starts (reading the month span, loading definitions);
- two references on the same world, each in its own child process: a plain-pandas script that
  computes the five storefront figures of docs/design.md §5 for every month end, and a bare DuckDB
  read-and-write of every landing table into a file-backed database (what ingest does, minus the rules).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "_data"
RESULTS_MD = BENCH_DIR / "results" / "run.md"
RESULTS_JSON = BENCH_DIR / "results" / "run.json"
RESULTS_PLOT = BENCH_DIR / "results" / "run_stages.png"
SIZES = {
    "1m": dict(n_suppliers=6_500, months=24, seed=41),
    "8m": dict(n_suppliers=50_000, months=24, seed=41),
    "20m": dict(n_suppliers=50_000, months=30, seed=41, orders_per_supplier_month=13.2),
}
LANDING_TABLES = ("suppliers", "orders", "inquiries", "disputes", "reviews")
SAMPLE_SECONDS = 0.25


def landing_dir(size: str) -> Path:
    return DATA_DIR / f"run_{size}"


def ensure_landing_zone(size: str) -> Path:
    out = landing_dir(size)
    if (out / "_generated.json").exists():
        return out
    sys.path.insert(0, str(REPO))
    from synthetic.landing_zone import generate_landing_zone

    shutil.rmtree(out, ignore_errors=True)
    summary = generate_landing_zone(out, start="2024-01", **SIZES[size])
    (out / "_generated.json").write_text(json.dumps({"n_orders": summary.n_orders}))
    return out


class Sampler:
    """Process CPU seconds and RSS every `SAMPLE_SECONDS`, in a thread."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.samples: list[tuple[float, float, int]] = []  # (unix time, cpu seconds, rss bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        cpu = self.process.cpu_times()
        self.samples.append((time.time(), cpu.user + cpu.system, self.process.memory_info().rss))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def between(self, start: float, end: float) -> tuple[float, int]:
        """CPU seconds spent and peak RSS seen between two unix times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end] or self.samples[-1:]
        cpu = after[0][1] - before[-1][1]
        peak = max((s[2] for s in inside + before[-1:] + after[:1]), default=0)
        return cpu, peak


def measure_run(size: str, code: Path = REPO) -> dict:
    """One `assurance run` of the size's landing zone into a fresh home (in this fresh process), by
    the pipeline code of the checkout `code` (this repository unless measuring another one)."""
    sys.path.insert(0, str(code))
    import dagster as dg

    from data_contracts.span import landing_zone_month_span
    from pipelines.runner import month_range, run_months
    from pipelines.settings import Settings

    landing = landing_dir(size)
    home = Path(tempfile.mkdtemp(prefix=f"bench_run_{size}_"))
    os.environ["ASSURANCE_HOME"], os.environ["ASSURANCE_LANDING"] = str(home), str(landing)
    settings = Settings.from_env()
    try:
        with Sampler() as sampler:
            started = time.time()
            first, last = month_range(None, None, landing_zone_month_span(settings.landing))  # as `assurance run` does
            outcome = run_months(settings, first, last, echo=lambda line: None)
            ended = time.time()
        with dg.DagsterInstance.get() as instance:
            records = instance.all_logs(outcome.run_id, of_type={
                dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
                dg.DagsterEventType.RUN_START})
        run_start = min(r.timestamp for r in records if r.dagster_event.event_type == dg.DagsterEventType.RUN_START)
        starts = {r.step_key: r.timestamp for r in records if r.dagster_event.event_type == dg.DagsterEventType.STEP_START}
        ends = {r.step_key: r.timestamp for r in records if r.dagster_event.event_type != dg.DagsterEventType.STEP_START
                and r.step_key}
        stages = [{"stage": "before the run (month span, definitions)", "start": started, "end": run_start}]
        stages += [{"stage": key, "start": starts[key], "end": ends[key]} for key in sorted(starts, key=starts.get) if key in ends]
        stages.append({"stage": "after the run (summary)", "start": max(ends.values()), "end": ended})
        for stage in stages:
            stage["wall_s"] = round(stage["end"] - stage["start"], 2)
            cpu, peak = sampler.between(stage["start"], stage["end"])
            stage["cpu_s"], stage["peak_rss_gib"] = round(cpu, 2), round(peak / 2**30, 2)
        supplier_months = _count(home, "SELECT count(*) FROM published.supplier_scores")
        return {
            "wall_s": round(ended - started, 1),
            "cpu_s": round(sampler.samples[-1][1] - sampler.samples[0][1], 1),
            "peak_rss_gib": round(max(s[2] for s in sampler.samples) / 2**30, 2),
            "supplier_months_scored": supplier_months,
            "stages": [{k: v for k, v in stage.items() if k not in ("start", "end")} for stage in stages],
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _count(home: Path, sql: str) -> int:
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def measure_pandas_storefront(size: str, code: Path = REPO) -> dict:
    """The five storefront figures for every month end with plain pandas (the reference a user
    would write by hand): wall and CPU seconds, peak RSS."""
    import pandas as pd
    import psutil

    landing = landing_dir(size)
    started, cpu0 = time.time(), psutil.Process().cpu_times()

    def read(table: str, columns: list[str]) -> pd.DataFrame:
        return pd.read_parquet(landing / table, columns=columns)

    orders = read("orders", ["supplier_id", "status", "delivered_at", "amount_usd", "promised_ship_by", "shipped_at", "created_at"])
    inquiries = read("inquiries", ["supplier_id", "received_at", "first_response_at"])
    month_ends = pd.date_range(orders["created_at"].min(), orders["created_at"].max(), freq="ME").normalize()
    delivered = orders[(orders["status"] != "cancelled") & orders["delivered_at"].notna()]
    promised = orders[orders["promised_ship_by"].notna()]
    rows = 0
    for month_end in month_ends:
        by = month_end + pd.Timedelta(days=1)
        since_12 = (month_end + pd.Timedelta(days=1)) - pd.DateOffset(months=12)
        since_6 = (month_end + pd.Timedelta(days=1)) - pd.DateOffset(months=6)
        window = delivered[(delivered["delivered_at"] >= since_12) & (delivered["delivered_at"] < by)]
        volume = window.groupby("supplier_id")["amount_usd"].agg(["count", "sum"])
        received = inquiries[(inquiries["received_at"] >= since_6) & (inquiries["received_at"] < by)]
        answered = received["first_response_at"].notna() & (received["first_response_at"] < by)
        hours = (received["first_response_at"] - received["received_at"]).dt.total_seconds() / 3600
        response = pd.DataFrame({"supplier_id": received["supplier_id"], "answered": answered,
                                 "hours": hours.where(answered)}).groupby("supplier_id").agg(
            response_rate=("answered", "mean"), median_hours=("hours", "median"))
        due = promised[(promised["promised_ship_by"] >= since_6) & (promised["promised_ship_by"] < by)]
        on_time = (due["shipped_at"].notna() & (due["shipped_at"] < due["promised_ship_by"].dt.normalize() + pd.Timedelta(days=1))
                   & (due["shipped_at"] < by))
        on_time_rate = on_time.groupby(due["supplier_id"]).mean()
        rows += len(volume.join(response, how="outer").join(on_time_rate.rename("on_time"), how="outer"))
    cpu1 = psutil.Process().cpu_times()
    return {"wall_s": round(time.time() - started, 1), "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
            "peak_rss_gib": round(_peak_rss() / 2**30, 2), "rows": rows}


def measure_duckdb_copy(size: str, code: Path = REPO) -> dict:
    """A bare DuckDB read of every landing table and write into a file-backed database."""
    import duckdb
    import psutil

    landing = landing_dir(size)
    started, cpu0 = time.time(), psutil.Process().cpu_times()
    with tempfile.TemporaryDirectory() as folder:
        with duckdb.connect(str(Path(folder) / "copy.duckdb")) as con:
            for table in LANDING_TABLES:
                if (landing / table).is_dir():
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{landing / table}/**/*.parquet')")
            con.execute("CHECKPOINT")
    cpu1 = psutil.Process().cpu_times()
    return {"wall_s": round(time.time() - started, 1), "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
            "peak_rss_gib": round(_peak_rss() / 2**30, 2)}


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


MEASURES = {"run": measure_run, "pandas_storefront": measure_pandas_storefront, "duckdb_copy": measure_duckdb_copy}


def in_child(what: str, size: str, code: Path, script: str = __file__) -> dict:
    """`script --child what` in a fresh process (its own peak RSS): its JSON answer."""
    done = subprocess.run([sys.executable, script, "--child", what, "--sizes", size, "--code", str(code)],
                          capture_output=True, text=True, cwd=code)
    if done.returncode != 0:
        raise RuntimeError(f"{what} at {size} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_results(results: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Benchmark: the whole run",
        "",
        "Command: `uv run python bench/bench_run.py [--sizes 1m,8m,20m] [--code CHECKOUT --label NAME]` (from the repository root).",
        "Each size: `assurance run` of a synthetic landing zone into a fresh home, by the CLI's own code path,",
        "with two references on the same world in the same invocation. CPU seconds are the process's",
        "(all threads). Other work may have shared the 2 cores: see the load average per size.",
        "",
        "| size | code | orders | supplier-months scored | run wall (s) | run CPU (s) | peak RSS (GiB) | pandas storefront (s) | DuckDB read+write (s) | run / pandas | measured | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        size, code = r["size"], r["code"]
        run, pandas_ref, copy = r["run"], r["pandas_storefront"], r["duckdb_copy"]
        lines.append(
            f"| {size} | {code} | {r['n_orders']:,} | {run['supplier_months_scored']:,} | {run['wall_s']} | {run['cpu_s']} | "
            f"{run['peak_rss_gib']} | {pandas_ref['wall_s']} | {copy['wall_s']} | {run['wall_s'] / pandas_ref['wall_s']:.1f}x | "
            f"{r['measured']} | {r['load_avg']} |"
        )
    for key, r in results.items():
        lines += ["", f"## Stages at {r['size']}, {r['code']}", "", "| stage | wall (s) | CPU (s) | peak RSS (GiB) |", "|---|---|---|---|"]
        lines += [f"| {s['stage']} | {s['wall_s']} | {s['cpu_s']} | {s['peak_rss_gib']} |" for s in r["run"]["stages"]]
    lines += ["", f"![stages]({RESULTS_PLOT.name})", ""]
    write_keeping_notes(RESULTS_MD, "\n".join(lines))
    _plot(results)


def _plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(9 * len(results), 6), squeeze=False)
    for ax, r in zip(axes[0], results.values()):
        stages = [s for s in r["run"]["stages"] if s["wall_s"] >= 0.05 * r["run"]["wall_s"] / 10]
        names = [s["stage"].replace("published__", "published/") for s in stages][::-1]
        ax.barh(names, [s["wall_s"] for s in stages][::-1], color="#4c72b0", label="stage wall")
        for value, label, style in ((r["pandas_storefront"]["wall_s"], "pandas storefront script", "--"),
                                    (r["duckdb_copy"]["wall_s"], "DuckDB read+write of the landing zone", ":")):
            ax.axvline(value, color="#c44e52", linestyle=style, label=f"{label} ({value:.0f} s)")
        ax.set_title(f"{r['size']}, {r['code']}: {r['n_orders']:,} orders, run {r['run']['wall_s']:.0f} s")
        ax.set_xlabel("wall seconds")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS_PLOT, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,8m", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--code", type=Path, default=REPO,
                        help="checkout whose pipeline code is run (default: this one); the world and references are the same")
    parser.add_argument("--label", default="this branch", help="name of the measured code in the results")
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    code = args.code.resolve()
    if args.child:
        print(json.dumps(MEASURES[args.child](sizes[0], code)))
        return
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    for size in sizes:
        landing = ensure_landing_zone(size)
        print(f"{size}: landing zone {landing}, code {code} ({args.label})", flush=True)
        measured = {what: in_child(what, size, code) for what in ("duckdb_copy", "pandas_storefront", "run")}
        for what, figures in measured.items():
            print(f"  {what}: {figures['wall_s']} s wall, {figures['cpu_s']} CPU s, peak {figures['peak_rss_gib']} GiB", flush=True)
        results[f"{size} {args.label}"] = {
            "size": size,
            "code": args.label,
            "n_orders": json.loads((landing / "_generated.json").read_text())["n_orders"],
            "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_avg": round(os.getloadavg()[0], 1),
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
            **measured,
        }
        results = dict(sorted(results.items(), key=lambda item: (list(SIZES).index(item[1]["size"]), item[1]["measured"])))
        write_results(results)


if __name__ == "__main__":
    main()
