# Two commands matter: `make demo` runs the product, `make test` tests it.
# Both set up everything they need on a fresh machine.
# python3.11 first: the lock files are resolved for it (`make lock`).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
SYNAPSE_VENV := .venv-synapse
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv synapse chromium node widget demo run test test-fast lint typecheck migrate doctor clean

all: test

# Every package comes from the lock, hash-checked; then the project itself, editable, without
# dependencies and with the build backend from the lock (so nothing unlocked is fetched).
LOCK := requirements-dev.lock
RUNTIME_LOCK := requirements.lock

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# The locks: every package pinned with its hashes, for Python 3.11 on Linux x86_64.
#   requirements-dev.lock  dependencies + the `dev` extra + the build backend + uv (make, CI)
#   requirements.lock      dependencies + the build backend, same pins (deploy/Dockerfile)
# After changing dependencies in pyproject.toml: `make lock` (keeps every pin it can) and commit
# both files; `make lock UPGRADE=1` moves every pin to the newest release pyproject.toml allows.
# `make lint` runs lock-check, which fails when the locks no longer match pyproject.toml.
# --no-strip-extras: the locks say `python-socks[asyncio]==…`, not the bare pin, because pip 23 in
# hash-checking mode otherwise takes a dependency's `python-socks[asyncio]` for an unpinned requirement
# and fails as soon as PyPI has a newer release than the pin (seen with python-socks 3.2.2).
UV_REQUIREMENT := uv>=0.13,<0.14
LOCK_FLAGS := --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--no-strip-extras --custom-compile-command 'make lock'
BUILD_REQUIRES := $(abspath $(BIN))/python -c \
	'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'
# $(call compile-locks,DIR,FLAGS): rewrite DIR's lock files from DIR/pyproject.toml
compile-locks = cd $(1) && \
	{ $(BUILD_REQUIRES) && echo '$(UV_REQUIREMENT)'; } | \
		$(abspath $(BIN))/uv pip compile pyproject.toml - --extra dev $(LOCK_FLAGS) $(2) -o $(LOCK) && \
	$(BUILD_REQUIRES) | \
		$(abspath $(BIN))/uv pip compile pyproject.toml - -c $(LOCK) $(LOCK_FLAGS) $(2) -o $(RUNTIME_LOCK)
# the pins of a lock file, without hashes and comments
lock-pins = sed -n 's/ *\\$$//; /^[A-Za-z0-9]/p'

.PHONY: lock lock-check

lock: venv
	$(call compile-locks,.,$(if $(UPGRADE),--upgrade))

lock-check: venv
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp pyproject.toml $(LOCK) $(RUNTIME_LOCK) "$$tmp"/ && \
	( $(call compile-locks,"$$tmp") ) && \
	for f in $(LOCK) $(RUNTIME_LOCK); do \
		$(lock-pins) $$f >"$$tmp/$$f.old" && $(lock-pins) "$$tmp/$$f" >"$$tmp/$$f.new" && \
		diff -u --label "$$f (committed)" --label "$$f (from pyproject.toml)" "$$tmp/$$f.old" "$$tmp/$$f.new" || { \
			echo "$$f does not match pyproject.toml: run 'make lock' and commit the lock files" >&2; exit 1; }; \
	done

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

# esbuild and eslint for the widget; axe-core, injected into pages by the accessibility test
node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch $@

node: node_modules/.installed

# The widget: widget/src/ (ES modules) -> widget_server/static/widget.js, one minified script, with
# widget.js.gz and widget.js.br beside it. Generated, never committed; rebuilt when its sources change.
WIDGET_JS := widget_server/static/widget.js

$(WIDGET_JS): node_modules/.installed widget/build.mjs widget/catalogue.mjs $(wildcard widget/src/*) \
		$(wildcard bridge/texts/*/LC_MESSAGES/*.po)
	node widget/build.mjs

widget: $(WIDGET_JS)

demo: venv synapse widget
	SITECHAT_SYNAPSE_VENV=$(abspath $(SYNAPSE_VENV)) $(BIN)/sitechat demo

run: venv widget
	$(BIN)/sitechat run --env-file .env

migrate: venv
	$(BIN)/sitechat migrate

doctor: venv
	$(BIN)/sitechat doctor --env-file .env

lint: venv lock-check node
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/kubernetes-validate --strict --quiet $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))
	npx eslint widget/

# The unit layer (pure parts of the core, tables and hypothesis properties) runs first: seconds,
# and a broken invariant shows there before the end-to-end tests start a homeserver and a browser.
.PHONY: unit
unit: venv
	$(BIN)/pytest -q tests/unit

# the unit layer first (seconds); then the tests of real parts, spread over the machine's cores (each
# worker starts its own Synapse and Chromium); the fault tests last and alone, as their timings assume
test: venv synapse chromium node widget
	$(BIN)/pytest -q tests/unit
	SITECHAT_SYNAPSE_VENV=$(abspath $(SYNAPSE_VENV)) $(BIN)/pytest -q -n auto --ignore=tests/unit --ignore=tests/faults $(PYTEST_ARGS)
	SITECHAT_SYNAPSE_VENV=$(abspath $(SYNAPSE_VENV)) $(BIN)/pytest -q tests/faults $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) .pytest_cache .mypy_cache .ruff_cache

# Every benchmark (bench/), then one table: figure, target, measured, met. Ratios measured in one run;
# the suite only checks that each still runs at its tiny size (tests/test_bench_tiny.py).
.PHONY: bench
bench: venv
	$(BIN)/python bench/run_all.py
