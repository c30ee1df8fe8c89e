# Everything installs into a virtualenv with uv (bootstrapped from PyPI into the venv): pip's resolver can take
# minutes on Airflow + the amazon provider + s3fs + moto; uv takes seconds.
#
# One Airflow per virtualenv. `make test` (what CI runs) runs the suite on every supported Airflow, one after
# another; `make test AIRFLOW_VERSION=3.1.8` on that one only, installed with its constraints file in
# .venv-airflow-3.1.8 (add PYTHON=python3.13 for another interpreter: .venv-airflow-3.1.8-python3.13). The
# newest supported Airflow lives in .venv, which `make demo`, `make lint` and `make bench` use.
PYTHON ?= python3
#: Newest patch of each supported minor version; the first is the oldest, the last the default.
SUPPORTED_AIRFLOW := 2.11.2 3.0.6 3.1.8 3.2.2 3.3.2
DEFAULT_AIRFLOW := $(lastword $(SUPPORTED_AIRFLOW))
#: Where the deployment test (real scheduler, triggerer, api-server) runs in the matrix: the oldest Airflow
#: with asset watchers (event-driven scheduling, 3.0) and the newest. Elsewhere it is deselected.
DEPLOYMENT_AIRFLOW := 3.0.6 $(DEFAULT_AIRFLOW)
#: Where the Celery deployment test (PostgreSQL, Redis, two workers: ~3 min) runs: the newest Airflow.
CELERY_AIRFLOW := $(DEFAULT_AIRFLOW)
#: The browser test runs on every supported Airflow (on the default Python).
#: Also in the matrix: the oldest and the newest supported Airflow on the newest Python each supports.
OTHER_PYTHONS := 2.11.2:python3.12 $(DEFAULT_AIRFLOW):python3.13
# pyenv (as on this project's machines) keeps other interpreters behind its shims: make all of them reachable,
# its current one first so that `python3` stays what it was.
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION := $(shell { pyenv version-name; pyenv versions --bare; } 2>/dev/null | awk '!seen[$$0]++' | paste -sd: -)
endif
#: Empty: `make test` runs the whole matrix; a version: that one (and the other targets use it).
AIRFLOW_VERSION ?=
VERSION := $(or $(AIRFLOW_VERSION),$(DEFAULT_AIRFLOW))
ifeq ($(VERSION)$(PYTHON),$(DEFAULT_AIRFLOW)python3)
VENV ?= .venv
else ifeq ($(PYTHON),python3)
VENV ?= .venv-airflow-$(VERSION)
else
VENV ?= .venv-airflow-$(VERSION)-$(notdir $(PYTHON))
endif
CONSTRAINTS := constraints/airflow-$(VERSION).txt
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

#: Debian packages the tests need, each as command:package — the browser test's headless Chromium and its
#: driver, the Celery deployment test's Redis broker and PostgreSQL database.
SYSTEM_PACKAGES := chromium:chromium chromedriver:chromium-driver redis-server:redis-server pg_ctlcluster:postgresql

.PHONY: install system-deps demo test lint bench bench-compare emulator clean

$(CONSTRAINTS):
	@echo "No constraints for Airflow $(VERSION): supported versions are $(SUPPORTED_AIRFLOW)" >&2
	@exit 1

$(PY):
	@$(PYTHON) -c "" 2>/dev/null || { echo "$(PYTHON) is not installed: install it (pyenv install, or a Debian python3.x package) or pick another PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(UV)
	$(UV) pip install --quiet --python $(PY) -c $(CONSTRAINTS) -e ".[dev,bench]"
	@touch $(STAMP)

install: $(STAMP)

# Installs what is missing with apt-get when run as root; otherwise says what to install.
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
		command -v $${entry%%:*} >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "Missing Debian packages:$$missing — install them (as root: apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi

demo: $(STAMP)
	$(PY) scripts/demo.py

ifeq ($(AIRFLOW_VERSION),)
# Every supported Airflow, each in its own virtualenv; the deployment tests only where DEPLOYMENT_AIRFLOW and
# CELERY_AIRFLOW say, the browser test on the default Python.
test:
	@set -e; for entry in $(SUPPORTED_AIRFLOW) $(OTHER_PYTHONS); do \
		version=$${entry%%:*}; python=python3; case $$entry in *:*) python=$${entry#*:};; esac; \
		skip=""; \
		case "$$python: $(DEPLOYMENT_AIRFLOW) " in "python3:"*" $$version "*) ;; *) skip="$$skip deployment";; esac; \
		[ "$$python:$$version" = "python3:$(CELERY_AIRFLOW)" ] || skip="$$skip celery"; \
		[ "$$python" = python3 ] || skip="$$skip browser"; \
		marks=""; [ -z "$$skip" ] || marks="-m 'not $$(echo $$skip | sed 's/ / and not /g')'"; \
		echo "=== Airflow $$version on $$($$python --version) ==="; start=$$(date +%s); \
		$(MAKE) --no-print-directory test AIRFLOW_VERSION=$$version PYTHON=$$python \
			PYTEST_ARGS="$(PYTEST_ARGS) $$marks"; \
		echo "=== Airflow $$version on $$python: passed in $$(( $$(date +%s) - start )) s ==="; \
	done
else
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)
endif

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_tcia example_dags tests
	$(VENV)/bin/ruff format --check airflow_provider_tcia example_dags tests
	$(VENV)/bin/mypy airflow_provider_tcia

bench: $(STAMP)
	$(PY) -m tests.benchmarks.run

# Before/after: BASE's benchmarks and this tree's, side by side in one run (tests/benchmarks/compare.py).
bench-compare: $(STAMP)
	$(PY) -m tests.benchmarks.compare $(BASE) $(BENCHES)

emulator: $(STAMP)
	$(VENV)/bin/tcia-emulator --port 8780

clean:
	rm -rf .venv .venv-airflow-* .pytest_cache build dist *.egg-info
