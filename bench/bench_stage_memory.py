"""Benchmark: the peak memory of each non-training stage, one asset at a time, before and after.

    uv run python bench/bench_stage_memory.py --home HOME --landing LANDING --label 1m \
        --before /path/to/checkout/of/the/old/code [--assets model_monitoring,policy_backtest]

HOME is a finished `assurance run` home (it is never written: each code gets its own copy under
--work). For each asset, in the order of the run, the old code's checkout (--before) and this
checkout each re-materialise the asset over every month of the copy, one after the other, in a
fresh child process: its peak RSS (ru_maxrss, which includes the ~0.4 GiB of imports) and CPU
seconds are the asset's own, not what an earlier stage of a whole run left behind. The asset's
checks are not run. Afterwards every published and monitoring table of the two copies is
compared row by row (`bench/compare_homes.py`): the change must not alter a published value.

Results: bench/results/stage_memory.md (and .json), one section per --label, kept across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "results" / "stage_memory.md"
RESULTS_JSON = BENCH_DIR / "results" / "stage_memory.json"
# The stages this bench looks at, in the run's order (the three model-training stages are elsewhere).
STAGES = ("landing_zone", "storefront_metrics", "supplier_features", "realised_outcomes", "training_set",
          "supplier_scores", "model_monitoring", "policy_backtest", "monitoring_report", "published_tables")


def materialise_in_this_process(home: Path, landing: Path, asset: str) -> dict:
    """Materialise `asset` (not its checks) over every registered month of `home`, sampling RSS."""
    import dagster as dg
    import psutil

    from pipelines.definitions import build_definitions
    from pipelines.jobs import MONTHLY_JOB_NAME
    from pipelines.runner import prepare_dagster_home
    from pipelines.settings import Settings

    settings = Settings(home=home, landing=landing)
    prepare_dagster_home(settings)
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(MONTHLY_JOB_NAME)
    # `published_tables` is one step writing three assets (published/<table>); any other name is one asset.
    keys = {dg.AssetKey(["published", t]) for t in ("supplier_scores", "supplier_features", "storefront_metrics")} \
        if asset == "published_tables" else {dg.AssetKey(asset)}
    # The checks the asset's own step yields (ingest's) go with it; checks in steps of their own do not.
    own_checks = {check for key in keys for check in definitions.resolve_assets_def(key).check_keys}
    job = job.get_subset(asset_selection=keys, asset_check_selection=own_checks)
    process = psutil.Process()
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            samples.append(process.memory_info().rss)

    with dg.DagsterInstance.get() as instance:
        months = sorted(instance.get_dynamic_partitions("month_end"))
        imported_rss = process.memory_info().rss
        thread = threading.Thread(target=sample, daemon=True)
        cpu0, started = process.cpu_times(), time.time()
        thread.start()
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[-1]},
        )
        done.set()
        thread.join()
        cpu1 = process.cpu_times()
    if not result.success:
        raise SystemExit(f"{asset} failed on {home}")
    return {
        "asset": asset, "wall_s": round(time.time() - started, 2),
        "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2),
        "imports_rss_gib": round(imported_rss / 2**30, 2),
        "peak_rss_gib": round(max(samples + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]) / 2**30, 2),
    }


def in_child(code: Path, home: Path, landing: Path, asset: str) -> dict:
    """This script's --child mode under `code`'s modules, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", asset, "--home", str(home),
                           "--landing", str(landing)], capture_output=True, text=True, cwd=code, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{asset} under {code} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(results: dict) -> str:
    lines = [
        "# Benchmark: peak memory of the non-training stages, one asset at a time",
        "",
        "Command: `uv run python bench/bench_stage_memory.py --home HOME --landing LANDING --label NAME --before CHECKOUT`",
        "(from the repository root; HOME is a finished `assurance run` home, copied once per code). Each asset is",
        "re-materialised over every month of the copy in a fresh process, the old code and this one one after the",
        "other: peak RSS is the process's own (imports included, about 0.4 GiB), CPU seconds count every thread.",
        "Other work shared the 2 cores: compare the two columns of one table, not tables of different times.",
        "",
    ]
    for label, run in results.items():
        lines += [f"## {label}: {run['world']}", "",
                  f"Before: {run['before_code']}; after: {run['after_code']}; measured {run['measured']}, "
                  f"load average {run['load_avg']}.", "",
                  f"Published and monitoring tables of the two copies afterwards: {run['comparison']}", "",
                  "| stage | peak RSS before (GiB) | peak RSS after (GiB) | CPU before (s) | CPU after (s) | wall before (s) | wall after (s) |",
                  "|---|---|---|---|---|---|---|"]
        for stage in run["stages"]:
            b, a = stage["before"], stage["after"]
            lines.append(f"| {stage['asset']} | {b['peak_rss_gib']} | {a['peak_rss_gib']} | {b['cpu_s']} | {a['cpu_s']} | "
                         f"{b['wall_s']} | {a['wall_s']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="checkout of the code to compare against")
    parser.add_argument("--before-label", help="how to name the --before code (default: its git commit)")
    parser.add_argument("--label", default="1m")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stage-memory/work"))
    parser.add_argument("--assets", default=",".join(STAGES))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(materialise_in_this_process(args.home.resolve(), args.landing.resolve(), args.child)))
        return
    from compare_homes import compare_homes

    codes = {"before": args.before.resolve(), "after": REPO}
    copies = {}
    for which in codes:
        copies[which] = args.work / f"{args.label}-{which}"
        if copies[which].exists():
            shutil.rmtree(copies[which])
        shutil.copytree(args.home, copies[which], symlinks=True)
    stages = []
    for asset in args.assets.split(","):
        stage = {"asset": asset}
        for which, code in codes.items():
            stage[which] = in_child(code, copies[which], args.landing, asset)
            print(f"{asset} {which}: {stage[which]}", flush=True)
        stages.append(stage)
    comparison = compare_homes(copies["before"], copies["after"])
    print(comparison.summary(), flush=True)
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results[args.label] = {
        "world": str(args.landing), "before_code": args.before_label or _describe(codes["before"]), "after_code": _describe(REPO),
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg": round(os.getloadavg()[0], 1), "comparison": comparison.summary(), "stages": stages,
    }
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    write_keeping_notes(RESULTS_MD, render(results))


def _describe(code: Path) -> str:
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    # The results this bench writes are not code.
    dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!bench/results"], capture_output=True, text=True).stdout.strip()
    return f"{commit}{' + uncommitted changes' if dirty else ''}"


if __name__ == "__main__":
    main()
