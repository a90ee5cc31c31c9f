"""The one line a failed run prints: the meaningful line of the root cause (issue 13, case 8)."""

from __future__ import annotations

import logging

import pytest
from dagster._utils.error import SerializableErrorInfo

from pipelines.run_log import FirstLineOfErrors
from pipelines.runner import _root_cause

DUCKDB_MESSAGE = """duckdb.duckdb.ConversionException: Conversion Error: Casting value "1e+12" to type DECIMAL(18,6) failed: value is out of range!

LINE 1: SELECT CAST(amount_usd AS DECIMAL(18,6)) FROM orders
               ^
"""


def error(message: str, cls_name: str, cause=None) -> SerializableErrorInfo:
    return SerializableErrorInfo(message=message, stack=[], cls_name=cls_name, cause=cause)


@pytest.mark.parametrize(
    ("message", "cls_name", "expected"),
    [
        # DuckDB: the last line is the ^ marker; the line naming the class is the cause
        (DUCKDB_MESSAGE, "ConversionException",
         'ConversionException: Conversion Error: Casting value "1e+12" to type DECIMAL(18,6) failed: value is out of range!'),
        # a marker line with spaces and tildes only, no class name anywhere: first real line
        ("Binder Error: column x not found\n   ^~~~\n", "BinderException", "BinderException: Binder Error: column x not found"),
        # a plain one-line message keeps its class
        ("disk full", "OSError", "OSError: disk full"),
        # an empty message: the class alone
        ("", "KeyError", "KeyError"),
    ],
)
def test_root_cause_picks_the_meaningful_line(message, cls_name, expected):
    assert _root_cause(error(message, cls_name)) == expected


def test_root_cause_follows_the_chain_to_the_innermost_error():
    wrapped = error('Error occurred while executing op "x":', "DagsterExecutionStepExecutionError",
                    cause=error(DUCKDB_MESSAGE, "ConversionException"))
    assert _root_cause(wrapped).startswith("ConversionException: Conversion Error:")


def test_the_console_shows_the_first_line_of_an_error_record_only():
    formatter = FirstLineOfErrors("%(levelname)s - %(message)s")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "step failed.\n\nStack Trace:\n  File ...", None, None)
    assert formatter.format(record) == "ERROR - step failed."
    info = logging.LogRecord("x", logging.INFO, __file__, 1, "report\ntable rows", None, None)
    assert formatter.format(info) == "INFO - report\ntable rows"


def test_a_check_failing_in_several_months_is_named_once_with_its_months():
    from types import SimpleNamespace

    import dagster as dg

    from pipelines.runner import _failed_checks

    def evaluation(passed, partition, summary="2 rows break the contract", check="meets_contract",
                   severity=dg.AssetCheckSeverity.ERROR):
        return SimpleNamespace(passed=passed, partition=partition, check_name=check, severity=severity,
                               asset_key=dg.AssetKey(["published", "supplier_scores"]),
                               metadata={"summary": SimpleNamespace(value=summary)})

    names = _failed_checks([evaluation(False, "2024-01"), evaluation(True, "2024-02"), evaluation(False, "2024-03")])
    assert names == ["[ERROR] published/supplier_scores:meets_contract (2 rows break the contract) in 2024-01, 2024-03"]
    assert _failed_checks([evaluation(False, None)]) == [
        "[ERROR] published/supplier_scores:meets_contract (2 rows break the contract)"]
    # a warning is named as one, and the error that stopped the run leads whatever the order
    warned = evaluation(False, "2024-01", "1 input drifted", "inputs_stable", dg.AssetCheckSeverity.WARN)
    assert _failed_checks([warned, evaluation(False, "2024-02")]) == [
        "[ERROR] published/supplier_scores:meets_contract (2 rows break the contract) in 2024-02",
        "[WARN] published/supplier_scores:inputs_stable (1 input drifted) in 2024-01"]


def _dagster_record(event_type, step_key="supplier_features", duration_ms=12_345.0, level=logging.DEBUG, created=None):
    from types import SimpleNamespace

    event = SimpleNamespace(event_type=event_type, step_key=step_key,
                            event_specific_data=SimpleNamespace(duration_ms=duration_ms))
    record = logging.LogRecord("assurance", level, __file__, 1, "assurance_monthly - run - STEP_SUCCESS", None, None)
    record.dagster_meta = {"dagster_event": event}
    if created is not None:
        record.created = created
    return record


def test_the_console_shows_each_stage_starting_and_finishing_and_warnings():
    import dagster as dg

    from pipelines.run_log import StagesOnly

    stages = StagesOnly()
    start = _dagster_record(dg.DagsterEventType.STEP_START)
    assert stages.filter(start) and start.getMessage() == "stage 1: supplier_features ..."
    done = _dagster_record(dg.DagsterEventType.STEP_SUCCESS)
    assert stages.filter(done) and done.getMessage().startswith("done supplier_features (12.3 s; 1 stages done, ")
    # inputs, outputs, a step's own info lines: log file only
    assert not stages.filter(_dagster_record(dg.DagsterEventType.STEP_INPUT))
    assert not stages.filter(logging.LogRecord("assurance", logging.INFO, __file__, 1, "scored 2024-06", None, None))
    assert stages.filter(logging.LogRecord("assurance", logging.WARNING, __file__, 1, "not training", None, None))
    # a quieter threshold (tests run at WARNING): no stage lines, warnings still
    quiet = StagesOnly(logging.WARNING)
    assert not quiet.filter(_dagster_record(dg.DagsterEventType.STEP_START))
    assert not quiet.filter(_dagster_record(dg.DagsterEventType.STEP_SUCCESS))
    assert quiet.filter(logging.LogRecord("assurance", logging.WARNING, __file__, 1, "not training", None, None))


