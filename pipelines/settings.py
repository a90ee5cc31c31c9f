"""Where everything lives: one home folder (ASSURANCE_HOME, default ./var) per docs/design.md §5."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from warehouse.connection import DEFAULT_MEMORY_LIMIT, WarehouseSettingError, check_memory_limit

REGISTERED_MODEL_NAME = "supplier_breach_risk"

# Where the feature assets compute (pipelines/resources.py): DuckDB in process, or Spark.
FEATURE_ENGINE_DUCKDB = "duckdb"
FEATURE_ENGINE_SPARK = "spark"
FEATURE_ENGINES = (FEATURE_ENGINE_DUCKDB, FEATURE_ENGINE_SPARK)
DEFAULT_SPARK_MASTER = "local[*]"


class SettingsError(ValueError):
    """An environment variable or option holds a value the pipeline cannot use (bad usage: exit code 2)."""


@dataclass(frozen=True)
class Settings:
    home: Path
    landing: Path
    policy_file: Path | None = None
    # Analyst overrides (models/overrides.py); None: `overrides.yaml` in the home folder, if present.
    overrides_file: Path | None = None
    vintage_config_file: Path | None = None  # model vintages' cadence (models/vintages.yaml when None)
    feature_engine: str = FEATURE_ENGINE_DUCKDB  # ASSURANCE_FEATURE_ENGINE / --engine: one of FEATURE_ENGINES
    spark_master: str = DEFAULT_SPARK_MASTER  # ASSURANCE_SPARK_MASTER: local[*], local[4], spark://host:7077, yarn, ...
    spark_remote: str | None = None  # ASSURANCE_SPARK_REMOTE: a Spark Connect URL (sc://host:15002); wins over the master
    # ASSURANCE_SPARK_STAGING: the folder the validated tables are written to as Parquet for Spark
    # to read (DuckDB writes it, so a local path; on a cluster, one its executors mount too);
    # None: `.work/spark-staging` in the home folder.
    spark_staging: Path | None = None
    # ASSURANCE_DUCKDB_MEMORY_LIMIT: DuckDB's buffer pool per warehouse connection before it spills
    # (warehouse/connection.py); ASSURANCE_DUCKDB_TEMP_DIRECTORY: where it spills (None: beside the file).
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    duckdb_temp_directory: Path | None = None

    def __post_init__(self) -> None:
        try:
            check_memory_limit(self.duckdb_memory_limit)
        except WarehouseSettingError as error:
            raise SettingsError(str(error)) from None
        if self.feature_engine not in FEATURE_ENGINES:
            raise SettingsError(
                f"feature engine {self.feature_engine!r} is unknown: set ASSURANCE_FEATURE_ENGINE (or --engine) "
                f"to one of {', '.join(FEATURE_ENGINES)}"
            )

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("ASSURANCE_HOME", "var")).resolve()
        landing = Path(os.environ.get("ASSURANCE_LANDING", home / "landing")).resolve()
        policy = os.environ.get("ASSURANCE_POLICY")
        overrides = os.environ.get("ASSURANCE_OVERRIDES")
        vintages = os.environ.get("ASSURANCE_VINTAGES")
        staging = os.environ.get("ASSURANCE_SPARK_STAGING")
        spill = os.environ.get("ASSURANCE_DUCKDB_TEMP_DIRECTORY")
        return cls(
            home=home,
            landing=landing,
            policy_file=Path(policy).resolve() if policy else None,
            overrides_file=Path(overrides).resolve() if overrides else None,
            vintage_config_file=Path(vintages).resolve() if vintages else None,
            feature_engine=(os.environ.get("ASSURANCE_FEATURE_ENGINE") or FEATURE_ENGINE_DUCKDB).strip().lower(),
            spark_master=os.environ.get("ASSURANCE_SPARK_MASTER") or DEFAULT_SPARK_MASTER,
            spark_remote=os.environ.get("ASSURANCE_SPARK_REMOTE") or None,
            spark_staging=Path(staging).resolve() if staging else None,
            duckdb_memory_limit=(os.environ.get("ASSURANCE_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT).strip(),
            duckdb_temp_directory=Path(spill).resolve() if spill else None,
        )

    @property
    def overrides(self) -> Path:
        """The overrides file the run reads: ASSURANCE_OVERRIDES, else `overrides.yaml` in the home folder."""
        return self.overrides_file or self.home / "overrides.yaml"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published_parquet(self) -> Path:
        return self.home / "published"

    @property
    def quarantine_parquet(self) -> Path:
        return self.home / "quarantine"

    @property
    def mlflow_tracking_uri(self) -> str:
        # sqlite URIs need four slashes for an absolute path.
        return f"sqlite:///{(self.home / 'mlflow.db').as_posix()}"

    @property
    def spark_staging_dir(self) -> Path:
        """Where the Spark engine stages the validated tables (ASSURANCE_SPARK_STAGING, else under the home)."""
        return self.spark_staging or self.home / ".work" / "spark-staging"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def reports(self) -> Path:
        return self.home / "reports"
