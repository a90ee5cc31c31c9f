"""MLflow record and registry of breach models: log, register, load by alias, promote.

Conventions
-----------
* Tracking store: ``sqlite:////abs/home/mlflow.db`` (``tracking_uri_for_home``); run
  artifacts live next to it in ``<home>/mlartifacts`` so one home folder holds everything.
* Registered model ``supplier_breach_risk``; aliases, not stages: ``champion`` (what the
  pipeline scores with), ``challenger`` (newest candidate), ``previous_champion`` (the
  rollback target after a promotion).
* A model version string is ``"supplier_breach_risk/<n>"``: readable in published tables
  and directly usable as ``models:/<version string>``.
* The first registered model becomes champion; later ones become challenger and reach
  champion only through ``promote_if_better``, whose gates compare both models on the
  *same* validation rows. Every decision is logged as its own MLflow run and as tags on
  the challenger's model version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pickle
import shutil
import sqlite3
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as distribution_version
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema

from models.metrics import classification_metrics
from models.loss_rate import EXPOSURE_COLUMN, LOSS_RATE_COLUMN, LossRateModel, LossRateTrainingResult, coverage_refunds, exposure_rows
from models.metrics import loss_rate_metrics
from models.model_card import render_loss_rate_card, render_model_card
from models.model_files import MODEL_FILES_ARTIFACT, RiskModel, save_model_files
from models.model_features import LABEL_COLUMN
from models.plots import feature_importance_figure, loss_rate_calibration_figure, reliability_figure, roc_figure
from models.scoring import BreachRiskModel
from models.training import TrainingResult, complete_label_rows, training_data_fingerprint

REGISTERED_MODEL_NAME = "supplier_breach_risk"
EXPERIMENT_NAME = "supplier_breach_risk"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
ARTIFACTS_FOLDER = "mlartifacts"
# Records that the experiment is model training, not GenAI. MLflow 3.17's UI does not read it: a
# switch at its top left, GenAI by default, picks the view (docs/ui_tour.md).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
RUN_DESCRIPTION_TAG = "mlflow.note.content"
INPUT_EXAMPLE_ROWS = 5
# The code MLflow runs to load a registered model (logged as code, never pickled).
PYFUNC_CODE_FILE = Path(__file__).with_name("mlflow_pyfunc.py")


class ModelAliasNotFound(LookupError):
    """No registered version carries the requested alias (e.g. no champion yet)."""


def tracking_uri_for_home(home: str | Path) -> str:
    """The SQLite tracking URI for a home folder (absolute path: four slashes)."""
    return f"sqlite:///{Path(home).resolve() / 'mlflow.db'}"


def default_artifact_location(tracking_uri: str) -> str | None:
    """``<home>/mlartifacts`` for a SQLite store in ``<home>``; None for other stores."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db_path.parent / "mlartifacts").resolve().as_uri()


def version_string(name: str, version: str | int) -> str:
    return f"{name}/{version}"


# The project's packages the model code imports, copied into each logged model (code_paths).
MODEL_CODE_PACKAGES = ("models", "data_contracts")


