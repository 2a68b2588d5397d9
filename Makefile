# The two commands a newcomer needs:  `make run` (the sandbox) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit integration bench clean

$(STAMP): pyproject.toml testkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./testkit
	touch $(STAMP)

## run: the operator's main job on a machine with no cluster (emulated API + Expo simulator)
run: $(STAMP)
	$(BIN)/publishing-operator sandbox

## test: every test (unit, contract, integration)
test: $(STAMP)
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

lint: $(STAMP)
	$(BIN)/ruff check operator testkit tests bench deploy
	$(BIN)/ruff format --check operator testkit tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
