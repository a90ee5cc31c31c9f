"""Dagster resources: everything outside the process (warehouse file, landing zone, feature engine,
MLflow, policy file)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, PrivateAttr

from features import compute_storefront_metrics, compute_supplier_features
from pipelines.settings import FEATURE_ENGINE_DUCKDB, FEATURE_ENGINE_SPARK, Settings
from warehouse import WarehouseLimits, open_warehouse
from warehouse.connection import DEFAULT_MEMORY_LIMIT


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; one writing connection per run step."""

    path: str
    memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's buffer pool per connection (memory_limit: 2GB, 1.5GiB, 800MB); past it DuckDB "
        "spills to temp_directory. DuckDB's own default, 80% of the machine, let a stage hold that much.",
    )
    temp_directory: str = Field(
        default="", description="Where DuckDB spills past memory_limit; empty: beside the working file (<file>.tmp)."
    )

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        limits = WarehouseLimits(memory_limit=self.memory_limit, temp_directory=self.temp_directory)
        con = open_warehouse(Path(self.path), read_only=read_only, limits=limits)
        try:
            yield con
        finally:
            con.close()


class LandingZoneResource(dg.ConfigurableResource):
    """The landing-zone folder of docs/design.md §3 the run ingests."""

    path: str
    quarantine_parquet_dir: str


class MLflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry."""

    tracking_uri: str
    registered_model_name: str
    experiment_name: str = "supplier_breach_risk"
    # The models the amount rests on (docs/design.md §4); the breach model above is information.
    loss_rate_model_name: str = "supplier_loss_rate"
    default_model_name: str = "supplier_default_risk"
    # The refit cadence and minimum outcome months of the model vintages (models/vintages.py,
    # ASSURANCE_VINTAGES); empty means the packaged models/vintages.yaml.
    vintage_config_file: str = ""


class PublishedStoreResource(dg.ConfigurableResource):
    """Where the hive-partitioned Parquet copy of the published tables lands."""

    parquet_root: str
    reports_dir: str


class PolicyResource(dg.ConfigurableResource):
    """The analyst's decision inputs: the limit-policy file and the overrides file."""

    policy_file: str = Field(default="", description="Limit-policy YAML; empty: the packaged default policy.")
    overrides_file: str = Field(
        default="", description="Analyst overrides YAML (models/overrides.py); empty or absent file: no overrides."
    )
    overrides_required: bool = Field(
        default=False, description="The overrides file was named explicitly (ASSURANCE_OVERRIDES): it must exist."
    )


class FeatureEngineUnavailableError(RuntimeError):
    """The configured feature engine cannot start here (pyspark or Java missing): bad usage, exit code 2."""


SPARK_EXTRA_MISSING = "pyspark is not installed: install the spark extra: uv sync --extra spark"
_LOCAL_MASTER = re.compile(r"^local(\[(?P<cores>\*|\d+)(,\d+)?\])?$")


