"""Where a run's messages go: everything to a log file under the home, the essentials to the console.

Each run writes `$ASSURANCE_HOME/logs/run-<UTC timestamp>-<pid>.log`: every Dagster event at
DEBUG and above, with full stack traces, and whatever the libraries print (MLflow's notices,
Python warnings). The console gets a line as each stage starts and one as it finishes
(with "k of N" stages and the time elapsed), and anything at WARNING or above, an error
cut to its first line (the full text is in the file). `--verbose` shows every event on the
console too, whole.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import dagster as dg

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"


def new_log_path(home: Path) -> Path:
    """A fresh log file path under the home folder (the folder is created)."""
    logs = Path(home) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return logs / f"run-{stamp}-{os.getpid()}.log"


class AppendToFile(logging.Handler):
    """Appends each record to the log file, opening it per record: nothing stays open after the run."""

    def __init__(self, path: str) -> None:
        super().__init__(logging.DEBUG)
        self.path = Path(path)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            append_to_log(self.path, self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


class FirstLineOfErrors(logging.Formatter):
    """The console's format: an ERROR record shows its first line only (its stack goes to the log)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return text.splitlines()[0] if text else text
        return text


class StagesOnly(logging.Filter):
    """The console's filter without --verbose: a line when a stage (Dagster step) starts and
    one when it finishes, with its duration and how far along the run is (``total_steps``:
    the job's steps, 0 when unknown), and anything at WARNING or above (or above
    `threshold`); the rest is for the log file. Dagster logs its events at DEBUG, so the
    handler passes every level and this filter decides."""

    def __init__(self, threshold: int = logging.INFO, total_steps: int = 0) -> None:
        super().__init__()
        self.threshold = threshold
        self.total_steps = total_steps
        self.started = self.finished = 0
        self.run_started: float | None = None

    def _of_total(self, count: int) -> str:
        return f"{count} of {self.total_steps}" if self.total_steps else str(count)

    def filter(self, record: logging.LogRecord) -> bool:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is not None and event.event_type in _STAGE_EVENTS:
            if self.run_started is None:
                self.run_started = record.created
            if event.event_type == dg.DagsterEventType.STEP_START:
                self.started += 1
                message = f"stage {self._of_total(self.started)}: {event.step_key} ..."
            elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
                self.finished += 1
                return False
            else:
                self.finished += 1
                seconds = event.event_specific_data.duration_ms / 1000 if event.event_specific_data else 0.0
                elapsed = int(record.created - self.run_started)
                message = (f"done {event.step_key} ({seconds:.1f} s; {self._of_total(self.finished)} stages done, "
                           f"{elapsed // 60}:{elapsed % 60:02d} elapsed)")
            if self.threshold > logging.INFO:
                return False
            record.msg, record.args = message, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        return record.levelno >= max(self.threshold, logging.WARNING)


_STAGE_EVENTS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_SKIPPED)


# Where the console handler writes during a run: stderr as it was before the run sent the
# libraries' own printing (MLflow prints straight to stderr) to the log file.
_console_stream: TextIO | None = None


@dg.logger(
    config_schema={
        "log_file": dg.Field(str, description="Full log, with stack traces."),
        "log_level": dg.Field(str, default_value="INFO", description="The console's threshold."),
        "verbose": dg.Field(bool, default_value=False, description="Full stack traces on the console too."),
        "total_steps": dg.Field(int, default_value=0, description="The job's steps, for the console's 'k of N' (0: unknown)."),
    },
    description="The `assurance` CLI's logger: everything to a file, the essentials to the console.",
)
def assurance_logger(init_context) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger("assurance", level=logging.DEBUG)
    to_file = AppendToFile(config["log_file"])
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    console = logging.StreamHandler(_console_stream or sys.stderr)
    if config["verbose"]:
        console.setLevel(config["log_level"].upper())
        console.setFormatter(logging.Formatter(LOG_FORMAT))
    else:
        console.addFilter(StagesOnly(logging.getLevelName(config["log_level"].upper()), config["total_steps"]))
        console.setFormatter(FirstLineOfErrors(LOG_FORMAT))
    logger.addHandler(to_file)
    logger.addHandler(console)
    return logger


def append_to_log(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as log:
        log.write(text if text.endswith("\n") else text + "\n")


class _LogFileStream(io.TextIOBase):
    """A text stream that appends whole lines to the run's log file."""

    def __init__(self, path: Path) -> None:
        self.path, self._pending = Path(path), ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                append_to_log(self.path, line)
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            append_to_log(self.path, self._pending)
        self._pending = ""


LIBRARY_LOGGERS = ("mlflow", "alembic", "py.warnings", "great_expectations", "lightgbm")


def _warning_to_library_log(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning as a record of the `py.warnings` logger (what logging.captureWarnings does)."""
    logging.getLogger("py.warnings").warning("%s", warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def libraries_to_log_file(path: Path, verbose: bool = False) -> Iterator[None]:
    """During a run, what the libraries print or log (MLflow's notices and warnings, Python
    warnings) goes to the run's log file instead of the console; with `verbose`, nowhere new.
    The run's own logger keeps writing to the console as it was."""
    global _console_stream
    if verbose:
        yield
        return
    to_file = AppendToFile(str(path))
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    saved = {}
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        saved[name] = (library.handlers[:], library.propagate)
        library.handlers, library.propagate = [to_file], False
    stream, previous_console = _LogFileStream(path), _console_stream
    _console_stream = sys.stderr
    # Set, not logging.captureWarnings(True): that is a no-op once a library captured warnings
    # before (Great Expectations does on import), leaving warnings to whoever shows them now.
    previous_showwarning, warnings.showwarning = warnings.showwarning, _warning_to_library_log
    try:
        with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.flush()
        warnings.showwarning = previous_showwarning
        _console_stream = previous_console
        for name, (handlers, propagate) in saved.items():
            library = logging.getLogger(name)
            library.handlers, library.propagate = handlers, propagate
