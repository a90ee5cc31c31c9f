"""Benchmark: the stages that read the realised outcomes, before and after they were computed once.

    uv run python bench/bench_labels.py --base /path/to/checkout/of/main --base-label "main ac1a4ca"

Runs the whole `assurance run` of the 1m world (bench_run.py's landing zone and its per-stage
sampler, each run in a fresh child process) by the `--base` checkout's code and by this
checkout's, one after the other in the same invocation, and writes the CPU and wall seconds of
`realised_outcomes` (absent before), `training_set`, `model_monitoring` and `policy_backtest`
side by side to bench/results/labels.md and labels.json. Other stages are reported only as
the run's total, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

from bench_run import BENCH_DIR, REPO, ensure_landing_zone, in_child

RESULTS_MD = BENCH_DIR / "results" / "labels.md"
RESULTS_JSON = BENCH_DIR / "results" / "labels.json"
STAGES = ("realised_outcomes", "training_set", "model_monitoring", "policy_backtest")


def _commit(code: Path) -> str:
    return subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the code before the change")
    parser.add_argument("--base-label", default="before")
    parser.add_argument("--label", default="after", help="name of this checkout's code in the results")
    parser.add_argument("--size", default="1m")
    args = parser.parse_args()
    landing = ensure_landing_zone(args.size)
    runs = {}
    for label, code in ((args.base_label, args.base.resolve()), (args.label, REPO)):
        print(f"{args.size}: {label} ({code}, {_commit(code)}) on {landing}", flush=True)
        run = in_child("run", args.size, code, script=str(BENCH_DIR / "bench_run.py"))
        stages = {s["stage"]: s for s in run["stages"]}
        runs[label] = {
            "commit": _commit(code),
            "run_wall_s": run["wall_s"],
            "run_cpu_s": run["cpu_s"],
            "supplier_months_scored": run["supplier_months_scored"],
            "stages": {name: stages.get(name) for name in STAGES},
            "load_avg_after": round(os.getloadavg()[0], 1),
        }
        print(json.dumps(runs[label]), flush=True)
    result = {"size": args.size, "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "runs": runs}
    RESULTS_JSON.write_text(json.dumps(result, indent=2) + "\n")
    labels = list(runs)
    lines = [
        "# Benchmark: the realised outcomes computed once (issue 18)",
        "",
        f"Command: `uv run python bench/bench_labels.py --base CHECKOUT --base-label NAME` (from the repository root), "
        f"{result['measured']}, world {args.size} (bench_run.py's landing zone). Both runs in one invocation, one after "
        "the other, each a whole `assurance run` into a fresh home in its own child process; CPU seconds are the "
        "process's (all threads) sampled over the stage. The machine's 2 cores were shared with other work: compare "
        "the two columns with each other only.",
        "",
        "| stage | " + " | ".join(f"{label} CPU (s) | {label} wall (s)" for label in labels) + " |",
        "|---|" + "---|---|" * len(labels),
    ]
    for name in STAGES:
        cells = []
        for label in labels:
            stage = runs[label]["stages"][name]
            cells += [str(stage["cpu_s"]), str(stage["wall_s"])] if stage else ["-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = []
    for label in labels:
        measured = [runs[label]["stages"][n] for n in STAGES if runs[label]["stages"][n]]
        totals += [f"{sum(s['cpu_s'] for s in measured):.2f}", f"{sum(s['wall_s'] for s in measured):.2f}"]
    lines.append("| **these stages** | " + " | ".join(totals) + " |")
    lines.append("| whole run | " + " | ".join(f"{runs[l]['run_cpu_s']} | {runs[l]['run_wall_s']}" for l in labels) + " |")
    lines += ["", "Code: " + ", ".join(f"{label} = {runs[label]['commit']}" for label in labels)
              + "; supplier-months scored: " + ", ".join(str(runs[label]["supplier_months_scored"]) for label in labels)
              + "; load average after each run: " + ", ".join(str(runs[label]["load_avg_after"]) for label in labels) + ".", ""]
    write_keeping_notes(RESULTS_MD, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
