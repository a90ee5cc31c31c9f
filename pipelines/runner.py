"""Running the monthly job in-process on a persistent Dagster instance (the CLI's engine).

The run is recorded in the instance under the home folder, so `dagster dev` shows it
afterwards like any run launched from the UI.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from assets.partitions import partition_key_of
from pipelines.jobs import MONTHLY_JOB_NAME
from pipelines.settings import Settings

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


class PipelineRunFailed(RuntimeError):
    """The Dagster run failed; the message is the underlying cause, not Dagster's wrapper."""


@dataclass
class RunOutcome:
    run_id: str
    first_month: str
    last_month: str
    failed_checks: list[str] = field(default_factory=list)


def prepare_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the home folder, with the project's dagster.yaml in it."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != REPO_DAGSTER_YAML.read_bytes():
        shutil.copyfile(REPO_DAGSTER_YAML, target)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return settings.dagster_home


def _root_cause(error) -> str:
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "unknown error"
    message = error.message.strip().splitlines()[-1] if error.message.strip() else error.cls_name
    return message if message.startswith(error.cls_name or "") else f"{error.cls_name}: {message}"


def run_months(settings: Settings, first_month: str, last_month: str, log_level: str = "INFO") -> RunOutcome:
    """Materialise every asset for the months first..last (YYYY-MM) as one single-run backfill."""
    from pipelines.definitions import build_definitions

    prepare_dagster_home(settings)
    job = build_definitions(settings).resolve_job_def(MONTHLY_JOB_NAME)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first_month,
                "dagster/asset_partition_range_end": last_month,
            },
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            raise_on_error=False,
        )
    failed_checks = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        + (f" ({evaluation.metadata['summary'].value})" if "summary" in evaluation.metadata else "")
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    if not result.success:
        causes = [_root_cause(event.step_failure_data.error) for event in result.get_step_failure_events()]
        detail = "; ".join(dict.fromkeys(causes)) or "a step was skipped after a blocking check failed"
        checks = f" (failed checks: {', '.join(failed_checks)})" if failed_checks else ""
        raise PipelineRunFailed(f"run {result.run_id} failed: {detail}{checks}")
    return RunOutcome(result.run_id, first_month, last_month, failed_checks)


def month_range(first: str | None, last: str | None, span: tuple) -> tuple[str, str]:
    """Resolve --from/--to against the months the landing zone covers."""
    data_first, data_last = span
    return first or partition_key_of(data_first), last or partition_key_of(data_last)
