"""Benchmark: the checks, publishing, monitoring, backtest and training set, one stage at a time.

    uv run assurance demo --home /tmp/ck --suppliers 3000          # once: the home every stage reruns on
    uv run python bench/bench_checks.py --home /tmp/ck --label "this branch"
    uv run python bench/bench_checks.py --home /tmp/ck --code /path/to/other/checkout --label "main 6ba3937"
    uv run python bench/bench_checks.py --home /tmp/ck --stages parquet_matches_warehouse published_tables

Each code version gets a fresh copy of the home (`<home>-bench-<label>`; the landing zone is
not copied) and, in a child process that imports that version's code, re-materialises each stage
alone through the project's own job (`assurance_monthly`, subset to the stage, every month of the
home as one single-run backfill, as `assurance run` does). Per stage it reports:

- wall seconds and CPU seconds of the process (DuckDB's threads included);
- DuckDB statements executed, table/file/frame scans in their plans (and how many of those read
  a whole table, no filter pushed down), and the statement run most often: a loop over months
  shows as one statement repeated once per month (`warehouse/query_log.py` counts them).

Libraries (Dagster, Great Expectations, MLflow, LightGBM) are imported and GX's context created
before the first stage, so no stage is charged for a one-off import. Results are appended to
`bench/results/checks.md` (`--write`) and printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "results" / "checks.md"
# Stage name -> ("asset", asset key path) or ("check", asset key path, check name).
STAGES = {
    "landing_contract_check": ("check", ["landing_zone"], "validated_tables_meet_contract"),
    "training_set": ("asset", ["training_set"]),
    "model_monitoring": ("asset", ["model_monitoring"]),
    "policy_backtest": ("asset", ["policy_backtest"]),
    "published_tables": ("asset", ["published", "supplier_scores"], ["published", "supplier_features"],
                         ["published", "storefront_metrics"]),
    "supplier_scores_meet_contract": ("check", ["published", "supplier_scores"], "supplier_scores_meet_contract"),
    "supplier_features_meet_contract": ("check", ["published", "supplier_features"], "supplier_features_meet_contract"),
    "storefront_metrics_meet_contract": ("check", ["published", "storefront_metrics"], "storefront_metrics_meet_contract"),
    "parquet_matches_warehouse": ("check", ["published", "supplier_scores"], "parquet_matches_warehouse"),
}


def _query_log_module():
    """This checkout's `warehouse/query_log.py`, loaded by path: the code under test may predate it."""
    spec = importlib.util.spec_from_file_location("_bench_query_log", REPO / "warehouse" / "query_log.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_child(home: Path, landing: Path, stages: list[str]) -> list[dict]:
    """In the child process: re-materialise each stage alone on `home`, measured."""
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.jobs import MONTHLY_JOB_NAME
    from pipelines.runner import prepare_dagster_home
    from pipelines.settings import Settings

    query_log = _query_log_module()
    settings = Settings(home=home, landing=landing)
    prepare_dagster_home(settings)
    job = build_definitions(settings).resolve_job_def(MONTHLY_JOB_NAME)
    # One-off imports and GX's context, outside every stage's figures.
    import lightgbm  # noqa: F401
    import mlflow  # noqa: F401

    from data_contracts.expectations import _context
    _context()
    results = []
    with dg.DagsterInstance.get() as instance:
        months = sorted(instance.get_dynamic_partitions("month_end"))
        tags = {"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[-1]}
        for stage in stages:
            kind, *target = STAGES[stage]
            if kind == "asset":
                subset = job.get_subset(asset_selection={dg.AssetKey(path) for path in target}, asset_check_selection=set())
            else:
                subset = job.get_subset(asset_selection=set(),
                                        asset_check_selection={dg.AssetCheckKey(dg.AssetKey(target[0]), target[1])})
            with query_log.counting_connections() as log:
                wall, cpu = time.perf_counter(), time.process_time()
                result = subset.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            repeated, statement = log.most_repeated()
            results.append({
                "stage": stage, "success": result.success, "months": len(months),
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "queries": log.queries,
                "scans": log.scans(), "whole_table_scans": log.scans(unfiltered_only=True),
                "most_repeated": repeated, "most_repeated_statement": statement[:160],
                "scans_by_source": log.scans_by_source(),
            })
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def fresh_copy(home: Path, label: str) -> Path:
    target = home.parent / f"{home.name}-bench-{''.join(c if c.isalnum() else '-' for c in label)}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(home, target, ignore=lambda folder, names: ["landing", "logs"] if Path(folder) == home else [])
    (target / ".assurance-run.lock").unlink(missing_ok=True)
    return target


def table(results: list[dict]) -> str:
    lines = ["| stage | wall s | CPU s | DuckDB statements | scans (whole-table) | most repeated statement |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['stage']}{'' if r['success'] else ' (FAILED)'} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['queries']} | {r['scans']} ({r['whole_table_scans']}) | {r['most_repeated']}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="a home `assurance demo` (or `run`) completed")
    parser.add_argument("--landing", type=Path, help="its landing zone [default: <home>/landing]")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose code runs the stages")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--write", action="store_true", help=f"append the table to {RESULTS_MD.relative_to(REPO)}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home, landing = args.home.resolve(), (args.landing or args.home / "landing").resolve()
    if args.child:
        print(json.dumps(run_child(home, landing, args.stages)))
        return
    copy = fresh_copy(home, args.label)
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "ASSURANCE_HOME": str(copy)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--home", str(copy), "--landing", str(landing), "--stages", *args.stages],
        env=env, cwd=args.code, stdout=subprocess.PIPE, check=True, text=True,
    ).stdout
    results = json.loads(out.strip().splitlines()[-1])
    text = table(results)
    print(text)
    if args.write:
        with RESULTS_MD.open("a") as md:
            md.write(f"\n### {args.label}\n\n`uv run python {shlex.join(sys.argv)}`\n\n{text}\n")
        with RESULTS_MD.with_suffix(".json").open("a") as raw:
            raw.write(json.dumps({"label": args.label, "results": results}) + "\n")


if __name__ == "__main__":
    main()
