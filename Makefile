# CodeTether — `make run` starts the embedded stack, `make test` runs the whole suite.
# Every install comes from uv.lock (uv sync --frozen); `make lock` re-resolves it (docs/architecture.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# uv uses the machine's Python (never downloads one) and builds the project's .venv.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test install lock lint-imports bench replay-histories clean zapier-test n8n-test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --extra test --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve uv.lock within pyproject's bounds (`make lock UPGRADE=1` takes the newest allowed).
lock: $(UV)
	$(UV) lock --python $(PYTHON) $(if $(UPGRADE),--upgrade,)

run: $(STAMP)
	$(BIN)/codetether dev

test: $(STAMP)
	$(MAKE) lint-imports
	$(MAKE) n8n-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m tests.production.run_postgres
	$(MAKE) zapier-test

# The layering of the codetether package (contracts in pyproject.toml, [tool.importlinter]).
lint-imports: $(STAMP)
	$(BIN)/lint-imports

# The Zapier app: Node 22 (cached outside the repo), validate, jest against a live codetether dev.
zapier-test: $(STAMP)
	bash integrations/zapier/scripts/check.sh

# The n8n community node: npm ci, n8n-node lint and build, unit tests, npm pack (Node 24 and n8n
# cached outside the repo). Its end-to-end tests in a real n8n run in the pytest run (-m n8n), which
# reuses the node_modules this leaves.
n8n-test:
	bash integrations/n8n-nodes-codetether/scripts/check.sh

bench: $(STAMP)
	$(BIN)/python bench/create_throughput.py

# Rerecord tests/replay/histories/ after a deliberate workflow change (then commit them).
replay-histories: $(STAMP)
	$(BIN)/python tests/replay/make_histories.py

clean:
	rm -rf $(VENV) $(TOOLS) .data .pytest_cache

# Make (Integromat) custom app: schema, manifest, IML and live tests on Node's own test runner.
# MAKE_SCHEMAS_DIR defaults to ../shared/make-schemas beside the clone; without it the schema tests
# skip with the reason printed (and fail under CI=true).
.PHONY: test-make
test: test-make
test-make: $(STAMP)
	cd integrations/make && npm ci --no-audit --no-fund --loglevel=error && npm test
