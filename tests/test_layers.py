"""Layers point one way (docs/architecture.md): a lower package never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"pipelines", "assets", "importers", "synthetic", "warehouse", "features", "models", "data_contracts"}
ALLOWED = {
    "pipelines": OURS,
    "assets": OURS - {"pipelines"},
    "importers": {"importers", "data_contracts"},
    "synthetic": {"synthetic", "data_contracts"},
    "warehouse": {"warehouse", "data_contracts"},
    "features": {"features", "data_contracts"},
    "models": {"models", "features", "data_contracts"},
    "data_contracts": {"data_contracts"},
}
NO_DAGSTER = {"importers", "synthetic", "warehouse", "features", "models", "data_contracts"}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_layers_below_it(package):
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        imported = imported_top_levels(path)
        for name in sorted((imported & OURS) - ALLOWED[package]):
            offences.append(f"{path.relative_to(ROOT)} imports {name}")
        if package in NO_DAGSTER and imported & {"dagster", "dagster_duckdb", "dagster_webserver"}:
            offences.append(f"{path.relative_to(ROOT)} imports dagster")
    assert not offences, "\n".join(offences)
