# Backline — make targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?=
# Python 3.10 for the venv: $(PYTHON_BIN) when given, else the first one scripts/find-python.sh finds
FIND_PYTHON = PYTHON_BIN="$(PYTHON_BIN)" bash scripts/find-python.sh
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
SPACY_MODEL := build/spacy/kestrel_en
MODEL := models/backline.tar.gz
TRAINING_FILES := config.yml domain.yml $(shell find data -name '*.yml' 2>/dev/null) \
	escalation.yml signals.yml $(wildcard backline/rasa/*.py backline/nlp/*.py backline/routing/*.py)

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export BACKLINE_BUSINESS_DB_URL ?= sqlite:///$(CURDIR)/var/business.db
export BACKLINE_TRACKER_DB ?= $(CURDIR)/var/tracker.db
export BACKLINE_ACTION_ENDPOINT ?= http://localhost:5055/webhook

.PHONY: help run run-scale bench-scale shell test test-fast lint format setup install system-packages build seed validate train test-unit \
	test-stories export-matrix report lock clean bench screenshots

help: ## List every target
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

run: setup train ## Set up everything and run the assistant (Rasa 5005, actions 5055) with embedded defaults
	$(PY) -m backline run --model $(MODEL)

run-scale: system-packages setup train ## The scale profile: PostgreSQL, Redis, 2 Rasa servers, 2 action servers, 2 hubs behind HAProxy (backline/scale.py)
	$(PY) -m backline run --profile scale --model $(MODEL)

shell: setup train ## Talk to the assistant in the terminal (rasa shell; DEBUG=1 logs slots and routing per turn)
	$(PY) -m backline run --model $(MODEL) --shell $(if $(DEBUG),--debug)

test: system-packages setup lint validate train test-unit test-stories ## Set up (system packages included) and run the whole test suite

test-fast: setup train ## The fast lane: pytest without the suites that need PostgreSQL/Redis, the running stack or Chromium
	$(PY) -m pytest tests -q -m "not db and not stack and not browser"

lint: install ## ruff (lint + format check) and mypy (strict on backline/routing), settings in pyproject.toml
	$(VENV)/bin/ruff check backline actions tests scripts
	$(VENV)/bin/ruff format --check backline actions tests scripts
	$(VENV)/bin/mypy

format: install ## Apply ruff's import order, fixes and formatting
	$(VENV)/bin/ruff check --fix backline actions tests scripts
	$(VENV)/bin/ruff format backline actions tests scripts

setup: install build seed ## Create the venv, build the spaCy pipeline, seed the demo database

install: $(VENV)/.installed ## Create .venv and install the pinned dependencies

system-packages: ## Install the Debian packages the tests need (PostgreSQL 15, Redis, Chromium), when missing
	bash scripts/install-system-packages.sh

$(VENV)/.installed: requirements.lock requirements-nodeps.lock
	test -x $(PY) || { python=$$($(FIND_PYTHON)) && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-nodeps.lock
	touch $@

build: $(SPACY_MODEL)/meta.json ## Build the spaCy pipeline (blank English + entity rules) from code

$(SPACY_MODEL)/meta.json: $(VENV)/.installed tenant/products.yml $(wildcard backline/nlp/*.py)
	$(PY) -m backline build-spacy --products tenant/products.yml --output $(SPACY_MODEL)

seed: install ## (Re)seed the demo tenant's business database
	$(PY) -m backline seed

validate: setup ## Validate training data and the escalation matrix
	$(RASA) data validate
	$(PY) -m backline validate-matrix

train: $(MODEL) ## Train the Rasa model (skipped when nothing changed)

$(MODEL): $(TRAINING_FILES) $(SPACY_MODEL)/meta.json
	$(RASA) train --fixed-model-name backline --out models

test-unit: setup ## Run the pytest suites
	$(PY) -m pytest tests -q

test-stories: train ## Run the rasa test stories (fails on any prediction error)
	$(RASA) test core --model $(MODEL) --stories tests/stories --fail-on-prediction-errors --out results/core

screenshots: system-packages setup train ## Retake the README's screenshots (docs/screenshots/) in the browser tests
	BACKLINE_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/test_browser.py -q

export-matrix: install ## Export the routing model (Markdown, CSV, JSON) to docs/routing/
	$(PY) -m backline export-matrix --out docs/routing

report: install ## Governance report from the stores (SINCE=30d, FORMAT=md|html) -> reports/governance-<date>/
	$(PY) -m backline report --since $(or $(SINCE),30d) --format $(or $(FORMAT),md)

bench: setup train ## Benchmarks (not in `test`; about 30 min on 2 cores): routing quality with and without the sentence encoder, thresholds written into escalation.yml (and docs/routing), serving speed -> docs/benchmarks.md
	$(PY) -m backline.bench run --config config.yml --folds 5 --without backline.rasa.sentence_encoder.SentenceEncoderFeaturizer --write-thresholds
	$(PY) -m backline export-matrix --out docs/routing  # the thresholds it wrote, in the exported routing model

bench-scale: system-packages setup train ## Load benchmark (not in `test`; about 7 min on 2 cores): embedded vs scale profile, and a Rasa server killed mid-run -> docs/scale.md
	$(PY) -m backline.bench scale

lock: ## Re-pin requirements.lock from requirements.in in a scratch venv
	rm -rf build/lockenv && python=$$($(FIND_PYTHON)) && "$$python" -m venv build/lockenv
	build/lockenv/bin/pip install --quiet -r requirements.in
	(echo "# Generated by 'make lock' from requirements.in with Python $$(build/lockenv/bin/python -c 'import platform; print(platform.python_version())'). Do not edit by hand."; \
	 build/lockenv/bin/pip freeze --exclude-editable) > requirements.lock
	rm -rf build/lockenv

clean: ## Remove build output, trained models, local databases and results
	rm -rf build models var results .rasa