def _pip_requirements() -> list[str]:
    """What ``models.mlflow_pyfunc`` and the ``models`` modules it loads import, pinned to
    this environment (tests/test_models_mlflow_native.py checks the list against the
    imports). Explicit: MLflow's inference of requirements costs ~10 s per logged model."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lgb.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={distribution_version('scipy')}",
        f"numba=={distribution_version('numba')}",  # models.tree_shap, models.reason_codes
        f"threadpoolctl=={distribution_version('threadpoolctl')}",
        f"pyyaml=={distribution_version('pyyaml')}",
        # data_contracts (the outcome definitions the models record) and what its package imports
        f"duckdb=={distribution_version('duckdb')}",
        f"pyarrow=={distribution_version('pyarrow')}",
        f"pydantic=={distribution_version('pydantic')}",
    ]


def ensure_tracking_store(tracking_uri: str) -> None:
    """Create a SQLite tracking store whole or not at all.

    MLflow creates its tables on first use through a series of migrations; a process killed
    in the middle leaves a half-made database that every later run fails on (``table
    _alembic_tmp_experiments already exists``). So a new store is made in a temporary file
    beside its path and moved into place only once complete; a leftover temporary file of a
    killed attempt is replaced."""
    if urlparse(tracking_uri).scheme != "sqlite":
        return
    db_path = Path(tracking_uri.removeprefix("sqlite:///"))
    if db_path.exists():
        return
    db_path.parent.mkdir(parents=True, exist_ok=True)
    staging = db_path.with_name(f".{db_path.name}.creating")
    staging.unlink(missing_ok=True)
    MlflowClient(tracking_uri=f"sqlite:///{staging}").search_experiments(max_results=1)
    os.replace(staging, db_path)


@contextlib.contextmanager
def _tracking(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point MLflow's fluent API at ``tracking_uri`` for the block, then restore it."""
    ensure_tracking_store(tracking_uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(previous)


def _experiment_id(client: MlflowClient, tracking_uri: str, experiment_name: str) -> str:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return client.create_experiment(
            experiment_name, artifact_location=default_artifact_location(tracking_uri),
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # experiments made before the tag
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    _keep_experiment_artifacts_in_home(experiment, tracking_uri)
    return experiment.experiment_id


def _keep_experiment_artifacts_in_home(experiment, tracking_uri: str) -> None:
    """Point an experiment of a copied or moved home at this home's ``mlartifacts``.

    New runs and models are written under their experiment's recorded artifact location,
    which MLflow keeps absolute and offers no call to change: in a moved home they would
    land in (or recreate) the old folder. So the one recorded root is rewritten in the
    store (the ``experiments`` table's ``artifact_location``, unchanged since MLflow 1);
    what was logged before is found by ``artifact_location_in_home``."""
    recorded = experiment.artifact_location
    in_home = artifact_location_in_home(recorded, tracking_uri)
    if in_home == recorded or Path(in_home).as_uri() == recorded:
        return
    db_path = Path(tracking_uri.removeprefix("sqlite:///"))
    with contextlib.closing(sqlite3.connect(db_path)) as con, con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (Path(in_home).as_uri(), int(experiment.experiment_id)),
        )


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


def model_card(result: TrainingResult | LossRateTrainingResult, title: str) -> str:
    if isinstance(result, LossRateTrainingResult):
        return render_loss_rate_card(result, title)
    return render_model_card(result, title)


def log_loss_rate_run(result: LossRateTrainingResult, title: str) -> None:
    """Params, metrics, calibration plots and model card of a loss-rate model into the active run."""
    params = {f"config.{k}": v for k, v in result.config.to_dict().items()}
    params.update({f"window.{k}": v for k, v in result.split.describe().items()})
    params["features"] = ",".join(f.name for f in result.features)
    params["monotone_constraints"] = ",".join(str(f.risk_direction) for f in result.features)
    params["data_fingerprint_sha256"] = result.data_fingerprint
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
    mlflow.log_metrics(_finite(result.metrics) | {f"rows_{k}": float(v) for k, v in result.row_counts.items()})
    mlflow.set_tags({"data_fingerprint_sha256": result.data_fingerprint, "model_family": "lightgbm-tweedie",
                     "outcome_definition": result.outcome_definition})
    for figure, file_name in (
        (loss_rate_calibration_figure(result.calibration_tables), "plots/loss_rate_calibration_evaluation.png"),
        (feature_importance_figure(result.feature_importance), "plots/feature_importance.png"),
    ):
        mlflow.log_figure(figure, file_name)
        plt.close(figure)
    for cover, table in result.calibration_tables.items():
        mlflow.log_text(table.to_csv(index=False), f"calibration_by_decile_{cover}.csv")
    mlflow.log_text(render_loss_rate_card(result, title), "model_card.md")
    mlflow.log_dict(
        {"data_fingerprint_sha256": result.data_fingerprint, "row_counts": result.row_counts,
         "split": result.split.describe()},
        "training_data.json",
    )


def log_training_run(result: TrainingResult, run_name: str | None = None, title: str = REGISTERED_MODEL_NAME) -> None:
    """Params, metrics, figures, model card and data fingerprint into the active run."""
    if isinstance(result, LossRateTrainingResult):
        log_loss_rate_run(result, title)
        return
    params = {f"config.{k}": v for k, v in result.config.to_dict().items() if k != "lightgbm_overrides"}
    params.update({f"window.{k}": v for k, v in result.split.describe().items()})
    params["features"] = ",".join(f.name for f in result.features)
    params["monotone_constraints"] = ",".join(str(f.risk_direction) for f in result.features)
    params["calibration_method_chosen"] = result.calibration.method
    params["best_iteration"] = result.best_iteration
    params["data_fingerprint_sha256"] = result.data_fingerprint
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
    mlflow.log_metrics(_finite(result.metrics) | {f"rows_{k}": float(v) for k, v in result.row_counts.items()})
    mlflow.set_tags({"data_fingerprint_sha256": result.data_fingerprint, "model_family": "lightgbm",
                     "outcome_definition": result.outcome_definition})

    evaluation = result.evaluation_frame
    y = evaluation[result.label_column].astype(int).to_numpy()
    uncalibrated = "uncalibrated blend" if result.config.logistic_blend > 0 else "uncalibrated booster"
    curves = {
        "calibrated": (y, evaluation["predicted_probability"].to_numpy()),
        uncalibrated: (y, evaluation["raw_probability"].to_numpy()),
    }
    for figure, file_name in (
        (roc_figure({"model": curves["calibrated"]}), "plots/roc_evaluation.png"),
        (reliability_figure(curves), "plots/reliability_evaluation.png"),
        (feature_importance_figure(result.feature_importance), "plots/feature_importance.png"),
    ):
        mlflow.log_figure(figure, file_name)
        plt.close(figure)
    mlflow.log_text(render_model_card(result, title), "model_card.md")
    mlflow.log_text(result.feature_importance.to_csv(index=False), "feature_importance.csv")
    mlflow.log_dict(
        {"data_fingerprint_sha256": result.data_fingerprint, "row_counts": result.row_counts,
         "split": result.split.describe()},
        "training_data.json",
    )


def model_input_example(model: RiskModel, frame: pd.DataFrame, rows: int = INPUT_EXAMPLE_ROWS) -> pd.DataFrame:
    """A few rows of the model's inputs typed as its signature says: numbers as double,
    categories as text (None: missing, or a level the model never saw)."""
    example = model.design_matrix(frame.head(rows)).reset_index(drop=True)
    for feature in model.features:
        if feature.categorical:
            values = example[feature.name].astype(object)
            example[feature.name] = values.where(values.notna(), None)
    return example


def model_signature(model: RiskModel, example: pd.DataFrame) -> ModelSignature:
    """Every model input required (numbers as double, categories as string); the outputs
    as the pyfunc returns them for ``example``."""
    inputs = Schema([ColSpec("string" if f.categorical else "double", f.name) for f in model.features])
    return ModelSignature(inputs=inputs, outputs=infer_signature(example, model.pyfunc_predict(example)).outputs)


def run_description(result: TrainingResult | LossRateTrainingResult, registered_model_name: str) -> str:
    """What was trained on which months (the run's description in the MLflow UI)."""
    split = result.split.describe()
    rows = sum(result.row_counts.get(window, 0) for window in ("train", "calibration", "evaluation"))
    return (
        f"{registered_model_name}: `{result.label_column}` model trained on {split['train']}, calibrated on "
        f"{split['calibration']}, evaluated out of time on {split['evaluation']}; {rows:,} supplier-months, "
        f"training data sha256 {result.data_fingerprint}."
    )


def training_dataset(rows: pd.DataFrame, name: str, fingerprint: str, schema_sample_rows: int = 1000):
    """``rows`` as an MLflow dataset: its digest is the training-data fingerprint (cut to
    MLflow's 36-character limit), its profile counts every row.

    MLflow infers a dataset's schema value by value (measured 13 s for 40,000 rows of 28
    columns), so the column types are inferred on the first ``schema_sample_rows`` rows and
    each column's ``required`` flag (no missing value) is taken from all rows."""
    dataset = mlflow.data.from_pandas(rows, name=name, digest=fingerprint[:36])
    sample = _sample_schema(rows.head(schema_sample_rows))
    if sample is not None:
        has_missing = rows.isna().any()
        dataset.schema = Schema([ColSpec(c.type, c.name, required=not bool(has_missing[c.name])) for c in sample.inputs])
    return dataset


# Inferred schemas by sample content: a model's vintages learn from rows in key order, oldest
# month first, so their samples are the same rows and the inference (~0.3 CPU s) runs once.
_SAMPLE_SCHEMAS: dict[str, Schema | None] = {}
_SAMPLE_SCHEMAS_KEPT = 16


def _sample_schema(sample: pd.DataFrame) -> Schema | None:
    """MLflow's inferred schema of ``sample``, inferred once per sample content (column names,
    dtypes and values)."""
    digest = hashlib.sha256("|".join(f"{c}:{t}" for c, t in sample.dtypes.items()).encode())
    digest.update(pd.util.hash_pandas_object(sample, index=False).to_numpy().tobytes())
    key = digest.hexdigest()
    if key not in _SAMPLE_SCHEMAS:
        if len(_SAMPLE_SCHEMAS) >= _SAMPLE_SCHEMAS_KEPT:
            _SAMPLE_SCHEMAS.clear()
        with warnings.catch_warnings():
            # MLflow's hint about integer columns concerns model signatures, not a dataset record.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            _SAMPLE_SCHEMAS[key] = mlflow.data.from_pandas(sample, digest=key[:36]).schema
    return _SAMPLE_SCHEMAS[key]


def _log_model_files(result: TrainingResult | LossRateTrainingResult, registered_model_name: str) -> ModelInfo:
    """Log ``result.model`` into the active run as an MLflow model from code: the code file
    ``models/mlflow_pyfunc.py``, the model's plain files as its ``model_files`` artifact,
    a copy of the ``models`` package as its code, a signature and an input example; with
    the run's description and its training set as a dataset input. Returns MLflow's
    ``ModelInfo``."""
    mlflow.set_tag(RUN_DESCRIPTION_TAG, run_description(result, registered_model_name))
    if result.training_rows is not None:
        mlflow.log_input(
            training_dataset(result.training_rows, f"{registered_model_name}_training_set", result.data_fingerprint),
            context="training",
        )
    example = model_input_example(result.model, result.evaluation_frame) if len(result.evaluation_frame) else None
    with tempfile.TemporaryDirectory() as tmp:
        files = save_model_files(result.model, Path(tmp) / MODEL_FILES_ARTIFACT)
        packages = []
        for name in MODEL_CODE_PACKAGES:
            packages.append(Path(tmp) / name)
            shutil.copytree(PYFUNC_CODE_FILE.parents[1] / name, packages[-1],
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE_FILE),
            artifacts={MODEL_FILES_ARTIFACT: str(files)},
            code_paths=[str(package) for package in packages],
            signature=None if example is None else model_signature(result.model, example),
            input_example=example,
            pip_requirements=_pip_requirements(),
        )


