"""Registered models are MLflow models from code with plain-file artifacts: a signature, an
input example, requirements that name what the code imports, nothing unpickled on load, a
home folder that still loads after it is copied or moved, and an experiment the MLflow UI
opens as model training, with a described run and its training set as a dataset input."""

import ast
import copy as copy_module
import json
import pickle
import shutil
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from demo_frames import example_training_frame
from models.loss_rate import train_loss_rate_model
from models.registry import (
    CHAMPION,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    EXPERIMENT_NAME,
    MODEL_CODE_PACKAGES,
    PYFUNC_CODE_FILE,
    REGISTERED_MODEL_NAME,
    RUN_DESCRIPTION_TAG,
    LegacyPickledModelWarning,
    _experiment_id,
    _pip_requirements,
    artifact_location_in_home,
    ensure_tracking_store,
    load_model_by_alias,
    log_and_register,
    tracking_uri_for_home,
    training_dataset,
)
from models.training import TrainingConfig, train_breach_model

FAST = TrainingConfig(max_boost_rounds=60, early_stopping_rounds=20, min_data_in_leaf=40, feature_warmup_months=0)
FAST_LOSS = TrainingConfig(
    max_boost_rounds=60, early_stopping_rounds=20, min_data_in_leaf=40,
    lightgbm_overrides={"objective": "tweedie", "tweedie_variance_power": 1.5},
)
LOSS_RATE_NAME = "supplier_loss_rate"


@pytest.fixture(scope="module")
def frame():
    return example_training_frame(n_suppliers=300, months=10, seed=11, incomplete_months=1)


@pytest.fixture(scope="module")
def registered(tmp_path_factory, frame):
    """A home with a breach model and a loss-rate model registered (both champions)."""
    home = tmp_path_factory.mktemp("home")
    uri = tracking_uri_for_home(home)
    breach = train_breach_model(frame, None, FAST)
    loss = train_loss_rate_model(frame, None, FAST_LOSS)
    log_and_register(breach, uri)
    log_and_register(loss, uri, registered_model_name=LOSS_RATE_NAME)
    return home, breach, loss


def _model_folder(home: Path, name: str, number: str = "1") -> Path:
    uri = tracking_uri_for_home(home)
    location = MlflowClient(uri, uri).get_model_version_download_uri(name, number)
    return Path(artifact_location_in_home(location, uri))


def test_the_registered_model_is_code_plus_plain_files_with_a_signature(registered, frame):
    home, breach, _ = registered
    folder = _model_folder(home, REGISTERED_MODEL_NAME)
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle")) or "__pycache__" in f], files
    assert {"artifacts/model_files/model.json", "artifacts/model_files/booster.txt",
            "code/models/model_files.py", "input_example.json", "requirements.txt"} <= set(files)

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert "python_model" not in pyfunc  # no pickled PythonModel: the code file is the model
    assert pyfunc["model_code_path"].endswith("mlflow_pyfunc.py")
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == breach.model.feature_columns
    assert all(c["required"] for c in inputs)
    assert {c["name"]: c["type"] for c in inputs}["membership_tier"] == "string"
    example = pd.read_json(folder / "input_example.json", orient="split")
    assert list(example.columns) == breach.model.feature_columns and 0 < len(example) <= 5


def test_loading_unpickles_nothing(registered, frame, monkeypatch):
    home, breach, loss = registered

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled while loading a registered model")
    for module in (pickle, cloudpickle):
        monkeypatch.setattr(module, "load", refuse)
        monkeypatch.setattr(module, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)

    uri = tracking_uri_for_home(home)
    model, version = load_model_by_alias(uri, CHAMPION)
    assert version == f"{REGISTERED_MODEL_NAME}/1" == model.version
    np.testing.assert_array_equal(model.predict_proba(frame), breach.model.predict_proba(frame))
    np.testing.assert_array_equal(model.contributions(frame), breach.model.contributions(frame))
    loss_model, _ = load_model_by_alias(uri, CHAMPION, registered_model_name=LOSS_RATE_NAME)
    pd.testing.assert_frame_equal(loss_model.predict_rates(frame), loss.model.predict_rates(frame), check_exact=True)


def test_the_pyfunc_predicts_what_the_model_predicts(registered, frame):
    home, breach, loss = registered
    breach_pyfunc = mlflow.pyfunc.load_model(str(_model_folder(home, REGISTERED_MODEL_NAME)))
    np.testing.assert_array_equal(breach_pyfunc.predict(frame), breach.model.predict_proba(frame))
    loss_pyfunc = mlflow.pyfunc.load_model(str(_model_folder(home, LOSS_RATE_NAME)))
    pd.testing.assert_frame_equal(loss_pyfunc.predict(frame), loss.model.predict_rates(frame), check_exact=True)
    # The signature is enforced: a frame without a model input is refused by name.
    with pytest.raises(Exception, match="tenure_months"):
        breach_pyfunc.predict(frame.drop(columns=["tenure_months"]))


