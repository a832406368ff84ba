# salesalign: `make run` and `make test` set themselves up from a clean clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json
export SALESALIGN_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(SALESALIGN_HOME)/dagster
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

SCALE ?= default
SEED ?= 42

.PHONY: install manifest run test test-slow test-faults dev lint generate lock clean validate

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# dagster-dbt needs the manifest before the Definitions can load (docs/stack.md).
manifest: $(MANIFEST)

$(MANIFEST): $(STAMP) $(shell find dbt_project \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*' 2>/dev/null)
	$(BIN)/salesalign prepare

run: install manifest
	$(BIN)/salesalign run --source demo --scale $(SCALE) --seed $(SEED)

# Lint first: a style error fails within a minute or two, before the suite.
test: install manifest lint
	$(BIN)/python -m pytest -m "not slow and not faults" $(PYTEST_ARGS)

# Whole runs of the pipeline (salesalign run on the demo, a file drop and the Maven export, the UI
# in a browser, the documented Python API, a blocked run, reruns, the scans of a run's outputs for
# secrets and personal data): about 11 minutes more. .ci/run runs them after `make test`.
test-slow: install manifest
	$(BIN)/python -m pytest -m "slow and not faults" $(PYTEST_ARGS)

# The long fault-injection and rerun tests (SIGKILL in every phase, full disk, read-only home,
# idempotency of every partition): about 12 minutes more. .ci/run runs them after `make test`.
test-faults: install manifest
	$(BIN)/python -m pytest -m faults $(PYTEST_ARGS)

# Effect estimators against known truth: LaLonde (NSW vs CPS) and the demo's truth.json over 20 seeds.
validate: install manifest
	$(BIN)/python -m bench.validate --out $(SALESALIGN_HOME)/validation $(VALIDATE_ARGS)

# Pipeline benchmark: per stage, baselines (raw DuckDB, pandas), incremental, scaling, targets.
# Slow: large alone takes 10+ minutes. `make bench BENCH_SCALES="small default"` for a quicker pass.
BENCH_SCALES ?= small default medium large
.PHONY: bench
bench: install manifest
	$(BIN)/python -m bench.pipeline --scale $(BENCH_SCALES) $(BENCH_ARGS)

# The UI, the daemon (schedule, sensors, automation, run queue) and the code location. The instance
# config limits the warehouse pool to 1, so runs launched from the UI take turns on DuckDB.
dev: install manifest
	$(BIN)/python -m orchestration.operations $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# ruff over the Python, sqlfluff over the dbt models and data tests (.sqlfluff: the rules and why). The dbt
# templater compiles the project (against an in-memory DuckDB, never the warehouse): about a minute.
lint: install manifest
	$(BIN)/ruff check salesalign orchestration bench tests
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/data-tests --processes 2

# Write every file derived from a declaration (the raw contract, the quarantine ledger, the analytics
# registry: GENERATORS in salesalign/generate.py); the tests fail when one is stale.
generate: install
	$(BIN)/salesalign generate

# Re-resolve the pinned tree (needs the package registry); review the diff before committing.
lock:
	rm -rf /tmp/salesalign-lock && $(PYTHON) -m venv /tmp/salesalign-lock
	/tmp/salesalign-lock/bin/pip install --quiet -e '.[dev]'
	{ head -2 constraints.txt; /tmp/salesalign-lock/bin/pip freeze --exclude-editable | grep -v '^salesalign'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) data dbt_project/target dbt_project/logs dbt_project/dbt_packages .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
