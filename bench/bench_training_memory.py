"""Benchmark of the three model stages' memory: peak RSS of each, and where it peaks.

    uv run python bench/bench_training_memory.py --landing LZ --cache-dir DIR \
        [--code CHECKOUT --label NAME]... [--write]

Builds the training set of a landing zone once, as the pipeline's ``training_set`` asset
does (ingest, ``models.training_set.build_training_set``), into a DuckDB warehouse under
``--cache-dir`` (never beside the landing zone, which may be shared and read-only). Then,
for each checkout given with ``--code`` (default: this one), one fresh child process per
stage, run with that checkout's code:

* ``load``: ``assets.modeling._load_training`` alone (the training set read from DuckDB);
* ``breach``, ``default``, ``loss_rate``: what the model asset does, ``_load_training``
  then ``models.vintages.build_vintages`` of every vintage into a fresh MLflow home;
* ``breach:newest`` (and so on): the newest vintage alone. Its peak against the whole
  build's says whether the memory grows with the number of vintages.

Each child reports its CPU seconds, its peak RSS (``ru_maxrss``: the true high-water mark)
and where it peaked: a thread samples the RSS every ``SAMPLE_SECONDS`` and the phase the
main thread is in (functions are wrapped by name, as ``bench_training.py`` does; a name a
checkout lacks is skipped, so the same script measures the code before and after a change).
All checkouts run one after the other in one invocation, on the same world: the figures
compare; against another time's they do not (the machine is shared).

``--write`` rewrites ``bench/results/training_memory.md`` (keeping its hand-written notes).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from results_file import write_keeping_notes  # noqa: E402

RESULTS = REPO / "bench" / "results" / "training_memory.md"
STAGES = ("load", "breach", "default", "loss_rate")
SAMPLE_SECONDS = 0.05
GIB = 2**30


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PhaseSampler:
    """The RSS every SAMPLE_SECONDS, charged to the phase (innermost wrapped function) running."""

    def __init__(self) -> None:
        self.vintage = "load"
        self.stack: list[str] = []
        self.peak: dict[tuple[str, str], int] = defaultdict(int)  # (vintage, phase) -> max RSS seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def where(self) -> tuple[str, str]:
        return self.vintage, self.stack[-1] if self.stack else "other"

    def sample(self) -> None:
        key = self.where()
        self.peak[key] = max(self.peak[key], _rss())

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _phase(sampler: PhaseSampler, name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        sampler.sample()
        sampler.stack.append(name)
        try:
            return function(*args, **kwargs)
        finally:
            sampler.sample()  # a phase's last allocation, before its locals go
            sampler.stack.pop()

    return wrapper


def _wrap(sampler: PhaseSampler, owner, attribute: str, name: str) -> None:
    function = getattr(owner, attribute, None)
    if function is not None:
        setattr(owner, attribute, _phase(sampler, name, function))


def result_digest(result) -> dict[str, str]:
    """What users see of a vintage, hashed: its training-data fingerprint, its boosters, its
    scores on its own evaluation rows, its metrics and row counts (the MLflow run's metrics)."""
    import hashlib

    import numpy as np

    model = result.model
    boosters = getattr(model, "booster_models", None) or {"booster": model.booster_model}
    scores = np.asarray(model.pyfunc_predict(result.evaluation_frame), dtype=float)

    def sha(text: str | bytes) -> str:
        return hashlib.sha256(text if isinstance(text, bytes) else text.encode()).hexdigest()[:16]

    return {"fingerprint": result.data_fingerprint[:16],
            "boosters": sha(json.dumps(boosters, sort_keys=True)), "scores": sha(scores.tobytes()),
            "metrics": sha(json.dumps({k: repr(float(v)) for k, v in sorted(result.metrics.items())})),
            "row_counts": sha(json.dumps(result.row_counts, sort_keys=True))}


def instrument(sampler: PhaseSampler, digests: dict[str, dict[str, str]] | None = None) -> None:
    """Name the phases the vintages go through (module attributes, looked up at call time)."""
    import lightgbm as lgb

    import models.loss_rate as loss_rate
    import models.registry as registry
    import models.scoring as scoring
    import models.training as training
    import models.vintages as vintages

    original_rows_known_at = vintages.rows_known_at

    def rows_known_at(frame, as_of):
        sampler.vintage = as_of.isoformat()
        return original_rows_known_at(frame, as_of)

    vintages.rows_known_at = rows_known_at
    _wrap(sampler, vintages, "rows_known_at", "rows_known_at")
    for module in (vintages, training, loss_rate, registry):
        _wrap(sampler, module, "training_data_fingerprint", "fingerprint")
        _wrap(sampler, module, "complete_label_rows", "label rows")
        _wrap(sampler, module, "exposure_rows", "label rows")
    for module in (training, loss_rate, scoring):
        _wrap(sampler, module, "build_design_matrix", "design matrix")
    _wrap(sampler, vintages, "train_breach_model", "train (other)")
    _wrap(sampler, vintages, "train_loss_rate_model", "train (other)")
    _wrap(sampler, lgb.Dataset, "construct", "lgb.Dataset")
    _wrap(sampler, lgb, "train", "lgb.train")
    _wrap(sampler, training, "fit_calibrator", "calibrator")
    if digests is not None:
        original_log_and_register = vintages.log_and_register

        def log_and_register(result, *args, **kwargs):
            digests[sampler.vintage] = result_digest(result)
            return original_log_and_register(result, *args, **kwargs)

        vintages.log_and_register = log_and_register
    _wrap(sampler, vintages, "log_and_register", "mlflow")
    _wrap(sampler, vintages, "load_model_version", "gate")
    _wrap(sampler, vintages, "gate_challenger", "gate")


class _Warehouse:
    """The warehouse resource the assets are given, on a file of the cache."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def connect(self, read_only: bool = False):
        from pipelines.resources import WarehouseResource

        return WarehouseResource(path=self.path).connect(read_only=read_only)


def run_worker(warehouse_path: Path, stage: str, out: Path) -> None:
    """One stage in this (fresh) process: load the training set as the asset does, then build
    every vintage of the stage's model into a fresh MLflow home."""
    sampler = PhaseSampler()
    digests: dict[str, dict[str, str]] = {}
    instrument(sampler, digests)
    import assets.modeling as modeling
    from models.labels import label_window_end
    from models.registry import tracking_uri_for_home
    from models.vintages import VintageConfig, build_vintages, risk_model_kinds, vintage_as_of_dates

    _wrap(sampler, modeling, "_load_training", "load")
    baseline = _rss()
    sampler.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    training = modeling._load_training(_Warehouse(warehouse_path))
    loaded = {"rss_after_load_gib": _rss() / GIB, "rows": len(training), "columns": training.shape[1],
              "frame_gib": training.memory_usage(deep=True).sum() / GIB}
    report = {"stage": stage, "code": str(Path(modeling.__file__).parents[1]), "baseline_rss_gib": baseline / GIB, **loaded}
    if stage != "load":
        kind_name, _, which = stage.partition(":")
        config = VintageConfig.from_yaml()
        months = sorted(training["as_of_date"].unique())
        # the training set holds complete-label months only: the newest one's outcome window ends at the horizon
        dates = vintage_as_of_dates(months[0], label_window_end(months[-1]), config)
        dates = dates[-1:] if which == "newest" else dates
        kind = risk_model_kinds("supplier_breach_risk", "supplier_loss_rate", "supplier_default_risk")[kind_name]
        with tempfile.TemporaryDirectory(prefix="bench-training-memory-") as home:
            build = build_vintages(training, kind, dates, tracking_uri_for_home(home), "bench_training_memory", config)
        report["vintages"] = [d.isoformat() for d in dates]
        report["statuses"] = [v.status for v in build.vintages]
        report["digests"] = digests
    sampler.vintage = "end"
    report.update(cpu_s=time.process_time() - cpu0, wall_s=time.perf_counter() - wall0)
    sampler.stop()
    report["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    report["phases"] = [[v, p, rss / GIB] for (v, p), rss in sampler.peak.items()]
    out.write_text(json.dumps(report, indent=1))


def build_warehouse(landing: Path, cache_dir: Path) -> Path:
    """The landing zone's training set in a DuckDB warehouse under ``cache_dir``, built once."""
    path = cache_dir / f"{landing.resolve().name}.warehouse.duckdb"
    done = path.with_suffix(".ready")
    if done.exists():
        return path
    import duckdb

    from data_contracts import ingest_landing_zone
    from models.training_set import build_training_set

    cache_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    rows = build_training_set(con, ingest_landing_zone(landing, con).data_horizon)
    con.close()
    with _Warehouse(path).connect() as warehouse:
        warehouse.execute("CREATE SCHEMA IF NOT EXISTS models")
        warehouse.register("_training_rows", rows)
        warehouse.execute("CREATE OR REPLACE TABLE models.training_set AS SELECT * FROM _training_rows")
    done.write_text(f"{rows.num_rows} rows\n")
    return path


def _python(code: Path) -> str:
    own = code / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable  # a bare export of a commit: this environment


def measure(code: Path, label: str, warehouse: Path, stage: str) -> dict:
    """One stage with one checkout's code, in a fresh child process."""
    env = {**os.environ, "PYTHONPATH": str(code), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{stage}.json"
        subprocess.run([_python(code), str(Path(__file__).resolve()), "--worker", str(out),
                        "--warehouse", str(warehouse), "--stages", stage], cwd=code, env=env, check=True)
        figures = json.loads(out.read_text())
    print(f"  {label} {stage}: peak {figures['peak_rss_gib']:.2f} GiB, {figures['cpu_s']:.1f} CPU s", flush=True)
    return figures


def _where(figures: dict) -> str:
    """The phase (and vintage) where the sampled RSS was highest."""
    vintage, phase, rss = max(figures["phases"], key=lambda row: row[2])
    return f"{phase} ({vintage})" if vintage not in ("load", "end") else phase


def _per_vintage(figures: dict) -> str:
    peaks: dict[str, float] = {}
    for vintage, _, rss in figures["phases"]:
        if vintage not in ("load", "end"):
            peaks[vintage] = max(peaks.get(vintage, 0.0), rss)
    return ", ".join(f"{rss:.2f}" for _, rss in sorted(peaks.items()))


def report_lines(world: str, runs: list[tuple[str, dict]], started: str, loads: tuple[float, float]) -> list[str]:
    first = next(iter(runs[0][1].values()))
    lines = [f"## {world}: {first['rows']:,} training-set rows x {first['columns']} columns; {started}, "
             f"load avg {loads[0]:.1f} -> {loads[1]:.1f}", "",
             "| stage | " + " | ".join(f"{label}: peak RSS GiB | {label}: CPU s" for label, _ in runs) + " |",
             "|---|" + "---|---|" * len(runs)]
    for stage in runs[0][1]:
        cells = [f"{figures[stage]['peak_rss_gib']:.2f} | {figures[stage]['cpu_s']:.1f}" for _, figures in runs]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += ["", "Where each peaked (sampled RSS every "
              f"{SAMPLE_SECONDS} s; the frame's own size as pandas counts it; sampled peak per vintage, oldest first):", ""]
    for label, figures in runs:
        for stage, data in figures.items():
            vintages = f"; per vintage {_per_vintage(data)}" if data.get("vintages") else ""
            lines.append(f"- {label} {stage}: at {_where(data)}; RSS {data['baseline_rss_gib']:.2f} after imports, "
                         f"{data['rss_after_load_gib']:.2f} after the load (frame {data['frame_gib']:.2f}){vintages}")
    if len(runs) > 1:
        lines += ["", "Same outputs? Per vintage: training-data fingerprint, booster text, scores on the vintage's own "
                  "evaluation rows, metrics, row counts (sha256), each checkout against the first:", ""]
        for stage in runs[0][1]:
            reference = runs[0][1][stage].get("digests")
            if reference is None:
                continue
            for label, figures in runs[1:]:
                other = figures[stage].get("digests", {})
                differ = sorted({f"{vintage} {what}" for vintage, digest in reference.items()
                                 for what, value in digest.items() if other.get(vintage, {}).get(what) != value}
                                | {f"{vintage} (missing)" for vintage in set(other) ^ set(reference)})
                lines.append(f"- {stage}, {label} against {runs[0][0]}: "
                             + (f"identical in all {len(reference)} vintages" if not differ else "DIFFER: " + ", ".join(differ)))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, action="append", help="landing zone (repeat for more worlds)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-training-memory",
                        help="where each world's training-set warehouse is built once (not beside the landing zone)")
    parser.add_argument("--code", type=Path, action="append",
                        help="a checkout whose code runs the stages (repeat to compare; default: this one)")
    parser.add_argument("--label", action="append", help="name of each --code in the tables (default: its folder)")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--write", action="store_true", help=f"rewrite {RESULTS.relative_to(REPO)}")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.warehouse, args.stages, args.worker)
        return
    if not args.landing:
        parser.error("give --landing LZ (a landing zone from `assurance generate`)")
    codes = [code.resolve() for code in (args.code or [REPO])]
    labels = args.label or [code.name for code in codes]
    if len(labels) != len(codes):
        parser.error("give one --label per --code")
    sections = [f"# Training memory: peak RSS of the model stages\n\n    uv run python bench/bench_training_memory.py "
                + shlex.join(sys.argv[1:] if argv is None else argv) + "\n"]
    for landing in args.landing:
        warehouse = build_warehouse(landing, args.cache_dir)
        started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
        runs = [(label, {}) for label in labels]
        for stage in args.stages.split(","):  # each stage with every checkout in turn: the same load on both
            for code, (label, figures) in zip(codes, runs):
                figures[stage] = measure(code, label, warehouse, stage)
        sections.append("\n".join(report_lines(landing.name, runs, started, (load, os.getloadavg()[0]))))
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.write:
        write_keeping_notes(RESULTS, text)


if __name__ == "__main__":
    main()
