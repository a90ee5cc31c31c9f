"""Issue 13: a killed run must not hang the next one; two runs on one home must not both write.

The unit tests fabricate the records a killed run leaves (a STARTED run holding a pool slot);
the end-to-end test kills a real `assurance run` with -9 and checks the next one finishes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.home_lock import HomeBusyError, home_lock, process_alive, process_start_time
from pipelines.run_records import HOST_TAG, PID_STARTED_TAG, PID_TAG, launch_tags, recover_stale_runs
from pipelines.runner import prepare_dagster_home
from pipelines.settings import Settings

POOL = "duckdb_warehouse"


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch):
    for name in ("ASSURANCE_HOME", "ASSURANCE_LANDING", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def instance(tmp_path):
    prepare_dagster_home(Settings(home=tmp_path / "home", landing=tmp_path / "landing"))
    with dg.DagsterInstance.get() as instance:
        yield instance


def add_run(instance, status=dg.DagsterRunStatus.STARTED, tags=None, slot=True) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="assurance_monthly", run_id=run_id, status=status, tags=tags or {}))
    if slot:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        assert instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "published_tables").is_claimed
    return run_id


def test_a_run_whose_process_died_is_marked_failed_and_its_slot_released(instance):
    """What `kill -9` leaves: STARTED, holding the pool's only slot, its pid gone."""
    pid = dead_pid()
    run_id = add_run(instance, tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname()})
    lines = []
    recovered = recover_stale_runs(instance, lines.append)
    assert [run.run_id for run in recovered] == [run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert lines == [f"recovered stale run {run_id} (pid {pid} no longer running): marked failed, pool slot released"]
    # the slot is free for the next run
    assert instance.event_log_storage.claim_concurrency_slot(POOL, "next-run", "landing_zone").is_claimed


# (QUEUED needs a code location origin, which in-process runs never have.)
@pytest.mark.parametrize("status", [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.CANCELING])
def test_every_unfinished_status_of_a_dead_process_is_recovered(instance, status):
    run_id = add_run(instance, status=status, tags={PID_TAG: str(dead_pid()), HOST_TAG: socket.gethostname()}, slot=False)
    assert [run.run_id for run in recover_stale_runs(instance, lambda _line: None)] == [run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_reused_pid_does_not_make_a_dead_run_look_alive(instance):
    """The pid now belongs to another process (this one), started at another time: still stale."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), PID_STARTED_TAG: "1"}
    run_id = add_run(instance, tags=tags, slot=False)
    assert [run.run_id for run in recover_stale_runs(instance, lambda _line: None)] == [run_id]


def test_a_run_whose_process_is_alive_is_busy_not_recovered(instance):
    run_id = add_run(instance, tags=launch_tags())  # this very process: alive
    with pytest.raises(HomeBusyError, match=run_id):
        recover_stale_runs(instance, lambda _line: None)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED


def test_runs_launched_outside_assurance_keep_their_status_but_not_their_slot(instance):
    run_id = add_run(instance, tags={})
    lines = []
    assert recover_stale_runs(instance, lines.append) == []
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert len(lines) == 1 and run_id in lines[0] and "outside `assurance`" in lines[0]


def test_a_slot_still_held_by_a_finished_run_is_released(instance):
    run_id = add_run(instance, status=dg.DagsterRunStatus.FAILURE)
    lines = []
    recover_stale_runs(instance, lines.append)
    assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert lines == [f"released the pool slot still held by finished run {run_id}"]


def test_process_liveness():
    assert process_alive(os.getpid(), process_start_time(os.getpid()))
    assert not process_alive(dead_pid())


def test_the_instance_sets_no_pool_limit(instance):
    """A limit on the warehouse pool is what made a dead run's slot block every later run."""
    assert instance.global_op_concurrency_default_limit is None


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipelines.home_lock import home_lock
    with home_lock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def lock_held_elsewhere(tmp_path):
    """Another process holding the home's run lock, as a live `assurance run` does."""
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(home)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        yield home, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_the_home_lock_refuses_a_second_holder_and_frees_itself_when_its_process_dies(lock_held_elsewhere):
    home, pid = lock_held_elsewhere
    with pytest.raises(HomeBusyError, match=f"pid {pid}"):
        with home_lock(home):
            pass
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with home_lock(home):  # the kernel released the dead holder's lock
        with home_lock(home):  # re-entrant in one process (demo -> run)
            pass


def test_a_second_run_on_a_busy_home_exits_3_with_one_line(lock_held_elsewhere, tmp_path):
    from synthetic import generate_landing_zone

    home, pid = lock_held_elsewhere
    landing = tmp_path / "landing"
    generate_landing_zone(landing, n_suppliers=40, start="2024-01", months=8, seed=3)
    result = CliRunner().invoke(main, ["run", "--landing", str(landing), "--home", str(home)])
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {pid}" in errors[0] and "wait for it" in errors[0]
    assert "Traceback" not in result.output
    assert not (home / "warehouse.duckdb").exists()


def test_demo_on_a_busy_home_exits_3_before_touching_its_landing_zone(lock_held_elsewhere):
    home, _pid = lock_held_elsewhere
    (home / "landing").mkdir(parents=True)
    (home / "landing" / "keep.txt").write_text("being read by the running run")
    result = CliRunner().invoke(main, ["demo", "--home", str(home), "--suppliers", "50", "--months", "13"])
    assert result.exit_code == 3, result.output
    assert (home / "landing" / "keep.txt").exists()


# --- end to end: a real run killed with -9, then the next run -------------------------------

RUN_TIMEOUT_S = 600  # a hang fails the test instead of blocking the suite


def assurance(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


@pytest.mark.slow
def test_a_run_killed_with_sigkill_does_not_stop_the_next_run(tmp_path):
    """Issue 13, case 1: the next run finishes by itself and logs the recovery.

    The run is killed once it scores months (model registered, pool slot held), which
    leaves a STARTED run record; before the fix the next run spun forever at 100% CPU.
    A second run started while the first is alive exits 3 at once.
    """
    repo = Path(__file__).resolve().parents[1]
    landing, home = tmp_path / "landing", tmp_path / "home"
    # 18 months: enough default events in the complete-label months for the default model's first
    # vintage (14 months gave 5-6, under the 10 it needs, and then no month is scored at all).
    subprocess.run(assurance("generate", "--out", str(landing), "--suppliers", "300", "--months", "18", "--seed", "3"),
                   check=True, cwd=repo, capture_output=True, timeout=RUN_TIMEOUT_S)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ASSURANCE_HOME", None), env.pop("DAGSTER_HOME", None)
    first_log = tmp_path / "first.log"
    with open(first_log, "w") as out:
        first = subprocess.Popen(assurance("run", "--landing", str(landing), "--home", str(home)),
                                 cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        # the run's progress line as scoring starts (pipelines/run_log.py): the models are registered
        while not re.search(r"stage \d+ of \d+: supplier_scores \.\.\.", first_log.read_text()) and first.poll() is None:
            assert time.monotonic() < deadline, "the first run never reached scoring"
            time.sleep(0.05)
        assert first.poll() is None, first_log.read_text()[-2000:]
        busy = subprocess.run(assurance("run", "--landing", str(landing), "--home", str(home)),
                              cwd=repo, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert busy.returncode == 3, busy.stderr[-2000:]
        assert f"pid {first.pid}" in busy.stderr and "Traceback" not in busy.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(assurance("run", "--landing", str(landing), "--home", str(home)),
                            cwd=repo, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert second.returncode == 0, second.stderr[-3000:]
    recovered = [line for line in second.stderr.splitlines() if line.startswith("recovered stale run")]
    assert len(recovered) == 1 and f"(pid {first.pid} no longer running)" in recovered[0], second.stderr[-3000:]
    assert "months processed      18" in second.stdout
    assert "checks         all passed" in second.stdout  # the summary says when a check warned
    run_log = Path(second.stdout.split("run log", 1)[1].split()[0])
    assert run_log.parent == home / "logs" and recovered[0] in run_log.read_text()
