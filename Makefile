# Entry points. `make run` and `make test` each install everything first (scripts/setup.sh).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint oclgrind wheel-check ci clean

setup:
	@bash scripts/setup.sh

# The main job: list the devices, then train LeNet-5 on MNIST for one epoch on the best one, with progress.
# MNIST comes from DATA=DIR, else $$HETERO_DATA_DIR, else ~/.cache/hetero/datasets, else a download.
run: setup
	$(BIN)/hetero devices
	$(BIN)/hetero train --model lenet5 --epochs 1 $(if $(DATA),--data $(DATA))

lint:
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

# Reduced-shape op tests on the Oclgrind simulator; any invalid access, race or uninitialised read fails.
# All of tests/ops by default (~1.5 min on 2 cores); OCLGRIND_TESTS="tests/ops/test_x.py ..." narrows it.
OCLGRIND_TESTS ?= tests/ops
oclgrind: setup
	@bash scripts/oclgrind.sh $(OCLGRIND_TESTS)

# Build the wheel, install it into a fresh venv and run it from outside the repository.
wheel-check: setup
	@bash scripts/wheel_check.sh

ci: test oclgrind wheel-check

clean:
	rm -rf build dist *.egg-info .pytest_cache
