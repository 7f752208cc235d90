# One entry point for humans and CI: each target creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xtreaming demo

# Test processes at once (``make test TEST_WORKERS=1`` runs the suite in one). Each test owns its ports, folders,
# schemas and brokers, so they may run side by side; two, as this machine has two cores: a third sped the suite up a
# little more, but let tests that bound a latency (a frozen broker's status answer) miss their bound now and then.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	$(BIN)/python bench/broker.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/coordinator.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/status.py
	$(BIN)/python bench/outage_latency.py
	$(BIN)/python bench/kafka_e2e.py

clean:
	rm -rf $(VENV) .xtreaming .mypy_cache .pytest_cache .ruff_cache
