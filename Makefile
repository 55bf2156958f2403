# Every target does its own set-up from a fresh clone: venv, pip, npm, and the browser for e2e tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=
# Flags for `make start`, e.g. make start STACK_ARGS="--function-port 7072" (all: python -m devhost.stack --help)
STACK_ARGS ?=

.PHONY: setup test lint start bench browser clean

setup: $(STAMPS)/venv $(STAMPS)/npm

$(STAMPS)/venv: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
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

test: setup browser
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
	rm -rf $(VENV) node_modules $(STAMPS) .pytest_cache .mypy_cache .ruff_cache .azurite
