# fd-sync developer entry points. Each works on a fresh machine with python3 and make:
# the first target run creates .venv and installs the package with its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg setup.py pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-fast lint format bench soak clean docs reference

$(STAMP): setup.cfg setup.py pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## demo: incidents flowing between simulated ServiceNow and Flashduty (no credentials)
demo: $(STAMP)
	$(BIN)/fd-sync demo

## bench: fd-sync at 10k and 100k incidents beside a raw fetch and PySNC (bench/README.md)
bench: $(STAMP) $(VENV)/.bench-installed
	$(BIN)/python -m bench
	$(BIN)/python -m bench.writeback
	$(BIN)/python -m bench.tickets
	$(BIN)/python -m bench.fields
	$(BIN)/python -m bench.budgets

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

## test: lint, the documentation site (strict), then the whole test suite on all cores
test: $(STAMP) lint
	$(BIN)/mkdocs build --strict
	$(BIN)/python -m pytest -n auto -q

## docs: serve the documentation site on http://127.0.0.1:8000 (docs/, mkdocs.yml)
docs: $(STAMP)
	$(BIN)/mkdocs serve

## reference: regenerate docs/reference/ from the code (a test fails when it is stale)
reference: $(STAMP)
	$(BIN)/python -m tools.reference

## test-fast: unit and integration tests only (no subprocesses), for the edit-test loop
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto -q -m "unit or integration"

## lint: ruff (rules and format), mypy, and the import contracts of .importlinter
lint: $(STAMP)
	$(BIN)/ruff check fd_sync tests bench tools
	$(BIN)/ruff format --check fd_sync tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix fd_sync tests bench tools
	$(BIN)/ruff format fd_sync tests bench tools

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .ruff_cache

## soak: the chaos soak against a real daemon (SOAK_MINUTES, default 10); prints the figures
## (LEDGER=postgres: two daemons on a throwaway PostgreSQL ledger, the leader killed at random)
SOAK_MINUTES ?= 10
LEDGER ?= sqlite
soak: $(STAMP)
	$(BIN)/python -m tests.chaos --minutes $(SOAK_MINUTES) --ledger $(LEDGER)
