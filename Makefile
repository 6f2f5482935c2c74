# The only entry points people need. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= device,server,nlp,dev

.PHONY: setup demo test lint bench clean

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml scripts/setup.sh
	EXTRAS=$(EXTRAS) PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/python scripts/demo.py

test: setup lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python scripts/bench_uplink.py --json var/bench_uplink.json

clean:
	rm -rf $(VENV) var
