# The only entry points people need. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= device,server,nlp,dev

.PHONY: setup models demo test lint bench clean

setup: $(BIN)/.installed models

# The NLP models: built (or copied from ~/.cache/roomscribe) when missing.
models: $(BIN)/.installed
	@$(BIN)/python -m nlp.build --check >/dev/null || HF_HUB_OFFLINE=1 $(BIN)/python -m nlp.build

$(BIN)/.installed: pyproject.toml scripts/setup.sh
	EXTRAS=$(EXTRAS) PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@

# The main job: a visit spoken in a room becomes a draft in the review queue.
demo: setup
	$(BIN)/roomscribe demo $(DEMO_ARGS)

test: setup lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python scripts/bench_uplink.py --json var/bench_uplink.json
	$(BIN)/python scripts/bench_asr.py --json var/bench_asr.json
	$(BIN)/python scripts/bench_rooms.py --json var/bench_rooms.json --plot docs/bench_rooms.png
	$(BIN)/python scripts/eval_nlp.py --json var/eval_nlp.json
	$(BIN)/python scripts/eval_primock.py --json var/eval_primock.json

clean:
	rm -rf $(VENV) var
