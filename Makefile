# Everything installs into .venv with uv (bootstrapped from PyPI into the venv): pip's resolver can take
# minutes on Airflow + the amazon provider + s3fs + moto; uv takes seconds.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint bench emulator clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"

$(STAMP): pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(PY) -e ".[dev,bench]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_tcia example_dags tests
	$(VENV)/bin/ruff format --check airflow_provider_tcia example_dags tests

bench: $(STAMP)
	$(PY) -m tests.benchmarks.run

emulator: $(STAMP)
	$(VENV)/bin/tcia-emulator --port 8080

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
