# Two commands on a fresh machine with python3 (>= 3.11) and make:
#   make demo   set up .venv and run the main job on the embedded defaults
#   make test   set up .venv and run the whole test suite
# Dependencies come from the lock files in requirements/ (hash-checked); `make lock`
# regenerates them from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.txt
# static checkers of deploy/ with dependencies of their own, kept out of .venv
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# thumbor 7.8, the peer of benchmarks/delivery.py, with its own pins (Pillow, tornado)
THUMBOR := .venv-thumbor
THUMBOR_STAMP := $(THUMBOR)/.installed
# ipx 3.1 (sharp / libvips), the other peer of benchmarks/delivery.py, from its npm lock
IPX := .ipx
IPX_STAMP := $(IPX)/.installed

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export IMAGE_ASSETS_DATA_DIR ?= $(CURDIR)/.data
DEMO_PORT ?= 8765
UI_PORT ?= 3000
DELIVERY_PORT ?= 8090

.PHONY: install tools thumbor ipx demo test ui lint typecheck check format lock deploy-config clean

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "image_assets needs Python >= 3.11; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): requirements/tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt
	@touch $(TOOLS_STAMP)

thumbor: $(THUMBOR_STAMP)

$(THUMBOR_STAMP): requirements/thumbor.txt
	$(PYTHON) -m venv $(THUMBOR)
	$(THUMBOR)/bin/python -m pip install --quiet --require-hashes -r requirements/thumbor.txt
	@touch $(THUMBOR_STAMP)

ipx: $(IPX_STAMP)

# npm ci: exactly the lock's versions and integrity hashes; sharp's prebuilt libvips
# comes as an optional dependency, so no install script runs
$(IPX_STAMP): requirements/ipx/package.json requirements/ipx/package-lock.json
	@command -v npm >/dev/null || { echo "make ipx needs Node.js and npm"; exit 1; }
	mkdir -p $(IPX)
	cp requirements/ipx/package.json requirements/ipx/package-lock.json $(IPX)/
	cd $(IPX) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $(IPX_STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/image-assets demo --port $(DEMO_PORT) --delivery-port $(DELIVERY_PORT)

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/image-assets ui --port $(DEMO_PORT) --ui-port $(UI_PORT) --delivery-port $(DELIVERY_PORT)

test: install tools thumbor ipx
	$(BIN)/python -m pytest

# ruff (lint + format) and the layer rules (import-linter)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# mypy in basic mode over the package
typecheck: install
	$(BIN)/mypy

check: lint typecheck

# copy deploy/run-queue.yaml into deploy/dagster.yaml and the Helm values
deploy-config: install
	$(BIN)/python deploy/sync_run_queue.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the hash-pinned lock files after a change to pyproject.toml's dependencies.
lock: install
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements/prod.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements/dev.txt
	$(BIN)/uv pip compile requirements/tools.in --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements/tools.txt
	$(BIN)/uv pip compile requirements/thumbor.in --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements/thumbor.txt

clean:
	rm -rf .data .dagster_home .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