def log_and_register(
    result: TrainingResult,
    tracking_uri: str,
    *,
    registered_model_name: str = REGISTERED_MODEL_NAME,
    experiment_name: str = EXPERIMENT_NAME,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    set_alias: bool = True,
) -> str:
    """Log a training run with its model, register it, set its alias; return its version.

    The first version of the registered model becomes ``champion``; any later one becomes
    ``challenger`` (promote it with ``promote_if_better``). With ``set_alias=False`` (model
    vintages, ``models.vintages``) no alias is touched and ``tags`` also go on the version.
    Returns the version string ``"<name>/<n>"``; the returned model's
    ``metadata['mlflow_run_id']`` is set too.
    """
    with _tracking(tracking_uri) as client:
        experiment_id = _experiment_id(client, tracking_uri, experiment_name)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name or "train") as run:
            if tags:
                mlflow.set_tags(tags)
            log_training_run(result, title=registered_model_name)
            model_info = _log_model_files(result, registered_model_name)
            # the version's tags go in with its registration (one write, not one per tag)
            version_tags = {"data_fingerprint_sha256": result.data_fingerprint,
                            "outcome_definition": result.outcome_definition}
            model_version = mlflow.register_model(model_info.model_uri, registered_model_name,
                                                  tags=version_tags if set_alias else version_tags | (tags or {}))
        if set_alias:
            alias = CHALLENGER if _alias_version(client, registered_model_name, CHAMPION) else CHAMPION
            client.set_registered_model_alias(registered_model_name, alias, model_version.version)
            client.set_model_version_tag(registered_model_name, model_version.version, "initial_alias", alias)
        client.update_model_version(
            registered_model_name, model_version.version, description=model_card(result, registered_model_name)
        )
    version = version_string(registered_model_name, model_version.version)
    result.model.version = version
    result.model.metadata["mlflow_run_id"] = run.info.run_id
    return version


