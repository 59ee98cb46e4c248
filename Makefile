# Two commands do all set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench soak schemas clean

setup: $(STAMP)

# Re-installs when pyproject.toml changes; the stamp makes `make test` / `make run` work alone.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/pipeline demo

# Two processes, a module each at a time, the longest modules first (tests/conftest.py): the
# whole-pipeline tests mostly wait on the broker while the other process computes.
test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=10

lint: setup
	$(BIN)/ruff check pipeline tests
	$(BIN)/ruff format --check pipeline tests
	$(BIN)/pipeline schemas --check
	$(BIN)/pipeline grafana render --check

bench: setup
	$(BIN)/python -m pipeline.tools.bench

# Not part of `make test`: ten minutes of steady load (SOAK_ARGS="--minutes 2 --rate 800").
soak: setup
	$(BIN)/python -m pipeline.tools.soak $(SOAK_ARGS)

schemas: setup
	$(BIN)/pipeline schemas

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
