# The README's two commands: `make demo` and `make test`. Each builds .venv from scratch if missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean run

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot demo

# PYTHONDONTWRITEBYTECODE off for the suite: each xdist worker and each `python -m bot` the tests start
# would otherwise compile (and pytest re-rewrite) every module again, ~6 s of CPU a worker (docs/benchmarks.md §14).
test: $(STAMP) lint
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check bot handlers detections tests bench demo standins
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile
	$(BIN)/cfn-lint deploy/*.yaml

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

run: $(STAMP)
	$(BIN)/python -m bot run

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