def test_a_copied_then_moved_home_loads_its_models_from_the_new_place(registered, tmp_path, frame):
    home, breach, _ = registered
    original = tmp_path / "original"
    shutil.copytree(home, original)
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(original, copy)
    # The original still exists but is broken: the copy must not read from it.
    (_model_folder(original, REGISTERED_MODEL_NAME) / "artifacts" / "model_files" / "model.json").write_text("{}")
    model, _ = load_model_by_alias(tracking_uri_for_home(copy), CHAMPION)
    np.testing.assert_array_equal(model.predict_proba(frame), breach.model.predict_proba(frame))
    # Moved: the original is gone.
    shutil.rmtree(original)
    model, _ = load_model_by_alias(tracking_uri_for_home(copy), CHAMPION)
    np.testing.assert_array_equal(model.predict_proba(frame), breach.model.predict_proba(frame))
    # A model trained in the moved home lands in it, not in (a recreated) old folder.
    # (its store records the locations of the home it was copied from: `home`)
    retrained = copy_module.deepcopy(breach)  # log_and_register stamps the model: keep the fixture's as it is
    before = sorted((home / "mlartifacts").rglob("*"))
    assert log_and_register(retrained, tracking_uri_for_home(copy)) == f"{REGISTERED_MODEL_NAME}/2"
    assert sorted((home / "mlartifacts").rglob("*")) == before and not original.exists()
    assert (_model_folder(copy, REGISTERED_MODEL_NAME, "2") / "artifacts" / "model_files" / "model.json").is_file()
    run = MlflowClient(tracking_uri_for_home(copy)).get_run(retrained.model.metadata["mlflow_run_id"])
    assert run.info.artifact_uri.startswith((copy / "mlartifacts").resolve().as_uri())


# Recorded artifact locations and where they are read from in a home at /new/home.
@pytest.mark.parametrize(
    ("recorded", "read_from"),
    [
        # a location of another (old) home: re-rooted under this home's mlartifacts
        ("file:///old/home/mlartifacts/models/m-1/artifacts", "/new/home/mlartifacts/models/m-1/artifacts"),
        # an old home that itself lies under a folder named mlartifacts: the last one counts
        ("file:///x/mlartifacts/home/mlartifacts/1/abc/artifacts/model", "/new/home/mlartifacts/1/abc/artifacts/model"),
        # already this home's own location
        ("file:///new/home/mlartifacts/models/m-2/artifacts", "/new/home/mlartifacts/models/m-2/artifacts"),
        # a remote artifact store: untouched
        ("s3://bucket/mlartifacts/models/m-3/artifacts", "s3://bucket/mlartifacts/models/m-3/artifacts"),
        # a local location outside any mlartifacts folder: untouched
        ("file:///srv/models/m-4", "file:///srv/models/m-4"),
    ],
)
def test_artifact_locations_are_read_from_the_current_home(recorded, read_from):
    assert artifact_location_in_home(recorded, "sqlite:////new/home/mlflow.db") == read_from


def test_the_run_is_described_and_its_training_set_logged(registered):
    home, breach, _ = registered
    uri = tracking_uri_for_home(home)
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    run = client.get_run(breach.model.metadata["mlflow_run_id"])
    description = run.data.tags[RUN_DESCRIPTION_TAG]
    for window in breach.split.describe().values():
        assert window in description
    assert breach.label_column in description and breach.data_fingerprint in description
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == breach.data_fingerprint[:36]
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == len(breach.training_rows)
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"


def test_the_training_set_schema_covers_every_row(frame):
    """Types come from a sample; whether a column may be missing from all rows."""
    rows = frame.reset_index(drop=True).copy()
    rows.loc[len(rows) - 1, "tenure_months"] = np.nan  # missing only after the sample
    dataset = training_dataset(rows, "t", "f" * 64, schema_sample_rows=10)
    specs = {c.name: c for c in dataset.schema.inputs}
    assert list(specs) == list(rows.columns)
    assert not specs["tenure_months"].required
    assert specs["supplier_id"].required and specs["supplier_id"].type.name == "string"
    assert dataset.profile["num_rows"] == len(rows) and dataset.digest == "f" * 36