def test_the_stage_lines_say_how_far_along_the_run_is():
    import dagster as dg

    from pipelines.run_log import StagesOnly

    stages = StagesOnly(total_steps=3)
    shown = []
    for event, step, at in [
        (dg.DagsterEventType.STEP_START, "landing_zone", 1000.0),
        (dg.DagsterEventType.STEP_SUCCESS, "landing_zone", 1030.0),
        (dg.DagsterEventType.STEP_SKIPPED, "storefront_metrics", 1031.0),  # counted as finished, not shown
        (dg.DagsterEventType.STEP_START, "supplier_features", 1032.0),
        (dg.DagsterEventType.STEP_SUCCESS, "supplier_features", 1125.0),
    ]:
        record = _dagster_record(event, step, duration_ms=(at - 1000.0) * 1000, created=at)
        if stages.filter(record):
            shown.append(record.getMessage())
    assert shown == [
        "stage 1 of 3: landing_zone ...",
        "done landing_zone (30.0 s; 1 of 3 stages done, 0:30 elapsed)",
        "stage 2 of 3: supplier_features ...",
        "done supplier_features (125.0 s; 3 of 3 stages done, 2:05 elapsed)",
    ]


def test_a_run_tells_its_console_how_many_stages_the_job_has(tmp_path, monkeypatch):
    """The runner hands the console logger the job's step count (one step per node of the
    job graph: checks run in their own steps), caught here as the job is launched."""
    from datetime import date

    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.runner import MONTHLY_JOB_NAME, run_months
    from pipelines.settings import Settings

    class Launched(Exception):
        pass

    launched = {}

    def execute_in_process(job, **kwargs):
        launched.update(kwargs)
        raise Launched

    monkeypatch.setattr(dg.JobDefinition, "execute_in_process", execute_in_process)
    settings = Settings(home=tmp_path / "home", landing=tmp_path / "unused")
    with pytest.raises(Launched):
        run_months(settings, "2024-01", "2024-02", span=(date(2024, 1, 31), date(2024, 2, 29)))
    steps = len(build_definitions(settings).resolve_job_def(MONTHLY_JOB_NAME).graph.nodes)
    assert steps > 10
    assert launched["run_config"]["loggers"]["assurance"]["config"]["total_steps"] == steps


def test_what_libraries_print_during_a_run_goes_to_the_log_file(tmp_path, capsys):
    import sys
    import warnings

    import mlflow  # noqa: F401 - sets up MLflow's own console handler, which the run must divert

    from pipelines import run_log

    log = tmp_path / "run.log"
    with run_log.libraries_to_log_file(log):
        logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
        print("Successfully registered model 'supplier_breach_risk'.", file=sys.stderr)
        with warnings.catch_warnings():  # shown even if this line warned before in the process
            warnings.simplefilter("always")
            warnings.warn("Add type hints to the `predict` method", UserWarning)
        # the run's own console handler still reaches the console
        console = logging.StreamHandler(run_log._console_stream)
        console.emit(logging.LogRecord("assurance", logging.INFO, __file__, 1, "done training_set (1.0 s)", None, None))
    shown = capsys.readouterr()
    assert shown.err.strip() == "done training_set (1.0 s)" and shown.out == ""
    written = log.read_text()
    for line in ("Creating initial MLflow database tables", "Successfully registered model", "Add type hints"):
        assert line in written
    # afterwards everything is as it was
    print("after", file=sys.stderr)
    assert capsys.readouterr().err == "after\n"


def test_verbose_leaves_the_console_alone(tmp_path, capsys):
    import sys

    from pipelines import run_log

    with run_log.libraries_to_log_file(tmp_path / "run.log", verbose=True):
        print("Successfully registered model", file=sys.stderr)
    assert "Successfully registered model" in capsys.readouterr().err
def test_an_unusable_overrides_file_found_inside_the_run_exits_two():
    """A freeze whose month before start was never scored is found while scoring: unusable input (exit 2)."""
    from types import SimpleNamespace

    from pipelines.runner import _failure

    cause = error("models.overrides.OverridesFileError: override 'OV-1' freezes supplier 'S1' at its amount of "
                  "2024-12-31, a month that was never scored: state amount_usd in the override, or run that month first",
                  "OverridesFileError")
    step = SimpleNamespace(step_key="supplier_scores", step_failure_data=SimpleNamespace(error=error("step failed", "DagsterExecutionStepExecutionError", cause)))
    result = SimpleNamespace(run_id="r1", get_step_failure_events=lambda: [step], all_events=[])
    failed = _failure(result, [], log_path=None)
    assert failed.exit_code == 2
    assert "step supplier_scores: OverridesFileError: override 'OV-1'" in str(failed) and "state amount_usd" in str(failed)
