# Two commands matter: `make demo` runs the product, `make test` tests it.
# Both set up everything they need on a fresh machine.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
SYNAPSE_VENV := .venv-synapse
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv synapse chromium node demo run test test-fast lint typecheck migrate doctor clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Synapse lives in its own virtualenv: it pulls Twisted and pins of its own.
$(SYNAPSE_VENV)/.installed:
	test -x $(SYNAPSE_VENV)/bin/python || $(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/pip install -q --upgrade pip
	$(SYNAPSE_VENV)/bin/pip install -q 'matrix-synapse>=1.120,<2'
	touch $@

synapse: $(SYNAPSE_VENV)/.installed

# Debian's Chromium for the browser tests (never `playwright install`: no downloads here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation; }

# axe-core, injected into pages by the accessibility test
node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch $@

node: node_modules/.installed

demo: venv synapse
	SITECHAT_SYNAPSE_VENV=$(abspath $(SYNAPSE_VENV)) $(BIN)/sitechat demo

run: venv
	$(BIN)/sitechat run --env-file .env

migrate: venv
	$(BIN)/sitechat migrate

doctor: venv
	$(BIN)/sitechat doctor --env-file .env

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: venv synapse chromium node
	SITECHAT_SYNAPSE_VENV=$(abspath $(SYNAPSE_VENV)) $(BIN)/pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) .pytest_cache .mypy_cache .ruff_cache
