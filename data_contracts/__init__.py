"""Declarative contracts for the landing zone and the published tables, and the validator.

Public API (no Dagster here; `assets/` wires these into asset checks):

* `load_landing_contracts()`, `load_published_contracts()` -> `dict[str, TableContract]`
* `ingest_landing_zone(landing_dir, con, quarantine_parquet_dir=None, horizon=None) -> IngestReport`
* `validate_landing_zone(landing_dir) -> (IngestReport | None, exit_code, text)`
* `LandingZoneError`
* `build_expectation_suite`, `run_expectation_suite`, `check_published_frame` (Great Expectations)
"""

from data_contracts.contracts import (
    ColumnContract,
    TableContract,
    load_landing_contracts,
    load_published_contracts,
)
from data_contracts.errors import LandingZoneError
from data_contracts.ingest import ingest_landing_zone, validate_landing_zone
from data_contracts.report import IngestReport, TableIngestStats, load_tolerances

_EXPECTATIONS_API = {"build_expectation_suite", "run_expectation_suite", "check_published_frame", "check_published_months",
                     "ContractCheckResult", "ExpectationOutcome"}


def __getattr__(name: str):
    # Great Expectations takes seconds to import: load it only when a suite is used.
    if name in _EXPECTATIONS_API:
        from data_contracts import expectations

        return getattr(expectations, name)
    raise AttributeError(f"module 'data_contracts' has no attribute {name!r}")


__all__ = [
    "ContractCheckResult",
    "ExpectationOutcome",
    "build_expectation_suite",
    "check_published_frame",
    "check_published_months",
    "run_expectation_suite",
    "ColumnContract",
    "IngestReport",
    "LandingZoneError",
    "TableContract",
    "TableIngestStats",
    "ingest_landing_zone",
    "load_landing_contracts",
    "load_published_contracts",
    "load_tolerances",
    "validate_landing_zone",
]
