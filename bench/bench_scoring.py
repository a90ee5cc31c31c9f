"""Benchmark: scoring with reason codes (models.supplier_decisions.RiskModels.assess), by route.

    uv run python bench/bench_scoring.py --home /path/to/home     # a home after `assurance run`

Every scored month of the home's `features.supplier_features` is assessed by the model vintages
that served it (as the scoring step does), once per route, one route after the other in this
process:

- `lightgbm`: LightGBM's own `predict` and `pred_contrib` (TreeSHAP per row and tree): the path
  before models/tree_shap.py, and the exact reference for the codes;
- `per-row splits, two passes`: the previous session's tables (bench/previous_tree_kernel.py:
  each split decided per row with branches on missing values), a prediction pass and then a
  contribution pass per booster;
- `split columns`: models/tree_shap.py as it is (every split a branch-free comparison over a
  column prepared once per call), with two passes or with one pass (the prediction and the
  contributions together, as `assess` now runs);
- `... one call`: all months served by the same vintages in one call instead of one per month.

Reported per route: wall and CPU seconds, supplier-months a second (wall, and per CPU second:
the machine may be shared), agreement of the codes with the `lightgbm` route on the first code
and on the set of three, and whether the route reproduces what the home published
(`models.scores`): the same probabilities and loss rates bit for bit, and the same
`reason_codes` lists (the risk codes, then the failed eligibility rules). Results:
bench/results/scoring.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from results_file import write_keeping_notes

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import contextlib  # noqa: E402

import duckdb  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from assets.scoring import SCORES_TABLE, VintageModels, load_vintages  # noqa: E402
from models import loss_rate, scoring, tree_shap  # noqa: E402
from models.supplier_decisions import DEFAULT_PROBABILITY_COLUMN  # noqa: E402
from models.loss_rate import COVERAGE_RATE_COLUMNS, LOSS_RATE_COLUMN  # noqa: E402
from previous_tree_kernel import use_previous_kernel  # noqa: E402
from pipelines.settings import Settings  # noqa: E402

# The published risk columns `assess` computes, compared bit for bit with the home's.
RISK_COLUMNS = ["breach_probability_6m", DEFAULT_PROBABILITY_COLUMN, LOSS_RATE_COLUMN, *COVERAGE_RATE_COLUMNS.values()]

RESULTS_MD = BENCH_DIR / "results" / "scoring.md"


class _Registry:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri


def load(home: Path) -> tuple[list[tuple[object, list[pd.DataFrame]]], pd.DataFrame]:
    """(models, features per month) per group of months served by the same vintages, and the
    home's published scores of those rows (in the same order)."""
    os.environ["ASSURANCE_HOME"] = str(home)
    settings = Settings.from_env()
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        models = VintageModels(_Registry(settings.mlflow_tracking_uri), load_vintages(con))
        features = con.execute("SELECT * FROM features.supplier_features ORDER BY as_of_date, supplier_id").df()
        published = con.execute(
            f"SELECT as_of_date, supplier_id, reason_codes, ineligible_reasons, {', '.join(RISK_COLUMNS)} FROM {SCORES_TABLE}"
        ).df()
    groups: dict[tuple, list] = {}
    for as_of_date, month in features.groupby("as_of_date", sort=True):
        month_models = models.for_month(pd.Timestamp(as_of_date).date())
        if month_models is None:
            continue
        key = (month_models.breach_version, month_models.loss_rate_version, month_models.default_version)
        groups.setdefault(key, [month_models, []])[1].append(month.reset_index(drop=True))
    rows = pd.concat([f[["as_of_date", "supplier_id"]] for _, months in groups.values() for f in months], ignore_index=True)
    for frame in (rows, published):
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    return [(m, months) for m, months in groups.values()], rows.merge(published, how="left", validate="1:1")


def boosters(models) -> list:
    return [models.breach.booster, models.default.booster, *(models.loss_rate.booster(c) for c in ("pre_shipment", "post_delivery", "other"))]


def _two_passes(booster, design, num_threads, contribution_threads, raw_score=False):
    """A prediction pass, then a contribution pass (what `assess` did before the one pass)."""
    return (tree_shap.booster_predict(booster, design, num_threads, raw_score=raw_score),
            tree_shap.booster_contributions(booster, design, contribution_threads))


@contextlib.contextmanager
def two_passes():
    current = scoring.booster_predict_and_contributions, loss_rate.booster_predict_and_contributions
    scoring.booster_predict_and_contributions = loss_rate.booster_predict_and_contributions = _two_passes
    try:
        yield
    finally:
        scoring.booster_predict_and_contributions, loss_rate.booster_predict_and_contributions = current


