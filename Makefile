# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Serving needs the service's own dependencies; the tests, the linters and the benchmarks
# need the dev extras too (Playwright, moto, schemathesis, mypy, …), which `make serve`
# does not install.
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed-dev

.PHONY: serve test lint bench chaos screenshots venv clean

$(SERVE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(SERVE_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(SERVE_STAMP)

# The TypeScript client check's tools (tests/e2e/test_typescript_client.py), pinned by their
# lock file; Node and npm are Debian's (apt-get install nodejs npm).
TS_TOOLS := tests/clients/typescript
TS_STAMP := $(TS_TOOLS)/node_modules/.installed

$(TS_STAMP): $(TS_TOOLS)/package-lock.json
	command -v npm >/dev/null || { echo "install Debian's nodejs and npm (apt-get install nodejs npm)"; exit 1; }
	cd $(TS_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(TS_STAMP)

venv: $(STAMP)

serve: $(SERVE_STAMP)
	$(BIN)/outpaint-jobs migrate
	$(BIN)/outpaint-jobs serve

test: $(STAMP) $(TS_STAMP)
	$(BIN)/pytest

# Benchmarks print figures beside a baseline measured in the same run; nothing asserts a time.
# Needs the local PostgreSQL and wrk (Debian's package: apt-get install wrk).
bench: $(STAMP)
	command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.run_all

# Infrastructure faults under load (PostgreSQL restarted and stopped, the provider frozen, a
# worker killed, the queue outgrowing the cap, a client's endpoint down, webhooks lost, the
# output store's disk and SQLite's full), on a PostgreSQL cluster of its own, with Debian's
# Prometheus evaluating the alert rules; writes bench/CHAOS.md. Needs root (PostgreSQL's
# tools run as postgres; tmpfs are mounted). Not part of `make test`.
chaos: $(STAMP)
	command -v prometheus >/dev/null || { echo "install Debian's prometheus (apt-get install prometheus)"; exit 1; }
	$(BIN)/python -m bench.chaos

# The README's dashboard screenshots, taken by the dashboard's browser test (SQLite; Debian's
# chromium: apt-get install chromium).
screenshots: $(STAMP)
	mkdir -p docs
	SCREENSHOT_DIR=docs TEST_DATABASE_URL= $(BIN)/pytest -q tests/e2e/test_dashboard.py -k "overview or job_page"

lint: $(STAMP)
	$(BIN)/ruff check service tests migrations bench
	$(BIN)/ruff format --check service tests migrations bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(TS_TOOLS)/node_modules
