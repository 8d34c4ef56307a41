# MicroCDP — the two sacred commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install manifest demo test lint format airflow bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	touch $(STAMP)

# The dbt manifest the build DAG draws its per-model tasks from (`dbt parse`, only when the
# project's files changed; a DAG parse refuses an outdated one).
manifest: $(STAMP)
	$(BIN)/python -m cdp.dbt_manifest --if-stale

install: $(STAMP) manifest  ## create .venv and install the project with dev tools

demo: install  ## generate sample data, run every DAG in-process, print a summary
	$(BIN)/cdp demo

test: install  ## run the test suite (what CI runs)
	$(BIN)/python -m pytest

lint: install  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

airflow: install  ## Airflow UI on http://127.0.0.1:8080 with the MicroCDP DAGs (Ctrl-C stops it)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/airflow-standalone.sh

bench: install  ## benchmarks; results go to bench/RESULTS.md
	$(BIN)/python -m bench

clean:
	rm -rf var