def run_route(groups, tables: bool, previous_kernel: bool, one_pass: bool, threads: int,
              one_call: bool) -> tuple[float, float, list[list[str]], pd.DataFrame]:
    numba.set_num_threads(threads)
    for models, _ in groups:
        for booster in boosters(models):
            # the route: the booster's tables, or None (LightGBM's own predict and pred_contrib)
            tree_shap._TABLES[booster] = tree_shap.ShallowTrees.from_booster(booster) if tables else None
    codes: list[list[str]] = []
    scored: list[pd.DataFrame] = []
    with contextlib.ExitStack() as route:
        if previous_kernel:
            route.enter_context(use_previous_kernel())
        if not one_pass:
            route.enter_context(two_passes())
        wall, cpu = time.perf_counter(), time.process_time()
        for models, months in groups:
            for frame in [pd.concat(months, ignore_index=True)] if one_call else months:
                risk, risk_codes = models.assess(frame)
                codes += risk_codes
                scored.append(risk)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, codes, pd.concat(scored, ignore_index=True)


def as_published(codes: list[list[str]], scored: pd.DataFrame, published: pd.DataFrame) -> tuple[float, bool]:
    """Share of rows whose `reason_codes` (risk codes, then failed rules) equal the home's, and
    whether every published risk column is the same bit for bit."""
    same_codes = sum(
        list(dict.fromkeys([*risk, *ineligible])) == list(stored)
        for risk, ineligible, stored in zip(codes, published["ineligible_reasons"], published["reason_codes"], strict=True)
    ) / len(codes)
    same_values = all(np.array_equal(scored[c].to_numpy(), published[c].to_numpy()) for c in RISK_COLUMNS)
    return same_codes, same_values


def agreement(codes: list[list[str]], exact: list[list[str]]) -> tuple[float, float]:
    first = sum((a[:1] == b[:1]) for a, b in zip(codes, exact, strict=True)) / len(exact)
    same_set = sum(set(a) == set(b) for a, b in zip(codes, exact, strict=True)) / len(exact)
    return first, same_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home folder after `assurance run`")
    args = parser.parse_args()
    groups, published = load(args.home.resolve())
    n_rows = len(published)
    # compile the numba kernels and load every booster before timing
    for previous_kernel, threads in ((True, 1), (True, 2), (False, 1), (False, 2)):
        run_route([(m, [pd.concat(months)[:1100]]) for m, months in groups], True, previous_kernel, True, threads, False)
    routes = [  # name, tables, previous kernel, one pass, threads, one call
        ("lightgbm (predict + pred_contrib), 2 threads, per month", False, False, False, 2, False),
        ("per-row splits (last session), two passes, 1 thread, per month", True, True, False, 1, False),
        ("per-row splits (last session), two passes, 2 threads, one call per vintage set", True, True, False, 2, True),
        ("split columns, two passes, 1 thread, per month", True, False, False, 1, False),
        ("split columns, one pass, 1 thread, per month", True, False, True, 1, False),
        ("split columns, one pass, 2 threads, per month", True, False, True, 2, False),
        ("split columns, one pass, 2 threads, one call per vintage set", True, False, True, 2, True),
    ]
    load_before = os.getloadavg()[0]
    rows, exact = [], None
    for name, tables, previous_kernel, one_pass, threads, one_call in routes:
        wall, cpu, codes, scored = run_route(groups, tables, previous_kernel, one_pass, threads, one_call)
        exact = exact if exact is not None else codes
        first, same_set = agreement(codes, exact)
        same_codes, same_values = as_published(codes, scored, published)
        rows.append((name, wall, cpu, n_rows / wall, n_rows / cpu, first, same_set, same_codes, same_values))
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} CPU s, {n_rows / cpu:,.0f} rows per CPU s, agreement {first:.4%} / "
              f"{same_set:.4%}, published codes {same_codes:.4%}, values {'same' if same_values else 'DIFFER'}", flush=True)
    lines = [
        "# Benchmark: scoring with reason codes",
        "",
        f"Command: `uv run python bench/bench_scoring.py --home HOME` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC;",
        f"HOME: a home after `assurance run` ({n_rows:,} scored supplier-months, {len(groups)} vintage sets).",
        f"Machine: {os.cpu_count()} cores, shared with other jobs: 1-minute load average {load_before:.1f} before,",
        f"{os.getloadavg()[0]:.1f} after. Wall times on a shared machine are upper bounds; rows per CPU second",
        "is the steadier figure. Routes ran one after the other in one process on the same rows.",
        "Agreement: share of supplier-months whose first reason code / set of reason codes equals the",
        "`lightgbm` route's (LightGBM's own TreeSHAP). Published: share of supplier-months whose",
        "`reason_codes` list equals the one the home published (`models.scores`), and whether the five",
        "published probabilities and loss rates are the home's bit for bit.",
        "",
        "| route | wall (s) | CPU (s) | supplier-months / s (wall) | per CPU second | same first code | same set of codes "
        "| same published reason_codes | published values bit for bit |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {name} | {wall:.2f} | {cpu:.2f} | {per_s:,.0f} | {per_cpu:,.0f} | {first:.2%} | {same:.2%} "
          f"| {same_codes:.2%} | {'yes' if same_values else 'no'} |"
          for name, wall, cpu, per_s, per_cpu, first, same, same_codes, same_values in rows],
        "",
    ]
    write_keeping_notes(RESULTS_MD, "\n".join(lines))


if __name__ == "__main__":
    main()
