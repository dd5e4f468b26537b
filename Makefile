# Set-up and everyday commands. Every target installs what it needs first, so each works on a fresh
# Debian/Ubuntu machine (run as root to let it apt-get the system packages that are missing).

UV_VERSION   := 0.13.8
TOOLS        := .tools
UV           := $(TOOLS)/bin/uv
VENV         := .venv
SICA         := $(VENV)/bin/sica
DEBIAN_PKGS  := bubblewrap podman runc docker.io git python3-venv chromium
PYTEST_ARGS  ?=
# `make run`: a short improvement run on a small mix (three example tasks and three HumanEval problems to select
# on, two held out), with the caps that keep it short on the local model; `make run ITERATIONS=5 RUN=mine`.
BENCHMARKS   ?= -b taskdir:examples/tasks -b humaneval:3 --holdout humaneval:2
ITERATIONS   ?= 2
RUN          ?= demo-$(shell date +%Y%m%d-%H%M%S)
DEMO_LIMITS  := SICA_LOOP__META_TIME_LIMIT_S=420 SICA_LOOP__STAGES='[3]' SICA_EVAL__TIME_LIMIT_S=240

.PHONY: run test test-fast check install system-packages models clean

## run: install everything, then improve the agent for a few iterations and report (on the local model when no
## key is set)
run: install
	@if [ -z "$$ANTHROPIC_API_KEY$$OPENAI_API_KEY" ]; then $(SICA) models install 1.5b; fi
	$(DEMO_LIMITS) $(SICA) improve $(BENCHMARKS) --iterations $(ITERATIONS) --run $(RUN)
	$(SICA) report $(RUN)

## test: install everything, pass the quality gates, then run the whole test suite (unit and integration, the
## slow ones too)
test: check
	$(SICA) models install 0.5b
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## test-fast: the tests that need no model and no sandbox (marked by tests/conftest.py), in under 2 minutes
test-fast: install
	$(VENV)/bin/python -m pytest -m "not slow and not sandbox" $(PYTEST_ARGS)

## check: the quality gates: formatting, lint and strict types of the harness and agent 0, and the harness's layers
## (the import contracts of pyproject.toml)
check: install
	$(VENV)/bin/ruff format --check src/sica agent/sica_agent
	$(VENV)/bin/ruff check src/sica agent/sica_agent
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

## install: system packages (when root), uv, and the project's locked environment in .venv
install: system-packages $(UV)
	$(UV) sync --frozen --extra local --extra ray

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

system-packages:
	@missing=""; for pkg in $(DEBIAN_PKGS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "warning: missing Debian packages:$$missing (run as root, or install them yourself)"; \
		fi; \
	fi

## models: the bundled 1.5B model used when no provider key is configured
models: install
	$(SICA) models install 1.5b

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
