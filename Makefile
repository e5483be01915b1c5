# Every target is listed by `make help`: a target is documented by its `## ` comment.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PYTHON := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# The demo's web and gateway ports: `make demo PORT=8080 GATEWAY_PORT=8081`.
PORT ?= 8000
GATEWAY_PORT ?= 8001
# The packages lint checks (ruff, mypy, import-linter): every top-level package of the repository.
PACKAGES := $(wildcard queue_core shop orders payments shipping gateway_simulator benchmarks examples request_session)

.PHONY: help venv demo lint format test e2e browser screenshots bench clean

help: ## List the targets with what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(DEV_STAMP) ## Create .venv with python3 and install the project with its dev tools

$(DEV_STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv ## Run the whole shop on SQLite, with sample orders (PORT=8000 GATEWAY_PORT=8001; Ctrl-C stops)
	$(VENV)/bin/shop demo --port $(PORT) --gateway-port $(GATEWAY_PORT)

lint: venv ## Check style, formatting, types and import boundaries
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES) tests
	$(VENV)/bin/lint-imports

format: venv ## Rewrite the code into house style (ruff fixes and formatting)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint ## Lint, then run the tests (finds or starts a PostgreSQL itself)
	$(PYTHON) -m pytest

e2e: venv ## Run only the end-to-end suite: real processes, a throwaway PostgreSQL, faults on purpose
	$(PYTHON) -m pytest tests/e2e

browser: venv ## Run only the browser tests (Chromium from the system, driven by Playwright)
	$(PYTHON) -m pytest tests/browser

screenshots: venv ## Retake docs/screenshots/ with the system's Chromium (a demo run in the background)
	$(PYTHON) -m tests.browser.take_screenshots

$(BENCH_STAMP): pyproject.toml $(DEV_STAMP)
	$(PYTHON) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(BENCH_STAMP) ## Measure queue_core beside other PostgreSQL queues, then the whole shop (docs/performance.md)
	$(PYTHON) -m benchmarks
	$(PYTHON) -m benchmarks.writing_handlers
	$(PYTHON) -m benchmarks.history_arrives
	$(PYTHON) -m benchmarks.pruning
	$(PYTHON) -m benchmarks.bulk_enqueue
	$(PYTHON) -m benchmarks.one_ms_jobs
	$(PYTHON) -m benchmarks.worker_killed
	$(PYTHON) -m benchmarks.shop_end_to_end

clean: ## Remove caches and build output (keeps .venv and var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info distributions/*/build distributions/*/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
