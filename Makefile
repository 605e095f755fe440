# The one place the Restate version is written: server and CLI come from the npm registry.
RESTATE_VERSION := 1.7.12

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NPM_PREFIX := .restate/npm
VENV_STAMP := $(VENV)/.installed
SERVER_STAMP := $(NPM_PREFIX)/.installed-server-cli-ctl-$(RESTATE_VERSION)

.PHONY: setup test-deps run cluster test soak bench lint ui-screenshots clean

## setup: create .venv with the package and dev extras; restate-server, the CLI and restatectl;
## what the tests need from the system where it can (test-deps; make run goes on without it)
setup: $(VENV_STAMP) $(SERVER_STAMP)
	@$(MAKE) --no-print-directory test-deps || echo "setup: make run works without these; make test and make bench need them" >&2

$(VENV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(SERVER_STAMP):
	mkdir -p $(NPM_PREFIX)
	npm install --prefix $(NPM_PREFIX) --no-save --no-audit --no-fund --loglevel=error \
		@restatedev/restate-server@$(RESTATE_VERSION) @restatedev/restate@$(RESTATE_VERSION) \
		@restatedev/restatectl@$(RESTATE_VERSION)
	rm -f $(NPM_PREFIX)/.installed-*
	touch $@

## test-deps: what the tests need from the system: a real Docker engine (dockerd) and a static
## busybox to build the test image from (no registry is reachable). Installed through apt when
## running as root; otherwise it says what to install and fails (tests never skip for want of it).
TEST_TOOLS := dockerd containerd runc busybox
test-deps:
	@missing=""; for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing docker.io and busybox-static (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null; \
		missing=""; for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "the tests need:$$missing. Install Debian's docker.io and busybox-static (as root: apt-get install docker.io busybox-static) and run the tests as root (they start a dockerd of their own)" >&2; \
		exit 1; \
	fi

## run: local restate-server + handler deployment + one demo execution, until Ctrl-C
run: setup
	$(BIN)/python -m landlord_restate.demo

## cluster: a 3-node restate-server cluster on loopback + deployment + the demo, until Ctrl-C
cluster: setup
	$(BIN)/python -m landlord_restate.demo --cluster

## test: the test suite, against its own restate-servers, deployments and dockerd, one
## pytest worker per core (each with its own stacks: most tests wait on servers, not CPU)
## (PYTEST_ARGS: more pytest options, e.g. `make test PYTEST_ARGS=--durations=15`)
test: setup test-deps
	$(BIN)/python -m pytest --numprocesses=auto --maxprocesses=4 $(PYTEST_ARGS)

## soak: the long fault and load suite (50 executions per crash, 1,000 concurrent starts)
soak: setup test-deps
	$(BIN)/python -m pytest -m soak -v

## bench: the provider against raw HTTP to the same restate-server (prints a table)
bench: setup test-deps
	$(BIN)/python -m tests.bench

## ui-screenshots: docs/images/ui-*.png, pictures of Restate's UI taken by headless Chromium
## (Debian's, installed through apt when root) from a local stack it starts and stops
ui-screenshots: setup
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "make ui-screenshots needs Debian's chromium (apt-get install chromium)" >&2; exit 1; }
	$(BIN)/python scripts/ui_screenshots.py

## lint: ruff and mypy --strict
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .restate
