"""The model-iteration notebook runs end to end on a tiny warehouse built here."""

import os
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from data_contracts import ingest_landing_zone
from models.registry import log_and_register, tracking_uri_for_home
from models.training import TrainingConfig, train_breach_model
from models.training_set import build_training_set
from synthetic import generate_landing_zone

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "model_iteration.ipynb"


@pytest.fixture()
def tiny_home(tmp_path):
    landing = tmp_path / "landing"
    generate_landing_zone(landing, n_suppliers=150, start="2024-01", months=14, seed=3)
    home = tmp_path / "home"
    home.mkdir()
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        report = ingest_landing_zone(landing, con)
        rows = build_training_set(con, report.data_horizon)
        con.execute("CREATE SCHEMA models")
        con.register("_rows", rows)
        con.execute("CREATE TABLE models.training_set AS SELECT * FROM _rows")
        training = con.execute("SELECT * FROM models.training_set").df()
    from features import FEATURES

    champion = train_breach_model(training, FEATURES, TrainingConfig(min_data_in_leaf=20, max_boost_rounds=60))
    log_and_register(champion, tracking_uri_for_home(home))
    return home


def test_model_iteration_notebook_runs_on_a_tiny_warehouse(tiny_home, monkeypatch):
    monkeypatch.setenv("ASSURANCE_HOME", str(tiny_home))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parents[1])}},
    )
    client.execute()
    outputs = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    assert "would be PROMOTED" in outputs or "would be REFUSED" in outputs
    assert "champion supplier_breach_risk/1" in str(notebook.cells[4].outputs)
    assert not (tiny_home / "mlflow.db").stat().st_size == 0
    assert os.environ["ASSURANCE_HOME"] == str(tiny_home)
