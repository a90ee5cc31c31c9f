"""Running the monthly job in-process on a persistent Dagster instance (the CLI's engine).

The run is recorded in the instance under the home folder, so `dagster dev` shows it
afterwards like any run launched from the UI.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from assets.partitions import month_keys, partition_key_of, register_months
from data_contracts.span import landing_zone_month_span
from pipelines.jobs import MONTHLY_JOB_NAME
from pipelines.run_log import append_to_log, assurance_logger, libraries_to_log_file, new_log_path
from pipelines.home_lock import home_lock
from pipelines.run_records import RecoveredRun, launch_tags, recover_stale_runs
from pipelines.settings import Settings

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


class PipelineRunFailed(RuntimeError):
    """The Dagster run failed; the message is the underlying cause and the next step, not Dagster's wrapper.

    `exit_code` is the CLI's: 2 when the cause is unusable input, 3 when the warehouse was
    busy, else 1. `log_path` is the run's full log.
    """

    def __init__(self, message: str, log_path: Path | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.log_path = log_path
        self.exit_code = exit_code


class MonthRangeError(ValueError):
    """--from/--to are out of order or outside the months the data covers (bad usage: exit code 2)."""


@dataclass
class RunOutcome:
    run_id: str
    first_month: str
    last_month: str
    failed_checks: list[str] = field(default_factory=list)
    log_path: Path | None = None
    recovered: list[RecoveredRun] = field(default_factory=list)


def prepare_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the home folder, with the project's dagster.yaml in it."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != REPO_DAGSTER_YAML.read_bytes():
        shutil.copyfile(REPO_DAGSTER_YAML, target)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return settings.dagster_home


_MARKER_ONLY = re.compile(r"^[\s^~]*$")


def _meaningful_line(message: str, cls_name: str) -> str:
    """The line of an error message that says what went wrong.

    DuckDB errors end with the query and a `^` marker under the offending spot, so the last
    line is often only `^`: take the line naming the exception class if there is one, else
    the first line that is more than a marker.
    """
    lines = [line.strip() for line in message.splitlines() if not _MARKER_ONLY.match(line)]
    named = [line for line in lines if cls_name and cls_name in line]
    line = (named or lines or [cls_name])[0]
    # "duckdb.duckdb.ConversionException: ..." -> "ConversionException: ..."
    if cls_name and ":" in line and line.split(":", 1)[0].endswith("." + cls_name):
        line = cls_name + ":" + line.split(":", 1)[1]
    return line if not cls_name or line.startswith(cls_name) else f"{cls_name}: {line}"


def _root_error(error):
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def _root_cause(error) -> str:
    error = _root_error(error)
    if error is None:
        return "unknown error"
    return _meaningful_line(error.message or "", error.cls_name or "")


# Causes the CLI reports with their own exit codes (docs/design.md §6): unusable input, busy warehouse.
_EXIT_CODE_OF_CAUSE = {
    "LandingZoneError": 2, "MonthsOutsideDataError": 2, "OverridesFileError": 2, "FeatureEngineUnavailableError": 2,
    "WarehouseSettingError": 2, "WarehouseLockedError": 3,
}
_NEXT_STEP = "next: fix the cause (full trace in the log) and run the same command again"


def _failed_checks(evaluations) -> list[str]:
    """One entry per failed check (checks on published tables evaluate once per month): its
    severity (ERROR blocks what follows it, WARN does not), the first failure's summary and
    the months that failed; errors first, so the one that stopped a run leads."""
    failed: dict[str, tuple[str, list[str]]] = {}
    for evaluation in evaluations:
        if evaluation.passed:
            continue
        severity = getattr(getattr(evaluation, "severity", None), "value", "ERROR")
        name = f"[{severity}] {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        summary = f" ({evaluation.metadata['summary'].value})" if "summary" in evaluation.metadata else ""
        failed.setdefault(name, (summary, []))[1].append(getattr(evaluation, "partition", None) or "")
    return sorted((
        name + summary + (f" in {', '.join(m for m in months if m)}" if any(months) else "")
        for name, (summary, months) in failed.items()
    ), key=lambda line: not line.startswith("[ERROR]"))


def _failure(result, failed_checks: list[str], log_path: Path) -> PipelineRunFailed:
    failures = [(event.step_key, event.step_failure_data.error) for event in result.get_step_failure_events()]
    if not failures:
        # The run itself failed outside any step (e.g. the instance's storage): its error.
        failures = [("run", event.event_specific_data.error) for event in result.all_events
                    if event.is_run_failure and event.event_specific_data is not None and event.event_specific_data.error]
    roots = [_root_error(error) for _, error in failures]
    causes = [f"step {step}: {_root_cause(error)}" if step != "run" else _root_cause(error) for step, error in failures]
    detail = "; ".join(dict.fromkeys(causes)) or "a step was skipped after a blocking check failed"
    checks = f" (failed checks: {', '.join(failed_checks)})" if failed_checks else ""
    exit_code = next((_EXIT_CODE_OF_CAUSE[r.cls_name] for r in roots if r is not None and r.cls_name in _EXIT_CODE_OF_CAUSE), 1)
    # A LandingZoneError or WarehouseLockedError message already ends with what to do next.
    next_step = "" if exit_code != 1 or " next: " in detail else f"; {_NEXT_STEP}"
    return PipelineRunFailed(f"run {result.run_id} failed: {detail}{checks}{next_step}", log_path, exit_code)


def run_months(
    settings: Settings,
    first_month: str,
    last_month: str,
    log_level: str = "INFO",
    verbose: bool = False,
    echo: Callable[[str], None] | None = None,
    span: tuple[date, date] | None = None,
) -> RunOutcome:
    """Materialise every asset for the months first..last (YYYY-MM) as one single-run backfill.

    The months must lie within the landing zone's month span (`span`, read from
    `settings.landing` when not given; `MonthRangeError` otherwise). Every month of the span
    is registered as a partition before the run, so the instance's partitions are the data's
    months, whatever their era. Holds the home folder's run lock throughout (`HomeBusyError`
    if another run has it) and first recovers the run records a killed run left behind. The full log, with stack
    traces, goes to `$ASSURANCE_HOME/logs/run-*.log`; the console gets the progress at
    `log_level` and errors cut to one line (whole with `verbose`).
    """
    from pipelines.definitions import build_definitions

    span = span or landing_zone_month_span(settings.landing)
    first_month, last_month = month_range(first_month, last_month, span)

    def say(line: str) -> None:
        append_to_log(log_path, line)
        (echo or (lambda text: print(text, file=sys.stderr)))(line)

    with home_lock(settings.home):
        log_path = new_log_path(settings.home)
        prepare_dagster_home(settings)
        with libraries_to_log_file(log_path, verbose):  # importing the models makes MLflow warn
            job = build_definitions(settings).resolve_job_def(MONTHLY_JOB_NAME).with_logger_defs({"assurance": assurance_logger})
        with dg.DagsterInstance.get() as instance:
            recovered = recover_stale_runs(instance, say)
            new_months = register_months(instance, month_keys(*span))
            if new_months:
                say(f"partitions: registered {len(new_months)} month(s) of the data, {new_months[0]}..{new_months[-1]}")
            try:
                with libraries_to_log_file(log_path, verbose):
                    result = job.execute_in_process(
                        instance=instance,
                        tags={
                            "dagster/asset_partition_range_start": first_month,
                            "dagster/asset_partition_range_end": last_month,
                            **launch_tags(),
                        },
                        run_config={"loggers": {"assurance": {"config": {
                            "log_file": str(log_path), "log_level": log_level, "verbose": verbose,
                            # one step per node of the job (checks in their own steps): the console's "k of N"
                            "total_steps": len(job.graph.nodes)}}}},
                        raise_on_error=False,
                    )
            except Exception:
                append_to_log(log_path, traceback.format_exc())
                raise
    failed_checks = _failed_checks(result.get_asset_check_evaluations())
    if not result.success:
        raise _failure(result, failed_checks, log_path)
    return RunOutcome(result.run_id, first_month, last_month, failed_checks, log_path, recovered)


def register_landing_months(settings: Settings) -> tuple[list[str], list[str]]:
    """Register the landing zone's months as partitions of the home's Dagster instance, as a run
    does first (`assurance months`): the data's months and those that were new."""
    months = month_keys(*landing_zone_month_span(settings.landing))
    with home_lock(settings.home):
        prepare_dagster_home(settings)
        with dg.DagsterInstance.get() as instance:
            return months, register_months(instance, months)


def check_month_order(first: str | None, last: str | None) -> None:
    """--from after --to is a usage error, found before anything is read."""
    if first and last and first > last:
        raise MonthRangeError(f"--from {first} is after --to {last}: give the earlier month as --from")


def month_range(first: str | None, last: str | None, span: tuple[date, date]) -> tuple[str, str]:
    """Resolve --from/--to (YYYY-MM or None) against the months the landing zone covers.

    A month outside the data (before its first month, after its last complete month) is
    refused, never run empty: `MonthRangeError`.
    """
    check_month_order(first, last)
    data_first, data_last = (partition_key_of(month) for month in span)
    covered = f"the data covers {data_first}..{data_last} (complete months); choose months within them"
    for flag, month in (("--from", first), ("--to", last)):
        if month is not None and month < data_first:
            raise MonthRangeError(f"{flag} {month} is before the data: {covered}")
        if month is not None and month > data_last:
            raise MonthRangeError(f"{flag} {month} is after the data: {covered}")
    return first or data_first, last or data_last
