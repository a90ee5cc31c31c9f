"""Benchmark of the three model-training stages: where each vintage's seconds go.

    uv run python bench/bench_training.py --landing LZ [--code CHECKOUT --label NAME] [--write]

Builds the training frame of a landing zone once (``models.evaluate_synthetic.
training_frame_from_landing``, cached as Parquet beside the landing zone), then, in a child
process run by the checkout's own environment (``--code``: another checkout, e.g. the
commit before a change), trains every vintage of the breach, default and loss-rate models
into a fresh MLflow home with ``models.vintages.build_vintages``, exactly as the pipeline's
model assets do. Wall and CPU seconds (``time.process_time``: this process, all threads)
are split per model kind and per vintage into

    a design   row selection and fingerprints, design matrices, lgb.Dataset binning
    b boost    lgb.train (its own Dataset construction counted under a)
    c calib    the logistic blend's fit and the calibrator (with its CV choice)
    d eval     predictions on the windows, metrics, figures, the model card
    e mlflow   logging the run and the model, registering it, tags, the alias
    f gate     loading the serving vintage when it is not in memory, scoring both

by wrapping those functions with timers that count *exclusive* time (a nested timed call
is charged to its own category, not its caller's); what no timer covers inside a vintage
is "other". The wrapping finds functions by name and skips a name a checkout lacks, so
the same script measures the code before and after a change.

CPU seconds are the comparable figure on a shared machine: wall seconds include waiting
for the other processes. ``--write`` appends the tables to ``bench/results/training.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "training.md"
CATEGORIES = ("design", "boost", "calib", "eval", "mlflow", "gate", "other")
KINDS = ("breach", "default", "loss_rate")


class StageClock:
    """Exclusive wall and CPU seconds per (vintage, category): a stack of open timers."""

    def __init__(self) -> None:
        self.vintage = "setup"
        self.wall: dict[tuple[str, str], float] = defaultdict(float)
        self.cpu: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.function_cpu: dict[str, float] = defaultdict(float)  # exclusive, over all vintages
        self._stack: list[str] = []
        self._names: list[str] = []
        self._mark = (time.perf_counter(), time.process_time())

    def _charge(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        category = self._stack[-1] if self._stack else "other"
        self.wall[(self.vintage, category)] += wall - self._mark[0]
        self.cpu[(self.vintage, category)] += cpu - self._mark[1]
        self.function_cpu[self._names[-1] if self._names else "(untimed)"] += cpu - self._mark[1]
        self._mark = (wall, cpu)

    def enter(self, category: str, name: str = "") -> None:
        self._charge()
        self._names.append(name or category)
        # what the gate does (scoring both models, fingerprinting its rows) is the gate's
        self._stack.append("gate" if "gate" in self._stack else category)

    def leave(self) -> None:
        self._charge()
        self._stack.pop()
        self._names.pop()

    def start_vintage(self, label: str) -> None:
        self._charge()
        self.vintage = label


def _timed(clock: StageClock, category: str, name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        clock.calls[name] += 1
        clock.enter(category, name)
        try:
            return function(*args, **kwargs)
        finally:
            clock.leave()

    return wrapper


def _wrap(clock: StageClock, owner, attribute: str, category: str, name: str | None = None) -> None:
    """Replace ``owner.attribute`` by a timed wrapper (skipped when the checkout has no such name)."""
    function = getattr(owner, attribute, None)
    if function is None:
        return
    if isinstance(owner, type) and isinstance(owner.__dict__.get(attribute), classmethod):
        raw = owner.__dict__[attribute].__func__
        setattr(owner, attribute, classmethod(_timed(clock, category, name or attribute, raw)))
        return
    setattr(owner, attribute, _timed(clock, category, name or f"{getattr(owner, '__name__', owner)}.{attribute}", function))


def instrument(clock: StageClock) -> None:
    """Put the timers on the functions the vintages call (module attributes, by name)."""
    import lightgbm as lgb
    import mlflow

    import models.loss_rate as loss_rate
    import models.registry as registry
    import models.scoring as scoring
    import models.training as training
    import models.vintages as vintages

    original_rows_known_at = vintages.rows_known_at

    def rows_known_at(training_frame, as_of):
        clock.start_vintage(as_of.isoformat())
        clock.enter("design", "models.vintages.rows_known_at")
        try:
            return original_rows_known_at(training_frame, as_of)
        finally:
            clock.leave()

    vintages.rows_known_at = rows_known_at
    # a: rows, fingerprints, design matrices, binning
    for module in (vintages, training, loss_rate, registry):
        _wrap(clock, module, "training_data_fingerprint", "design")
        _wrap(clock, module, "complete_label_rows", "design")
        _wrap(clock, module, "exposure_rows", "design")
    for module in (training, loss_rate):
        _wrap(clock, module, "build_design_matrix", "design")
        _wrap(clock, module, "category_levels", "design")
    _wrap(clock, lgb.Dataset, "construct", "design", "lgb.Dataset.construct")
    # b: boosting
    _wrap(clock, lgb, "train", "boost", "lgb.train")
    # c: calibration and the logistic blend
    _wrap(clock, training, "fit_calibrator", "calib")
    if hasattr(training, "LinearScore"):
        _wrap(clock, training.LinearScore, "fit", "calib", "LinearScore.fit")
    # d: predictions on the windows, metrics, figures, model card
    _wrap(clock, scoring.BreachRiskModel, "raw_proba", "eval", "BreachRiskModel.raw_proba")
    _wrap(clock, loss_rate.LossRateModel, "predict_rates", "eval", "LossRateModel.predict_rates")
    _wrap(clock, loss_rate.LossRateModel, "component_rates", "eval", "LossRateModel.component_rates")
    for name in ("classification_metrics",):
        _wrap(clock, training, name, "eval")
    for name in ("loss_rate_metrics", "loss_rate_calibration_table"):
        _wrap(clock, loss_rate, name, "eval")
    for name in ("roc_figure", "reliability_figure", "feature_importance_figure", "loss_rate_calibration_figure",
                 "render_model_card", "render_loss_rate_card"):
        _wrap(clock, registry, name, "eval")
    _wrap(clock, mlflow, "log_figure", "eval", "mlflow.log_figure")
    # e: MLflow (the nested figures and design matrices above keep their own categories)
    for name in ("log_and_register", "set_version_tags", "point_alias", "registered_version_tags"):
        _wrap(clock, vintages, name, "mlflow")
    for name in ("_log_model_files", "training_dataset", "model_input_example", "model_signature"):
        _wrap(clock, registry, name, "mlflow")
    # f: the gate
    _wrap(clock, vintages, "load_model_version", "gate")
    _wrap(clock, vintages, "gate_challenger", "gate")


def run_worker(frame_path: Path, kind: str, out: Path) -> None:
    """Train every vintage of ``kind`` from the frame into a fresh MLflow home; write the clock as JSON."""
    import pandas as pd

    from models.labels import label_window_end
    from models.registry import tracking_uri_for_home
    from models.vintages import VintageConfig, build_vintages, risk_model_kinds, vintage_as_of_dates

    training = pd.read_parquet(frame_path)
    training["as_of_date"] = pd.to_datetime(training["as_of_date"]).dt.date
    config = VintageConfig.from_yaml()
    months = sorted(training["as_of_date"].unique())
    # the frame holds complete-label months only: the newest one's outcome window ends at the horizon
    dates = vintage_as_of_dates(months[0], label_window_end(months[-1]), config)
    model_kind = risk_model_kinds("supplier_breach_risk", "supplier_loss_rate", "supplier_default_risk")[kind]
    with tempfile.TemporaryDirectory(prefix="bench-training-") as home:
        uri = tracking_uri_for_home(home)
        clock = StageClock()
        instrument(clock)
        # each trained vintage's figures as it is logged (a build keeps only the newest one's result)
        import models.vintages as vintages

        results: dict = {}
        original_log_and_register = vintages.log_and_register

        def log_and_register(result, *args, **kwargs):
            results[clock.vintage] = SimpleNamespace(row_counts=dict(result.row_counts), metrics=dict(result.metrics),
                                                     best_iteration=result.best_iteration)
            return original_log_and_register(result, *args, **kwargs)

        vintages.log_and_register = log_and_register
        wall0, cpu0 = time.perf_counter(), time.process_time()
        build = build_vintages(training, model_kind, dates, uri, "bench_training", config)
        clock.start_vintage("end")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out.write_text(json.dumps({
        "rows": len(training), "months": len(months), "vintages": [d.isoformat() for d in dates],
        "wall_s": wall, "cpu_s": cpu,
        "statuses": {v.as_of_date.isoformat(): v.status for v in build.vintages},
        "train_rows": {d: int(sum(r.row_counts.get(w, 0) for w in ("train", "calibration", "evaluation")))
                       for d, r in results.items()},
        "best_iteration": {d: r.best_iteration for d, r in results.items()},
        "evaluation_metrics": {d: {k: float(v) for k, v in r.metrics.items() if k.startswith("evaluation_")}
                               for d, r in results.items()},
        "wall": [[v, c, s] for (v, c), s in clock.wall.items()],
        "cpu": [[v, c, s] for (v, c), s in clock.cpu.items()],
        "calls": dict(clock.calls),
        "function_cpu": dict(clock.function_cpu),
    }, indent=1))


def training_frame(landing: Path) -> Path:
    """The landing zone's training frame, built once and cached beside it."""
    cached = landing.parent / f"{landing.name}.training_frame.parquet"
    if not cached.exists():
        from models.evaluate_synthetic import training_frame_from_landing

        frame = training_frame_from_landing(landing)
        frame.to_parquet(cached, index=False)
    return cached