class LegacyPickledModelWarning(UserWarning):
    """A registered version from before models were stored as plain files: it was unpickled."""


def artifact_location_in_home(location: str, tracking_uri: str) -> str:
    """``location`` (a recorded artifact URI) moved under this home's ``mlartifacts``.

    The tracking store records absolute artifact locations, so a home folder that was
    copied or moved still points at the old place. Everything of a home's store lies under
    ``<home>/mlartifacts``, so the part of a local location after its last ``mlartifacts``
    is its place in any copy of the home: it is re-rooted at the current home's folder,
    whether or not the old place still exists. Other URIs (remote stores) are returned as
    they are."""
    home_artifacts = default_artifact_location(tracking_uri)
    parsed = urlparse(location)
    if home_artifacts is None or parsed.scheme not in ("", "file"):
        return location
    parts = Path(url2pathname(parsed.path)).parts
    if ARTIFACTS_FOLDER not in parts:
        return location
    inside = parts[len(parts) - 1 - parts[::-1].index(ARTIFACTS_FOLDER) + 1:]
    return str(Path(url2pathname(urlparse(home_artifacts).path)).joinpath(*inside))


@contextlib.contextmanager
def _sys_path_kept() -> Iterator[None]:
    # Loading a model with code_paths puts the model's copy of the package in front of
    # sys.path for good; this process already runs the package, so keep its path as it was.
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


