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

test: $(STAMP) lint
	$(BIN)/python -m pytest

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
