# CodeTether — `make run` starts the embedded stack, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test install bench replay-histories clean zapier-test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/codetether dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m tests.production.run_postgres
	$(MAKE) zapier-test

# The Zapier app: Node 22 (cached outside the repo), validate, jest against a live codetether dev.
zapier-test: $(STAMP)
	bash integrations/zapier/scripts/check.sh

bench: $(STAMP)
	$(BIN)/python bench/create_throughput.py

# Rerecord tests/replay/histories/ after a deliberate workflow change (then commit them).
replay-histories: $(STAMP)
	$(BIN)/python tests/replay/make_histories.py

clean:
	rm -rf $(VENV) .data .pytest_cache

# Make (Integromat) custom app: schema, manifest, IML and live tests on Node's own test runner.
# MAKE_SCHEMAS_DIR defaults to ../shared/make-schemas beside the clone.
.PHONY: test-make
test: test-make
test-make: $(STAMP)
	cd integrations/make && npm ci --no-audit --no-fund --loglevel=error && npm test
