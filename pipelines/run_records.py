"""Recovery of the run records a killed run left behind (at the start of every `run_months`).

A killed run stays `STARTED` in the Dagster instance, and any pool slot it held stays taken.
Every run launched here carries the tags `assurance/pid`, `assurance/host` (and
`assurance/pid_started`, the process start time, against reuse of the pid). Called while
holding the home's run lock (`pipelines.home_lock`), so no `assurance` run is writing the
home: an unfinished run with those tags has no live process; it is marked failed and its
slots are released, with one log line each. As a second guard, a tagged run whose process
is visibly alive on this host is never touched: that is `HomeBusyError` too. Runs launched
outside `assurance` (the Dagster UI) carry no tags: their status is left to Dagster, with a note.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from pipelines.home_lock import HomeBusyError, process_alive, process_start_time

PID_TAG, HOST_TAG, PID_STARTED_TAG = "assurance/pid", "assurance/host", "assurance/pid_started"

UNFINISHED_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def launch_tags() -> dict[str, str]:
    """Tags that let a later run tell whether this process still runs."""
    pid = os.getpid()
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    started = process_start_time(pid)
    if started is not None:
        tags[PID_STARTED_TAG] = started
    return tags


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    status: str
    reason: str

    def describe(self) -> str:
        return f"recovered stale run {self.run_id} ({self.reason}): marked failed, pool slot released"


def _reason_if_stale(run: dg.DagsterRun) -> str:
    """Why a tagged unfinished run has no live process, or raise if it visibly has one."""
    pid, host, started = int(run.tags[PID_TAG]), run.tags.get(HOST_TAG), run.tags.get(PID_STARTED_TAG)
    if host != socket.gethostname():
        return f"pid {pid} on host {host}; no process holds this home's run lock"
    if process_alive(pid, started):
        raise HomeBusyError(
            f"run {run.run_id} of pid {pid} on {host} is still running ({run.status.value}): "
            "wait for it to finish, then run again"
        )
    return f"pid {pid} no longer running"


def recover_stale_runs(instance: dg.DagsterInstance, echo: Callable[[str], None]) -> list[RecoveredRun]:
    """Mark failed the unfinished runs of dead `assurance` processes; release every slot they hold.

    Call it holding the home lock. Also releases pool slots still held by runs that finished.
    """
    recovered = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED_STATUSES)):
        run = record.dagster_run
        if PID_TAG not in run.tags:
            # Its status is Dagster's business. Its pool slots are not needed (dagster.yaml sets
            # no pool limit) and a slot left by a dead run trips Dagster's pool bookkeeping.
            _free_slots(instance, run.run_id)
            echo(f"note: run {run.run_id} ({run.status.value}) was launched outside `assurance`; status left to Dagster, "
                 f"pool slots released (if nothing runs it any more: `dagster run delete {run.run_id}`)")
            continue
        reason = _reason_if_stale(run)
        instance.report_run_failed(run, message=f"marked failed by `assurance run`: its process is gone ({reason})")
        _free_slots(instance, run.run_id)
        recovered.append(RecoveredRun(run.run_id, run.status.value, reason))
        echo(recovered[-1].describe())
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in sorted(storage.get_concurrency_run_ids()):
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                _free_slots(instance, run_id)
                echo(f"released the pool slot still held by finished run {run_id}")
    return recovered


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
