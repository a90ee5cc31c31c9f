"""Benchmark: scoring with reason codes (models.supplier_decisions.RiskModels.assess), by route.

    uv run python bench/bench_scoring.py --home /path/to/home     # a home after `assurance run`

Every scored month of the home's `features.supplier_features` is assessed by the model vintages
that served it (as the scoring step does), once per route, one route after the other in this
process:

- `lightgbm`: LightGBM's own `predict` and `pred_contrib` (TreeSHAP per row and tree): the path
  before models/tree_shap.py, and the exact reference for the codes;
- `tables, 1 thread` / `tables, 2 threads`: models/tree_shap.py (one table per shallow tree);
- `... one call`: all months served by the same vintages in one call instead of one per month.

Reported per route: wall and CPU seconds, supplier-months a second (wall, and per CPU second:
the machine may be shared), and agreement of the codes with the `lightgbm` route on the first
code and on the set of three. Results: bench/results/scoring.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import duckdb  # noqa: E402
import numba  # noqa: E402
import pandas as pd  # noqa: E402

from assets.scoring import VintageModels, load_vintages  # noqa: E402
from models import tree_shap  # noqa: E402
from pipelines.settings import Settings  # noqa: E402

RESULTS_MD = BENCH_DIR / "results" / "scoring.md"


class _Registry:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri


def load(home: Path) -> tuple[list[tuple[object, pd.DataFrame]], int]:
    """(models, features) per group of months served by the same vintages, and the row count."""
    os.environ["ASSURANCE_HOME"] = str(home)
    settings = Settings.from_env()
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        models = VintageModels(_Registry(settings.mlflow_tracking_uri), load_vintages(con))
        features = con.execute("SELECT * FROM features.supplier_features ORDER BY as_of_date, supplier_id").df()
    groups: dict[tuple, list] = {}
    for as_of_date, month in features.groupby("as_of_date", sort=True):
        month_models = models.for_month(pd.Timestamp(as_of_date).date())
        if month_models is None:
            continue
        key = (month_models.breach_version, month_models.loss_rate_version, month_models.default_version)
        groups.setdefault(key, [month_models, []])[1].append(month.reset_index(drop=True))
    return [(m, months) for m, months in groups.values()], sum(len(f) for _, months in groups.values() for f in months)


def boosters(models) -> list:
    return [models.breach.booster, models.default.booster, *(models.loss_rate.booster(c) for c in ("pre_shipment", "post_delivery", "other"))]


def run_route(groups, tables: bool, threads: int, one_call: bool) -> tuple[float, float, list[list[str]]]:
    numba.set_num_threads(threads)
    for models, _ in groups:
        for booster in boosters(models):
            # the route: the booster's tables, or None (LightGBM's own predict and pred_contrib)
            tree_shap._TABLES[booster] = tree_shap.ShallowTrees.from_booster(booster) if tables else None
    codes: list[list[str]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for models, months in groups:
        for frame in [pd.concat(months, ignore_index=True)] if one_call else months:
            codes += models.assess(frame)[1]
    return time.perf_counter() - wall, time.process_time() - cpu, codes


def agreement(codes: list[list[str]], exact: list[list[str]]) -> tuple[float, float]:
    first = sum((a[:1] == b[:1]) for a, b in zip(codes, exact, strict=True)) / len(exact)
    same_set = sum(set(a) == set(b) for a, b in zip(codes, exact, strict=True)) / len(exact)
    return first, same_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home folder after `assurance run`")
    args = parser.parse_args()
    groups, n_rows = load(args.home.resolve())
    # compile the numba kernels and load every booster before timing
    run_route([(m, [months[0][:50]]) for m, months in groups], True, 1, False)
    routes = [
        ("lightgbm (before: predict + pred_contrib), 2 threads, per month", False, 2, False),
        ("tables, 1 thread, per month", True, 1, False),
        ("tables, 2 threads, per month", True, 2, False),
        ("tables, 2 threads, one call per vintage set", True, 2, True),
    ]
    load_before = os.getloadavg()[0]
    rows, exact = [], None
    for name, tables, threads, one_call in routes:
        wall, cpu, codes = run_route(groups, tables, threads, one_call)
        exact = exact if exact is not None else codes
        first, same_set = agreement(codes, exact)
        rows.append((name, wall, cpu, n_rows / wall, n_rows / cpu, first, same_set))
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} CPU s, {n_rows / wall:,.0f} rows/s, agreement {first:.4%} / {same_set:.4%}",
              flush=True)
    lines = [
        "# Benchmark: scoring with reason codes",
        "",
        f"Command: `uv run python bench/bench_scoring.py --home HOME` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC;",
        f"HOME: a home after `assurance run` ({n_rows:,} scored supplier-months, {len(groups)} vintage sets).",
        f"Machine: {os.cpu_count()} cores, shared with other jobs: 1-minute load average {load_before:.1f} before,",
        f"{os.getloadavg()[0]:.1f} after. Wall times on a shared machine are upper bounds; rows per CPU second",
        "is the steadier figure. Routes ran one after the other in one process on the same rows.",
        "Agreement: share of supplier-months whose first reason code / set of reason codes equals the",
        "`lightgbm` route's (LightGBM's own TreeSHAP).",
        "",
        "| route | wall (s) | CPU (s) | supplier-months / s (wall) | per CPU second | same first code | same set of codes |",
        "|---|---|---|---|---|---|---|",
        *[f"| {name} | {wall:.2f} | {cpu:.2f} | {per_s:,.0f} | {per_cpu:,.0f} | {first:.2%} | {same:.2%} |"
          for name, wall, cpu, per_s, per_cpu, first, same in rows],
        "",
    ]
    RESULTS_MD.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