def load_registered_model(client: MlflowClient, tracking_uri: str, name: str, number: str) -> RiskModel:
    """The model of registered version ``number`` of ``name``, from this home's artifacts.

    Models from code (``models.mlflow_pyfunc``) load from their JSON and booster files;
    nothing is unpickled. A version registered by older code (a cloudpickled model,
    ``python_model.pkl``) still loads, with a ``LegacyPickledModelWarning``: retrain to
    replace it."""
    location = artifact_location_in_home(client.get_model_version_download_uri(name, number), tracking_uri)
    legacy_pickle = Path(location) / "python_model.pkl"
    if legacy_pickle.is_file():
        warnings.warn(
            f"{version_string(name, number)} is a pickled model of an older version of this code (loading it runs "
            "whatever the pickle holds): retrain it to store it as plain files", LegacyPickledModelWarning, stacklevel=3,
        )
        with legacy_pickle.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 (a home's own model, as before; the warning says to replace it)
    with _sys_path_kept():
        return mlflow.pyfunc.load_model(location).unwrap_python_model().model


def load_model_by_alias(
    tracking_uri: str, alias: str = CHAMPION, *, registered_model_name: str = REGISTERED_MODEL_NAME
) -> tuple[BreachRiskModel, str]:
    """The ``BreachRiskModel`` behind ``alias`` and its version string (also ``model.version``).

    Raises ``ModelAliasNotFound`` when no version carries the alias.
    """
    with _tracking(tracking_uri) as client:
        number = _alias_version(client, registered_model_name, alias)
        if number is None:
            raise ModelAliasNotFound(
                f"registered model {registered_model_name!r} has no version with alias {alias!r} "
                f"in {tracking_uri}"
            )
        # Load the pinned version, not the alias: the alias may move while we load.
        model = load_registered_model(client, tracking_uri, registered_model_name, number)
    model.version = version_string(registered_model_name, number)
    return model, model.version


def load_model_version(tracking_uri: str, version: str):
    """The model registered as ``"<name>/<n>"`` (a ``BreachRiskModel`` or ``LossRateModel``)."""
    name, number = version.rsplit("/", 1)
    with _tracking(tracking_uri) as client:
        model = load_registered_model(client, tracking_uri, name, number)
    model.version = version
    return model


def registered_version_tags(tracking_uri: str, registered_model_name: str) -> dict[str, dict[str, str]]:
    """Every registered version of ``registered_model_name`` (``"<name>/<n>"``) with its tags, oldest first."""
    with _tracking(tracking_uri) as client:
        versions = client.search_model_versions(f"name = '{registered_model_name}'")
    ordered = sorted(versions, key=lambda v: int(v.version))
    return {version_string(registered_model_name, v.version): dict(v.tags) for v in ordered}


def set_version_tags(tracking_uri: str, version: str, tags: dict[str, str]) -> None:
    """Tag the registered version ``"<name>/<n>"``."""
    name, number = version.rsplit("/", 1)
    with _tracking(tracking_uri) as client:
        for key, value in tags.items():
            client.set_model_version_tag(name, number, key, str(value)[:5000])


def point_alias(tracking_uri: str, version: str, alias: str = CHAMPION) -> None:
    """Move ``alias`` to the registered version ``"<name>/<n>"`` (no-op when it is there already)."""
    name, number = version.rsplit("/", 1)
    with _tracking(tracking_uri) as client:
        if _alias_version(client, name, alias) != number:
            client.set_registered_model_alias(name, alias, number)


def alias_data_fingerprint(
    tracking_uri: str, alias: str = CHAMPION, *, registered_model_name: str = REGISTERED_MODEL_NAME
) -> str | None:
    """The sha256 of the training data behind ``alias`` (None: no such alias or no tag).

    Lets a pipeline skip retraining when the training data has not changed.
    """
    with _tracking(tracking_uri) as client:
        number = _alias_version(client, registered_model_name, alias)
        if number is None:
            return None
        return client.get_model_version(registered_model_name, number).tags.get("data_fingerprint_sha256")


@dataclass(frozen=True)
class PromotionGates:
    """A challenger replaces the champion only if, on the same rows, it is not worse by more
    than these margins. Small tolerances keep noise from blocking an equal model; they are
    tight enough that a real regression is refused."""

    max_auc_drop: float = 0.005
    max_ece_increase: float = 0.005
    max_brier_relative_increase: float = 0.01
    # loss-rate models: ranking (exposure-weighted Gini) and fit (Tweedie deviance)
    max_gini_drop: float = 0.01
    max_deviance_relative_increase: float = 0.01


@dataclass
class PromotionDecision:
    promoted: bool
    reasons: list[str]
    champion_version: str | None
    challenger_version: str | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    validation_rows: int = 0
    validation_fingerprint: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _apply_gates(checks: list[tuple[bool, str, str]]) -> tuple[bool, list[str]]:
    """(failed?, reason when failed, reason when passed) per gate: every gate yields a reason."""
    return (not any(failed for failed, _, _ in checks),
            [fail if failed else ok for failed, fail, ok in checks])


def compare_loss_rate_on_rows(
    champion_metrics: dict[str, float], challenger_metrics: dict[str, float], gates: PromotionGates
) -> tuple[bool, list[str]]:
    """The loss-rate gates: Gini not worse by more than its margin, deviance likewise."""
    new, old = challenger_metrics, champion_metrics
    gini_delta = new["gini"] - old["gini"]
    ratio = new["tweedie_deviance"] / max(old["tweedie_deviance"], 1e-12) - 1
    return _apply_gates([
        (math.isfinite(gini_delta) and gini_delta < -gates.max_gini_drop,
         f"Gini worse by {-gini_delta:.4f} > {gates.max_gini_drop}",
         f"Gini {new['gini']:.4f} vs {old['gini']:.4f} ok"),
        (ratio > gates.max_deviance_relative_increase,
         f"Tweedie deviance worse by {ratio:.2%} > {gates.max_deviance_relative_increase:.2%}",
         f"Tweedie deviance {new['tweedie_deviance']:.6f} vs {old['tweedie_deviance']:.6f} ok"),
    ])


def validation_metrics(model, rows: pd.DataFrame, label_column: str, proba_column: str | None = None) -> dict[str, float]:
    """The metrics the gates compare, for either kind of model, on the same rows (a breach or
    default model's probabilities read from ``proba_column`` when given)."""
    if isinstance(model, LossRateModel):
        refund = sum(coverage_refunds(rows).values())
        return loss_rate_metrics(refund, rows[EXPOSURE_COLUMN].to_numpy(float), model.predict_loss_rate(rows),
                                 float(model.metadata.get("tweedie_variance_power", 1.5)))
    proba = rows[proba_column].to_numpy(float) if proba_column else model.predict_proba(rows)
    return classification_metrics(rows[label_column].astype(int).to_numpy(), proba)


def compare_on_rows(
    champion_metrics: dict[str, float], challenger_metrics: dict[str, float], gates: PromotionGates
) -> tuple[bool, list[str]]:
    """Apply the gates; every gate yields a reason, passed or failed."""
    if "gini" in challenger_metrics:
        return compare_loss_rate_on_rows(champion_metrics, challenger_metrics, gates)
    new, old = challenger_metrics, champion_metrics
    auc_delta = new["auc"] - old["auc"]
    ece_delta = new["ece"] - old["ece"]
    brier_ratio = new["brier"] / max(old["brier"], 1e-12) - 1
    auc_failed = not math.isfinite(auc_delta) or auc_delta < -gates.max_auc_drop
    return _apply_gates([
        (auc_failed,
         "AUC undefined on the validation rows (a single class): cannot compare" if not math.isfinite(auc_delta)
         else f"AUC worse by {-auc_delta:.4f} > {gates.max_auc_drop}",
         f"AUC {new['auc']:.4f} vs {old['auc']:.4f} (delta {auc_delta:+.4f}) ok"),
        (ece_delta > gates.max_ece_increase,
         f"ECE worse by {ece_delta:.4f} > {gates.max_ece_increase}",
         f"ECE {new['ece']:.4f} vs {old['ece']:.4f} ok"),
        (brier_ratio > gates.max_brier_relative_increase,
         f"Brier worse by {brier_ratio:.2%} > {gates.max_brier_relative_increase:.2%}",
         f"Brier {new['brier']:.5f} vs {old['brier']:.5f} ok"),
    ])


def _validation_rows(validation: pd.DataFrame, label_column: str) -> pd.DataFrame:
    return exposure_rows(validation) if label_column == LOSS_RATE_COLUMN else complete_label_rows(validation, label_column)


def gate_challenger(
    champion,
    challenger,
    validation: pd.DataFrame,
    *,
    label_column: str = LABEL_COLUMN,
    gates: PromotionGates | None = None,
    challenger_proba_column: str | None = None,
) -> PromotionDecision:
    """The promotion gates between two loaded models on the same rows, touching no alias.

    ``champion`` None: the challenger passes. A champion that cannot score the rows (the
    feature set moved on) cannot serve either, so the challenger passes too.
    ``challenger_proba_column``: a column of ``validation`` holding the challenger's calibrated
    probability of each row (a breach or default vintage's own ``evaluation_frame`` carries it
    as ``predicted_probability``), read instead of scoring the rows again."""
    gates = gates or PromotionGates()
    rows = _validation_rows(validation, label_column)
    decision = PromotionDecision(
        promoted=False,
        reasons=[],
        champion_version=getattr(champion, "version", None),
        challenger_version=getattr(challenger, "version", None),
        validation_rows=len(rows),
        validation_fingerprint=training_data_fingerprint(rows) if len(rows) else None,
    )
    decision.challenger_metrics = validation_metrics(challenger, rows, label_column, challenger_proba_column)
    if champion is None:
        decision.promoted = True
        decision.reasons.append("no champion registered: the challenger becomes champion")
        return decision
    try:
        decision.champion_metrics = validation_metrics(champion, rows, label_column)
    except KeyError as missing:
        decision.promoted = True
        decision.reasons.append(f"champion cannot score the validation rows ({missing}): challenger takes over")
        return decision
    decision.promoted, decision.reasons = compare_on_rows(decision.champion_metrics, decision.challenger_metrics, gates)
    return decision


def promote_if_better(
    tracking_uri: str,
    validation: pd.DataFrame,
    *,
    gates: PromotionGates | None = None,
    registered_model_name: str = REGISTERED_MODEL_NAME,
    experiment_name: str = EXPERIMENT_NAME,
    label_column: str = LABEL_COLUMN,
) -> PromotionDecision:
    """Promote ``challenger`` to ``champion`` if it passes ``gates`` on ``validation``.

    ``validation`` is a features-with-labels frame (only complete labels are used); pass
    rows neither model trained on, typically the challenger's ``evaluation_frame``. On
    promotion the old champion keeps the alias ``previous_champion`` and the challenger
    alias is removed. The decision is returned and logged either way.
    """
    gates = gates or PromotionGates()
    with _tracking(tracking_uri) as client:
        champion_number = _alias_version(client, registered_model_name, CHAMPION)
        challenger_number = _alias_version(client, registered_model_name, CHALLENGER)
    champion_version = version_string(registered_model_name, champion_number) if champion_number else None
    challenger_version = version_string(registered_model_name, challenger_number) if challenger_number else None
    if challenger_number is None or challenger_number == champion_number:
        rows = _validation_rows(validation, label_column)
        return PromotionDecision(
            promoted=False,
            reasons=["no challenger registered: nothing to promote" if challenger_number is None
                     else "challenger is already the champion"],
            champion_version=champion_version, challenger_version=challenger_version, validation_rows=len(rows),
            validation_fingerprint=training_data_fingerprint(rows) if len(rows) else None,
        )
    challenger, _ = load_model_by_alias(tracking_uri, CHALLENGER, registered_model_name=registered_model_name)
    champion = (load_model_by_alias(tracking_uri, CHAMPION, registered_model_name=registered_model_name)[0]
                if champion_number is not None else None)
    decision = gate_challenger(champion, challenger, validation, label_column=label_column, gates=gates)
    _record_decision(tracking_uri, decision, gates, registered_model_name, experiment_name,
                     champion_number, challenger_number)
    return decision


def _record_decision(
    tracking_uri: str,
    decision: PromotionDecision,
    gates: PromotionGates,
    name: str,
    experiment_name: str,
    champion_number: str | None,
    challenger_number: str,
) -> None:
    with _tracking(tracking_uri) as client:
        if decision.promoted:
            if champion_number is not None:
                client.set_registered_model_alias(name, PREVIOUS_CHAMPION, champion_number)
            client.set_registered_model_alias(name, CHAMPION, challenger_number)
            client.delete_registered_model_alias(name, CHALLENGER)
        outcome = "promoted" if decision.promoted else "refused"
        client.set_model_version_tag(name, challenger_number, "promotion_decision", outcome)
        client.set_model_version_tag(name, challenger_number, "promotion_reasons", "; ".join(decision.reasons)[:5000])
        experiment_id = _experiment_id(client, tracking_uri, experiment_name)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"promotion-{outcome}"):
            mlflow.set_tags({
                "kind": "promotion_decision",
                "decision": outcome,
                "champion_version": str(decision.champion_version),
                "challenger_version": str(decision.challenger_version),
            })
            mlflow.log_params({f"gate.{k}": v for k, v in asdict(gates).items()})
            mlflow.log_metrics(_finite({f"champion_{k}": v for k, v in decision.champion_metrics.items()}))
            mlflow.log_metrics(_finite({f"challenger_{k}": v for k, v in decision.challenger_metrics.items()}))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "promotion_decision.json"
                path.write_text(json.dumps(decision.to_dict(), indent=2, default=str))
                mlflow.log_artifact(str(path))
