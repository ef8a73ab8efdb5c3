# Rapport: `make run` serves the API on the embedded default; `make test` runs the whole suite.
# Needs only Python 3.11 (or newer). Everything else is installed into .venv from uv.lock.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install run test lint fmt openapi bench fuzz soak clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON) --quiet
	rm -f $(VENV)/.synced-*
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the locked dependencies

run: install  ## migrate the embedded SQLite database, create the demo workspace once, serve
	$(VENV)/bin/rapport serve --demo

TEST_WORKERS ?= 2
test: install  ## the whole suite (set RAPPORT_TEST_POSTGRES_URL / RAPPORT_TEST_REDIS_URL to add those)
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

fmt: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

openapi: install  ## regenerate the checked-in openapi.json
	$(VENV)/bin/rapport openapi export

fuzz: install  ## a long schemathesis campaign against every operation (both backends if configured)
	RAPPORT_FUZZ_EXAMPLES=$${RAPPORT_FUZZ_EXAMPLES:-200} $(VENV)/bin/pytest -q -p no:cacheprovider -m fuzz tests/fuzz

# Benchmarks (not part of `make test`): BENCH_BACKEND=postgres|sqlite, BENCH_CONTACTS (1000000),
# BENCH_ARGS for more (e.g. "--duration 30 --scenarios get,list"). Needs wrk (apt-get install wrk).
BENCH_BACKEND ?= postgres
BENCH_CONTACTS ?= 1000000
bench: install  ## Rapport against the raw floor, same run; results in bench/results/
	$(VENV)/bin/python -m bench.run --backend $(BENCH_BACKEND) -n $(BENCH_CONTACTS) $(BENCH_ARGS)

soak: install  ## 5 minutes at 64 connections with PostgreSQL and Redis restarted (restarts services!)
	$(VENV)/bin/python -m bench.soak --duration $${SOAK_SECONDS:-300}

clean:
	rm -rf .uv $(VENV) .pytest_cache .ruff_cache