def _table(report: dict, label: str, measure: str) -> list[str]:
    lines = [f"| {label}: {measure} s | " + " | ".join(CATEGORIES) + " | total |",
             "|---|" + "---|" * (len(CATEGORIES) + 1)]
    for kind, data in report["kinds"].items():
        cells = defaultdict(float)
        for vintage, category, seconds in data[measure]:
            cells[(vintage, category)] += seconds
        vintages = [v for v in dict.fromkeys(v for v, _ in cells) if v not in ("end",)]
        for vintage in vintages:
            row = [cells[(vintage, c)] for c in CATEGORIES]
            name = f"{kind} {vintage}" + (f" ({data['train_rows'].get(vintage, 0):,} rows, "
                                          f"{data['best_iteration'].get(vintage)} trees)" if vintage in data["train_rows"] else "")
            lines.append(f"| {name} | " + " | ".join(f"{s:.1f}" for s in row) + f" | {sum(row):.1f} |")
        total = [sum(s for (_, c), s in cells.items() if c == category) for category in CATEGORIES]
        lines.append(f"| **{kind} all** | " + " | ".join(f"**{s:.1f}**" for s in total) + f" | **{sum(total):.1f}** |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, help="landing zone (its training frame is cached beside it)")
    parser.add_argument("--frame", type=Path, help="a training frame Parquet instead of --landing")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose code trains (default: this one)")
    parser.add_argument("--label", default=None, help="name of the code in the tables (default: its commit)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--json", type=Path, help="also keep the raw figures here")
    parser.add_argument("--write", action="store_true", help=f"append the tables to {RESULTS.relative_to(REPO)}")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.frame, args.kinds, args.worker)
        return
    if not (args.landing or args.frame):
        parser.error("give --landing LZ (a landing zone from `assurance generate`) or --frame PARQUET")
    # absolute: the workers run in the measured checkout, not in this directory
    frame = (args.frame or training_frame(args.landing)).resolve()
    code = args.code.resolve()
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    label = args.label or commit
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(code), "MPLBACKEND": "Agg"}
    report: dict = {"kinds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):  # one process per kind: its own timers, its own MLflow home
            out = Path(tmp) / f"{kind}.json"
            subprocess.run([str(code / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--worker", str(out),
                            "--frame", str(frame), "--kinds", kind], cwd=code, env=env, check=True)
            report["kinds"][kind] = json.loads(out.read_text())
    first = next(iter(report["kinds"].values()))
    report.update(rows=first["rows"], months=first["months"], vintages=first["vintages"])
    if args.json:
        args.json.write_text(json.dumps({"label": label, "commit": commit, "started": started, **report}, indent=1))
    heading = (f"## {label} ({commit}): {report['rows']:,} training-frame rows over {report['months']} months, "
               f"vintages {', '.join(report['vintages'])}; {started}, load avg {load:.1f} -> {os.getloadavg()[0]:.1f}")
    lines = [heading, "", "| kind | wall s | CPU s |", "|---|---|---|"]
    lines += [f"| {kind} | {d['wall_s']:.1f} | {d['cpu_s']:.1f} |" for kind, d in report["kinds"].items()]
    lines += ["", *_table(report, label, "cpu"), "", *_table(report, label, "wall"), "",
              "Exclusive CPU s per timed function (calls), all vintages:", ""]
    for kind, d in report["kinds"].items():
        ranked = sorted(d["function_cpu"].items(), key=lambda item: -item[1])
        lines.append(f"- {kind}: " + ", ".join(f"{name} {seconds:.1f} ({d['calls'].get(name, '-')})"
                                               for name, seconds in ranked if seconds >= 0.05))
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        with RESULTS.open("a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
