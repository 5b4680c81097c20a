# coop's developer and CI entry points. Everything runs from a local .venv that the first
# target creates, so a fresh machine needs only Python 3.11+, git and make.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 \
	&& $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed

export COOP_DATA_DIR ?= ./var
# `make serve PORT=8080` serves on another port (coop advertises the port it listens on).
PORT ?= 8000

.PHONY: serve test test-fast check bench install clean

$(STAMP): pyproject.toml $(PLUGINS)
	@test -n "$(PYTHON)" || { echo "coop needs Python 3.11 or newer on PATH"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	@touch $(STAMP)

install: $(STAMP)

## Serve coop on http://127.0.0.1:8000 (or PORT) with SQLite under ./var (dev keys unless configured).
serve: $(STAMP)
	COOP_DEV=$${COOP_DEV-1} $(BIN)/coop migrate
	COOP_DEV=$${COOP_DEV-1} $(BIN)/coop serve --host 127.0.0.1 --port $(PORT)

## The whole suite: every database test on SQLite and PostgreSQL, plus browser tests.
test: $(STAMP)
	$(BIN)/pytest

## The quick loop while developing: SQLite only, no browser, spread over every core.
test-fast: $(STAMP)
	COOP_TEST_ENGINES=sqlite $(BIN)/pytest -m "not e2e and not slow" -n auto -q

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy coop
	$(BIN)/pytest -q tests/test_layers.py tests/test_migrations.py tests/test_docs.py

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
