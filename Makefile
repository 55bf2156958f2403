# Every target does its own set-up from a fresh clone: venv, pip, npm, and the browser for e2e tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=
# Python 3.13 for the deployment checks (tests/deploy): Microsoft's worker runtime indexes the app only there.
PYTHON313 ?= $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13))),$(shell command -v python3.13 2>/dev/null))
VENV313 := .venv-py313
# Flags for `make start`, e.g. make start STACK_ARGS="--function-port 7072" (all: python -m devhost.stack --help)
STACK_ARGS ?=

.PHONY: setup test lint start bench browser clean

setup: $(STAMPS)/venv $(STAMPS)/npm

$(STAMPS)/venv: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	@mkdir -p $(STAMPS) && touch $@

# The app's requirements plus Microsoft's Functions indexer and azure-functions-doctor, on Python 3.13.
$(STAMPS)/venv313: requirements.txt tests/deploy/requirements-py313.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is needed by tests/deploy: install it (e.g. pyenv install 3.13) or pass PYTHON313=/path/to/python3.13"; exit 1; }
	test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/deploy/requirements-py313.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

# Debian's Chromium for the browser tests (a test tool's own browser download cannot work offline).
browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium (needed by the browser tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup browser $(STAMPS)/venv313
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

start: setup
	$(PY) -m devhost.stack $(STACK_ARGS)

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(VENV313) node_modules $(STAMPS) .pytest_cache .mypy_cache .ruff_cache .azurite
