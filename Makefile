# Set-up and everyday commands. Every target installs what it needs first, so each works on a fresh
# Debian/Ubuntu machine (run as root to let it apt-get the system packages that are missing).

UV_VERSION   := 0.13.8
TOOLS        := .tools
UV           := $(TOOLS)/bin/uv
VENV         := .venv
SICA         := $(VENV)/bin/sica
DEBIAN_PKGS  := bubblewrap podman runc git python3-venv
TASK         ?= examples/tasks/fix-mean
PYTEST_ARGS  ?=

.PHONY: run test install system-packages models clean

## run: install everything, then let agent 0 solve an example task (on the local model when no key is set)
run: install
	@if [ -z "$$ANTHROPIC_API_KEY$$OPENAI_API_KEY" ]; then $(SICA) models install 1.5b; fi
	$(SICA) solve --task-dir $(TASK)

## test: install everything, then run the whole test suite (unit and integration, the slow ones too)
test: install
	$(SICA) models install 0.5b
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## install: system packages (when root), uv, and the project's locked environment in .venv
install: system-packages $(UV)
	$(UV) sync --frozen --extra local

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
