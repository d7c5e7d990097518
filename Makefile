# The two commands a person needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench chromium clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,service,spark]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lastknown demo

# Debian's Chromium for the browser tests (apt-get when missing; tools/ensure_chromium.sh)
chromium:
	sh tools/ensure_chromium.sh

test: $(STAMP) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

check: test

# Benchmarks are run by hand (never in CI); see README "Measured".
bench: $(STAMP)
	$(BIN)/python bench/bench_intake.py --rows 1000000
	$(BIN)/python bench/bench_ledger.py --rows 200000
	$(BIN)/python bench/bench_match.py --persons 200000 --requests 20000 --seed 4 --work /tmp/lastknown-bench
	$(BIN)/python bench/bench_service.py --submissions 20 --rows 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
