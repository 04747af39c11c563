# mlipviz: one entry point for humans and CI.
#
#   make venv    create .venv (Python 3.12) and install mlipviz[test] in editable mode
#   make system  install Debian's chromium (for the browser tests) if it is missing
#   make lab     start JupyterLab on notebooks/          (LAB_ARGS="--ip=0.0.0.0 --no-browser")
#   make test    the import-layer contract, unit tests + every notebook via nbmake, in smoke mode
#   make demo    run every notebook, write build/index.html (SMOKE=1, DEMO_ARGS="--only 01 03")
#   make data    regenerate the embedded reference data
#   make clean   remove build/
#
# PYTHON=/path/to/python3.12 overrides the interpreter used to create .venv; by default it is
# python3.12 on PATH, else `pyenv which python3.12`, else the newest $(pyenv root)/versions/3.12*.

SHELL := /bin/bash

VENV     := .venv
VENV_BIN := $(VENV)/bin
STAMP    := $(VENV)/.installed
PYTHON   ?=

LAB_ARGS    ?=
DEMO_ARGS   ?=
PYTEST_ARGS ?=
SMOKE       ?=

# `make demo SMOKE=1` exports MLIPVIZ_SMOKE=1 to the demo and its kernels.
DEMO_ENV := $(if $(filter 1 true yes,$(SMOKE)),MLIPVIZ_SMOKE=1,)

.PHONY: venv system lab test demo data clean

venv: $(STAMP)

# Re-runs only when pyproject.toml changes (or .venv was deleted).
$(STAMP): pyproject.toml
	@set -euo pipefail; \
	if [ ! -x $(VENV_BIN)/python ]; then \
	  is312() { [ -n "$$1" ] && "$$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }; \
	  py="$(PYTHON)"; \
	  if [ -n "$$py" ]; then \
	    "$$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 || \
	      { echo "error: PYTHON=$$py is not a working Python >= 3.12" >&2; exit 1; }; \
	  else \
	    py=$$(command -v python3.12 2>/dev/null || true); \
	    is312 "$$py" || py=$$(pyenv which python3.12 2>/dev/null || true); \
	    is312 "$$py" || py=$$(ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1 || true); \
	    is312 "$$py" || { echo "error: Python 3.12 is required to create $(VENV): put python3.12 on PATH," \
	      "install it with pyenv ('pyenv install 3.12'), or run 'make venv PYTHON=/path/to/python3.12'." >&2; exit 1; }; \
	  fi; \
	  echo "creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV); \
	fi
	$(VENV_BIN)/python -m pip install --upgrade pip
	$(VENV_BIN)/pip install -e '.[test]'
	@touch $@

system:
	@set -euo pipefail; \
	if [ -x /usr/bin/chromium ]; then \
	  echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null || echo present)"; \
	else \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

# JupyterLab refuses to run as root without --allow-root (containers, CI machines): add it only then.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: venv
	$(VENV_BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_ARGS) $(LAB_ARGS)

# Test paths are spelled out (pyproject's testpaths only names tests/).
# A failing pytest fails make (make reports pytest's exit code as "Error N").
test: venv system
	$(VENV_BIN)/lint-imports
	MLIPVIZ_SMOKE=1 $(VENV_BIN)/python -m pytest tests --nbmake notebooks -ra --durations=15 $(PYTEST_ARGS)

demo: venv
	$(DEMO_ENV) $(VENV_BIN)/python -m mlipviz.demo $(DEMO_ARGS)

data: venv
	$(VENV_BIN)/python data/build.py

clean:
	rm -rf build/