class DuckDBFeatureEngineResource(dg.ConfigurableResource):
    """The features computed in process on the warehouse's own DuckDB connection (the default)."""

    @property
    def description(self) -> str:
        return "duckdb (in process)"

    def check_available(self) -> None:
        """Nothing to check: DuckDB is the warehouse itself."""

    def supplier_features(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table:
        return compute_supplier_features(con, as_of_dates)

    def storefront_metrics(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table:
        return compute_storefront_metrics(con, as_of_dates)


class SparkFeatureEngineResource(dg.ConfigurableResource):
    """The features computed by Spark (features/spark_engine.py: the same SQL, the same rows and values).

    The validated tables are staged as Parquet for Spark to read, the features come back as Arrow
    and are landed in the DuckDB warehouse by the assets, as on DuckDB. The session is started on
    first use (a run that computes no features starts no JVM) and stopped when the run ends.
    """

    master: str = Field(
        default="local[*]",
        description="Spark master URL: local[*] (every core here), local[4], spark://host:7077, yarn, k8s://...",
    )
    remote: str = Field(
        default="",
        description="Spark Connect URL (sc://host:15002); when set it is used instead of `master` and no local Java is needed.",
    )
    staging_dir: str = Field(
        description="Folder the validated tables are written to as Parquet for Spark to read; on a cluster, "
        "one its executors can read at the same path (a shared mount).",
    )
    driver_memory: str = Field(default="2g", description="Driver memory of a local-mode session (local[...] masters).")

    _session: Any = PrivateAttr(default=None)
    _owns_session: bool = PrivateAttr(default=False)

    @property
    def description(self) -> str:
        return f"spark ({self.remote or self.master})"

    def check_available(self) -> None:
        """Fail early, in one line, when pyspark (or, for a non-Connect session, Java 17+) is missing."""
        try:
            import pyspark.sql  # noqa: F401
            if self.remote:
                import pyspark.sql.connect.session  # noqa: F401 - the Connect client's own dependencies
        except ImportError:
            raise FeatureEngineUnavailableError(f"feature engine {self.description}: {SPARK_EXTRA_MISSING}") from None
        if not self.remote:
            from features.spark_engine import JAVA_MISSING, find_java_home, java_major_version

            try:
                java_home = find_java_home()
                if java_major_version(java_home) < 17:
                    raise RuntimeError(f"{java_home} is older than Java 17. {JAVA_MISSING}")
            except RuntimeError as error:
                raise FeatureEngineUnavailableError(f"feature engine {self.description}: {error}") from None

    def session(self):
        """The SparkSession of this run, started on first use; its time zone is UTC, as the features need."""
        if self._session is None:
            self.check_available()
            from pyspark.sql import SparkSession

            # A session already running in this process (a notebook's, a test's) is used and left running.
            self._owns_session = SparkSession.getActiveSession() is None
            self._session = self._start_session()
        return self._session

    def _start_session(self):
        from features.spark_engine import local_spark_session

        local = _LOCAL_MASTER.match(self.master)
        if local and not self.remote:
            cores = local.group("cores")
            count = (os.cpu_count() or 1) if cores in (None, "*") else int(cores)
            return local_spark_session(
                app_name="supplier-assurance-features", cores=count, driver_memory=self.driver_memory,
                shuffle_partitions=count,
            )
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName("supplier-assurance-features")
        if self.remote:
            session = builder.remote(self.remote).getOrCreate()
        else:
            from features.spark_engine import find_java_home

            os.environ["JAVA_HOME"] = find_java_home()
            session = builder.master(self.master).config("spark.sql.session.timeZone", "UTC").getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None and self._owns_session:
            self._session.stop()
        self._session = None

    def supplier_features(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table:
        from features.spark_engine import compute_supplier_features_spark

        return self._on_staged_tables(con, as_of_dates, compute_supplier_features_spark)

    def storefront_metrics(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> pa.Table:
        from features.spark_engine import compute_storefront_metrics_spark

        return self._on_staged_tables(con, as_of_dates, compute_storefront_metrics_spark)

    def _on_staged_tables(self, con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date],
                          compute: Callable[..., pa.Table]) -> pa.Table:
        spark = self.session()
        # A folder of its own per computation, removed afterwards: the result is in memory by then,
        # and a rerun never reads a previous run's tables.
        staged = Path(self.staging_dir) / f"validated-{uuid.uuid4().hex[:12]}"
        try:
            stage_validated_tables(con, staged)
            return compute(spark, staged, as_of_dates)
        finally:
            shutil.rmtree(staged, ignore_errors=True)


def stage_validated_tables(con: duckdb.DuckDBPyConnection, folder: Path, schema: str = "validated") -> list[str]:
    """Write every validated table the features read as `<folder>/<table>/part-0.parquet`, streamed
    in record batches (no table is held whole in memory); an absent optional table is not written
    (its features are NULL on Spark as on DuckDB). Returns the tables written."""
    from features.spark_engine import SOURCE_TABLES

    present = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()}
    written = []
    for table in (name for name in SOURCE_TABLES if name in present):
        (folder / table).mkdir(parents=True, exist_ok=True)
        reader = con.execute(f'SELECT * FROM {schema}."{table}"').fetch_record_batch()
        with pq.ParquetWriter(folder / table / "part-0.parquet", reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        written.append(table)
    return written


# One feature-engine resource per setting (pipelines.settings.FEATURE_ENGINES), picked by it when the
# definitions are built: the assets see the FeatureEngine protocol only, never which engine it is.
FEATURE_ENGINE_RESOURCES: dict[str, Callable[[Settings], DuckDBFeatureEngineResource | SparkFeatureEngineResource]] = {
    FEATURE_ENGINE_DUCKDB: lambda settings: DuckDBFeatureEngineResource(),
    FEATURE_ENGINE_SPARK: lambda settings: SparkFeatureEngineResource(
        master=settings.spark_master, remote=settings.spark_remote or "", staging_dir=str(settings.spark_staging_dir),
    ),
}


def feature_engine_resource(settings: Settings) -> DuckDBFeatureEngineResource | SparkFeatureEngineResource:
    return FEATURE_ENGINE_RESOURCES[settings.feature_engine](settings)
