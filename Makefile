# Everything installs from nothing: a Python venv from pyproject.toml (exact pins) and the pinned
# Node tools (CDK CLI, ASL validator) from package-lock.json into ./node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# jsii prints a banner on every synth when Node 20 is past end-of-life (older jsii reads the first variable,
# current jsii the second); it changes nothing we rely on.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# The local engine, tests and the offline synth need some region; deploy must use the user's own (profile,
# AWS_REGION / AWS_DEFAULT_REGION), so only these targets get a default.
test demo bench synth: export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install test lint typecheck validate-asl unit workflow infra-test demo synth deploy bench generated lock clean

help:
	@echo "make test     lint, type-check, validate the ASL and run every test (installs what it needs)"
	@echo "make demo     run the real workflow on the local simulated GPU fleet"
	@echo "make synth    cdk synth, offline"
	@echo "make deploy   cdk deploy (needs AWS credentials and a bootstrapped account)"
	@echo "make bench    speed and cost benchmarks (bench/)"

# The locked, hashed dependency set first (the same versions on every machine), then the project itself with
# the locked setuptools (no build isolation: nothing unlocked is downloaded).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve requirements.lock after changing a pin in pyproject.toml (the lock is what install uses).
lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --generate-hashes --universal --python-version 3.11 \
		-o requirements.lock

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy functions gpu_recovery infra bench app.py

# The definition's integration ARNs take the partition from a placeholder (arn:${Partition}:states:::...); the
# validator checks ARNs, so it checks the definition as the aws partition renders it.
validate-asl: node_modules/.installed
	npx asl-validator --json-definition "$$(sed 's/$${Partition}/aws/g' statemachine/recovery.asl.json)"

test: install lint typecheck validate-asl
	$(BIN)/pytest

demo: install
	$(BIN)/gpu-recovery simulate

synth: install
	npx cdk synth --quiet

deploy: install
	npx cdk deploy

bench: install
	$(BIN)/python -m bench

# Files generated from the code (tests fail when they are stale): the scenario JSON Schema, the workflow
# diagram (Mermaid, from the definition) and the settings table (from the settings' fields).
generated: $(VENV)/.installed
	$(PY) -c 'from gpu_recovery import scenario; scenario.SCHEMA_FILE.write_text(scenario.render_schema())'
	$(PY) -c 'from gpu_recovery import diagram; diagram.DIAGRAM_DOC.write_text(diagram.document())'
	$(PY) -c 'from infra import config; config.SETTINGS_DOC.write_text(config.settings_document())'

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
