# Two commands do all set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system run test lint bench bench-warehouse soak schemas clean

setup: system $(STAMP)

# Debian packages the weekly review report needs: chromium prints its PDF and runs its browser
# test (tests/test_report_browser.py), poppler-utils reads the PDF back (pdftotext), DejaVu
# gives the charts' text its metrics. Installed once, as root (as CI runs), skipped when there.
SYSTEM_PACKAGES := chromium poppler-utils fonts-dejavu-core
system:
	@if ! command -v chromium >/dev/null || ! command -v pdftotext >/dev/null \
		|| [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	fi

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

# The dashboards' queries at 20,000 users x 30 weeks (the fill takes most of the time);
# another size: BENCH_WAREHOUSE_ARGS="--users 2000 --weeks 30 --dir var/bench-2k".
bench-warehouse: setup
	$(BIN)/pipeline bench warehouse $(BENCH_WAREHOUSE_ARGS)

# Not part of `make test`: ten minutes of steady load (SOAK_ARGS="--minutes 2 --rate 800").
soak: setup
	$(BIN)/python -m pipeline.tools.soak $(SOAK_ARGS)

schemas: setup
	$(BIN)/pipeline schemas

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
