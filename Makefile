# Two set-up commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# constraints.txt pins every transitive dependency to the versions CI was last green with.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow lint clean pose-envs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	# MTCNN face detection; --no-deps because it pins torch<2.3 (its code runs on our torch; weights in the wheel).
	$(PIP_INSTALL) --no-deps facenet-pytorch==2.6.0
	# the cache of valid config keys, types and class names for every bundled config (runs/schema_cache.py): a
	# config mistake is then refused in a fraction of a second, not 6 s, from the first run on
	-$(BIN)/python -c "from affectlab.runs.lightning_cli import prime_bundled_schema_cache as p; p()" >/dev/null
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/affectlab demo

# --dist loadfile: a test file runs on one worker, so its module fixtures (trained runs, prepared stores) are made
# once; pytest-xdist 3.8's loadgroup did not group marked tests under pytest 9 here.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=15

# Checks too slow for CI (minutes each): full-size determinism, long resume, benchmarks as tests.
test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m slow

# Errors only (undefined names, unused imports, syntax): style is left to review.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --select F,E9 src tests benchmarks

# The pose estimators' own virtual environments (.venv-pose/<name>; MediaPipe Holistic 0.10.21 needs numpy<2):
# `affectlab pose estimate --estimator mediapipe_holistic` runs in it (data/media/pose_estimation.py).
pose-envs: $(VENV)/.installed
	$(BIN)/affectlab pose setup mediapipe_holistic

clean:
	rm -rf $(VENV) runs .pytest_cache
