# The README's two commands: `make run` and `make test`. Both set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test lint typecheck unit bench clean docker-engine

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs the suite (runtime dependencies only).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Installs the suite with the test tools, and headless Chromium for the report tests.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@./scripts/ensure-system-packages
	touch $@ $(VENV)/.installed-run

# Every test type on the embedded default, then the seed comparison, with the short `smoke` scenario
# (about 1.5-3 minutes); `perfsuite run` alone runs the full scenarios (about 6).
run: $(VENV)/.installed-run
	$(BIN)/perfsuite run --scenario smoke $(ARGS)

# The container engine for the docker compose test, on every run (a machine may have rebooted since
# the install): Debian's docker.io + Compose v2 installed when missing, dockerd started when none
# answers, the test's local base images made when missing or stale. Fast when all is there; when the
# machine cannot run an engine it says why and only that test skips.
docker-engine: $(VENV)/.installed-dev
	@./scripts/ensure-docker
	@if timeout 10 docker info >/dev/null 2>&1; then ./scripts/docker-test-images || echo "note: the compose test's base images could not be made (see above)" >&2; fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy perfsuite locustfiles redis_bench baseline webhook_load capacity abtest demo_bot bench tests

# The suite in 4 processes, then the few tests that measure timing against known values, alone.
unit: $(VENV)/.installed-dev docker-engine
	$(BIN)/pytest -q -m "not serial"
	$(BIN)/pytest -q -m serial -n 0

test: lint typecheck unit

bench: $(VENV)/.installed-dev
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .perfsuite .mypy_cache .ruff_cache .pytest_cache *.egg-info
