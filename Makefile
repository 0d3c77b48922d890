# `make run` and `make test` set everything up themselves: virtual env, install, database, migrations.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run serve test lint format bench faults loadtest clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m fintech.run

# As run, with granian (SERVE_WORKERS processes, default one per CPU) in place of Django's development server.
serve: install
	$(BIN)/python -m fintech.run --serve

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m tests.bench

# Faults under load against servers of its own (a few minutes): `python -m tests.faults --help` for the options.
faults: install
	$(BIN)/python -m tests.faults

# Mixed traffic at rising concurrency against make serve's server on servers of its own, then reconcile (a few
# minutes): `python -m tests.loadtest --help` for the options; the chart goes to test-artifacts/loadtest/.
loadtest: install
	$(BIN)/python -m tests.loadtest

# Stops the embedded servers and removes their data (never touches DATABASE_URL / REDIS_URL servers).
clean-data: install
	$(BIN)/python -m fintech.devservices stop
	rm -rf .data
