"""Benchmark: policy v2's loss-rate ceiling against v1, out of sample, on several worlds.

Replays the current policy with each candidate ``eligibility.max_loss_rate`` and v1 over the
months a home already scored (every month by its own model vintage: no retraining), and
tabulates what issue 12 compares: the loss ratio and the share of the top 12-month
deal-value quintile covered. A ceiling *passes* a world when its loss ratio is below v1's
while it covers more of the top quintile (more suppliers) than v1.

    uv run python bench/bench_policy_ceiling.py --home H7 --home H11 --home H23 \
        --ceilings 0.003,0.0035,0.004,0.0042,0.0044,0.0045,0.005

Each HOME: a home after `assurance run` (e.g. `assurance demo --seed S --home H`).
Writes bench/results/policy_ceiling.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from models.backtest import compare_policies, load_scored_history  # noqa: E402
from models.policy import Policy  # noqa: E402
from results_file import write_keeping_notes  # noqa: E402
from warehouse import open_warehouse  # noqa: E402
from warehouse.landing_metadata import read_data_horizon  # noqa: E402

V1 = ROOT / "models" / "policies" / "v1.yaml"
RESULTS = ROOT / "bench" / "results" / "policy_ceiling"


def world_rows(home: Path, ceilings: list[float]) -> dict:
    """v1 and one v2 per ceiling over the home's scored months: their totals."""
    current, v1_policy = Policy.default(), Policy.from_yaml(V1)
    candidates = {ceiling: current.replace(**{"eligibility.max_loss_rate": ceiling}) for ceiling in ceilings}
    unique = {p.version: p for p in [v1_policy, *candidates.values()]}
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        history = load_scored_history(con, read_data_horizon(con))
    comparison = compare_policies(history, list(unique.values()), baseline=None)
    totals = comparison.totals.set_index("policy_version")

    def row(version: str) -> dict:
        t = totals.loc[version]
        return {"loss_ratio": float(t["loss_ratio"]), "top_share": float(t["top_quintile_covered_share"]),
                "top_covered": int(t["top_quintile_covered"]), "coverage_usd": float(t["coverage_usd"]),
                "loss_usd": float(t["loss_usd"])}

    v1 = row(v1_policy.version)
    out = []
    for ceiling, policy in candidates.items():
        r = row(policy.version)
        r["ceiling"] = ceiling
        r["passes"] = r["loss_ratio"] < v1["loss_ratio"] and r["top_covered"] > v1["top_covered"]
        out.append(r)
    months = int(totals.iloc[0]["months"]), int(totals.iloc[0]["months_with_outcomes"])
    return {"home": str(home), "months": months, "v1": v1, "ceilings": out}


def markdown(worlds: list[dict], current_ceiling: float, command: str) -> str:
    lines = [
        "# Benchmark: policy v2's loss-rate ceiling against v1, out of sample",
        "",
        f"Command: `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "Each home's scored months replayed (every month by its own model vintage: no retraining) with v1",
        "(`models/policies/v1.yaml`) and with the current policy at each `eligibility.max_loss_rate`.",
        "Passes: loss ratio below v1's while covering more suppliers of the top 12-month deal-value quintile.",
        f"The current policy's ceiling: {current_ceiling:g}.",
        "",
    ]
    for world in worlds:
        v1 = world["v1"]
        lines += [
            f"## {world['home']} ({world['months'][0]} months scored, {world['months'][1]} with outcomes)",
            "",
            "| max_loss_rate | loss ratio | top fifth covered | top fifth suppliers covered | coverage ($M) | loss ($k) | passes |",
            "|---|---|---|---|---|---|---|",
            f"| v1 | {v1['loss_ratio']:.2%} | {v1['top_share']:.1%} | {v1['top_covered']:,} | "
            f"{v1['coverage_usd'] / 1e6:,.1f} | {v1['loss_usd'] / 1e3:,.0f} | |",
        ]
        for r in world["ceilings"]:
            mark = " (current)" if abs(r["ceiling"] - current_ceiling) < 1e-12 else ""
            lines.append(
                f"| {r['ceiling']:g}{mark} | {r['loss_ratio']:.2%} | {r['top_share']:.1%} | {r['top_covered']:,} | "
                f"{r['coverage_usd'] / 1e6:,.1f} | {r['loss_usd'] / 1e3:,.0f} | {'yes' if r['passes'] else 'no'} |")
        lines.append("")
    passing = [r["ceiling"] for r in worlds[0]["ceilings"]
               if all(next(x for x in w["ceilings"] if x["ceiling"] == r["ceiling"])["passes"] for w in worlds)]
    lines.append("Ceilings that pass on every world above: " + (", ".join(f"{c:g}" for c in passing) or "none") + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", action="append", required=True, type=Path, help="a home after `assurance run` (repeat)")
    parser.add_argument("--ceilings", default="0.003,0.0035,0.004,0.0042,0.0044,0.0045,0.005",
                        help="comma-separated max_loss_rate values")
    args = parser.parse_args()
    ceilings = sorted({float(c) for c in args.ceilings.split(",")} | {Policy.default().eligibility.max_loss_rate})
    worlds = []
    for home in args.home:
        print(f"replaying {len(ceilings)} ceilings and v1 on {home} ...", flush=True)
        worlds.append(world_rows(home, ceilings))
    command = "uv run python bench/bench_policy_ceiling.py " + " ".join(f"--home {h}" for h in args.home) \
        + f" --ceilings {args.ceilings}"
    RESULTS.with_suffix(".json").write_text(json.dumps(worlds, indent=1))
    text = markdown(worlds, Policy.default().eligibility.max_loss_rate, command)
    write_keeping_notes(RESULTS.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
