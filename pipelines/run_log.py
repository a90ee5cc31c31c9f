"""Where a run's messages go: everything to a log file under the home, the essentials to the console.

Each run writes `$ASSURANCE_HOME/logs/run-<UTC timestamp>-<pid>.log`: every Dagster event at
DEBUG and above, with full stack traces. The console gets the run's progress at the chosen
level; an error there is cut to its first line (the full text is in the file), unless the
run is `--verbose`.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

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


@dg.logger(
    config_schema={
        "log_file": dg.Field(str, description="Full log, with stack traces."),
        "log_level": dg.Field(str, default_value="INFO", description="The console's threshold."),
        "verbose": dg.Field(bool, default_value=False, description="Full stack traces on the console too."),
    },
    description="The `assurance` CLI's logger: everything to a file, the essentials to the console.",
)
def assurance_logger(init_context) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger("assurance", level=logging.DEBUG)
    to_file = AppendToFile(config["log_file"])
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(config["log_level"].upper())
    console.setFormatter(logging.Formatter(LOG_FORMAT) if config["verbose"] else FirstLineOfErrors(LOG_FORMAT))
    logger.addHandler(to_file)
    logger.addHandler(console)
    return logger


def append_to_log(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as log:
        log.write(text if text.endswith("\n") else text + "\n")
