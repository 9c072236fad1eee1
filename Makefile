# Entry points. `make run` and `make test` each install everything first (scripts/setup.sh).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint oclgrind wheel-check ci clean

setup:
	@bash scripts/setup.sh

run: setup
	$(BIN)/hetero devices

lint:
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

# Reduced-shape op tests on the Oclgrind simulator; any invalid access, race or uninitialised read fails.
oclgrind: setup
	@bash scripts/oclgrind.sh $(OCLGRIND_TESTS)

# Build the wheel, install it into a fresh venv and run it from outside the repository.
wheel-check: setup
	@bash scripts/wheel_check.sh

ci: test oclgrind wheel-check

clean:
	rm -rf build dist *.egg-info .pytest_cache
