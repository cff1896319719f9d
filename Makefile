# Developer and CI entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help deps venv node-deps run test lint format check

help:
	@echo "make deps   - apt-install missing system programs (redis, postgresql, nginx, chromium, node)"
	@echo "make venv   - create $(VENV) and pip install -e '.[test]'"
	@echo "make node-deps - npm ci in tests/browser (axe-core for the accessibility tests)"
	@echo "make run    - migrate, then serve on http://$(HOST):$(PORT) with daphne"
	@echo "make test   - deps + venv, then pytest (not browser), node --test, pytest -m browser"
	@echo "make lint   - ruff check + ruff format --check"
	@echo "make check  - lint + test"

deps:
	bash scripts/install-system-deps.sh

venv: $(STAMP)

# Reinstalls when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

# npm packages of the browser tests (axe-core), exactly as locked; again when the lock changes.
NODE_STAMP := tests/browser/node_modules/.package-lock.json
node-deps: $(NODE_STAMP)

$(NODE_STAMP): tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $(NODE_STAMP)

run: deps venv
	$(PY) manage.py migrate --noinput
	$(PY) -m chatsite.serve -b $(HOST) -p $(PORT) chatsite.asgi:application

test: deps venv node-deps
	PYTHON=$(PY) bash scripts/run-tests.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: lint test

# The adversarial suite of issue 7 (also collected by `make test`) with its figures table;
# the soak sends 1,000 devices x 100 messages. See docs/reliability.md.
.PHONY: adversarial adversarial-soak
adversarial: deps venv
	$(PY) scripts/adversarial.py

adversarial-soak: deps venv
	$(PY) scripts/adversarial.py --soak