def test_the_training_set_schema_is_inferred_once_per_sample(frame, monkeypatch):
    """Vintages of a model share their oldest rows, so the sample whose schema MLflow infers
    value by value is the same: inferred once, with the same schema; another sample is not
    served the first one's."""
    import mlflow.data.pandas_dataset as pandas_dataset

    import models.registry as registry

    monkeypatch.setattr(registry, "_SAMPLE_SCHEMAS", {}, raising=False)  # what earlier tests inferred
    inferred = []
    real_infer = pandas_dataset._infer_schema
    monkeypatch.setattr(pandas_dataset, "_infer_schema", lambda df: inferred.append(len(df)) or real_infer(df))
    rows = frame.reset_index(drop=True)
    first = training_dataset(rows, "t", "a" * 64, schema_sample_rows=10)
    longer = training_dataset(pd.concat([rows, rows.tail(5)], ignore_index=True), "t", "b" * 64, schema_sample_rows=10)
    assert inferred == [10]
    assert longer.schema.to_dict() == first.schema.to_dict()
    other = rows.copy()
    other["tenure_months"] = other["tenure_months"].astype(str)  # same columns, other values and type
    changed = training_dataset(other, "t", "c" * 64, schema_sample_rows=10)
    assert inferred == [10, 10]
    assert {c.name: c.type.name for c in changed.schema.inputs}["tenure_months"] == "string"


def test_an_experiment_made_before_the_kind_tag_gets_it(tmp_path):
    uri = tracking_uri_for_home(tmp_path)
    ensure_tracking_store(uri)
    client = MlflowClient(uri, uri)
    experiment_id = client.create_experiment("older")  # as older code made it: no kind
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags
    assert _experiment_id(client, uri, "older") == experiment_id
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def _third_party_imports(code_file: Path) -> set[str]:
    """Top-level modules outside the standard library that ``code_file`` and the ``models``
    modules it imports (transitively) import, optional imports left out."""
    root = code_file.parent.parent
    seen, pending, external = set(), [code_file], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        optional = {  # imports guarded by ``except ImportError`` (e.g. the feature catalogue)
            id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
            and any(getattr(h.type, "id", None) == "ImportError" for h in node.handlers)
            for statement in node.body for inner in ast.walk(statement)
        }
        # imports inside a function run only when it is called (e.g. Great Expectations in
        # data_contracts.expectations, which loading and predicting never call)
        optional |= {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                if name.split(".")[0] in MODEL_CODE_PACKAGES:
                    parts = name.split(".")
                    module = root.joinpath(*parts)
                    # importing a module runs its package's __init__ too
                    pending += [p for p in (module.with_suffix(".py"), module / "__init__.py",
                                            root.joinpath(parts[0], "__init__.py")) if p.exists()]
                elif name.split(".")[0] not in sys.stdlib_module_names and name != "__future__":
                    external.add(name.split(".")[0])
    return external


def test_requirements_name_every_package_the_model_code_imports():
    modules = _third_party_imports(PYFUNC_CODE_FILE)
    assert {"mlflow", "lightgbm", "sklearn", "scipy"} <= modules  # the walk reaches the model modules
    distributions = packages_distributions()
    pinned = {requirement.split("==")[0].lower() for requirement in _pip_requirements()}
    # a module may come with several distributions (mlflow: mlflow, mlflow-skinny, ...): one suffices
    unpinned = sorted(m for m in modules if not {d.lower() for d in distributions[m]} & pinned)
    assert not unpinned, f"imported by the model code but not in its requirements: {unpinned}"


class _OldStylePickledModel(mlflow.pyfunc.PythonModel):
    """Stands in for the cloudpickled PythonModel older code registered."""

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ARG002
        return np.zeros(len(model_input))


def test_an_old_home_with_a_pickled_model_still_loads_with_a_warning(tmp_path, frame, registered):
    _, breach, _ = registered
    uri = tracking_uri_for_home(tmp_path)
    client = MlflowClient(uri, uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=_OldStylePickledModel(), pip_requirements=[])
        version = mlflow.register_model(info.model_uri, REGISTERED_MODEL_NAME).version
    finally:
        mlflow.set_tracking_uri(previous)
    client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION, version)
    # What older code wrote: the BreachRiskModel itself, cloudpickled.
    (_model_folder(tmp_path, REGISTERED_MODEL_NAME) / "python_model.pkl").write_bytes(cloudpickle.dumps(breach.model))

    with pytest.warns(LegacyPickledModelWarning, match="retrain"):
        model, loaded_version = load_model_by_alias(uri, CHAMPION)
    assert loaded_version == f"{REGISTERED_MODEL_NAME}/{version}"
    np.testing.assert_array_equal(model.predict_proba(frame), breach.model.predict_proba(frame))
