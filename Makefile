# Everyday commands. `make test` is what CI runs (.ci/run); `make demo` is the local pipeline.
# Python 3.11 (the version everything is pinned and tested for): python3.11, else python3 if it is 3.11.
PYTHON ?= $(shell command -v python3.11 || (python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3))
VENV := .venv
PY := $(VENV)/bin/python
SCORING_PY := .venv-scoring/bin/python
PIP_VERSION := 26.3
# `make demo PORT=5002` deploys on another port; unset, the command's own default (jobs/options.py, the port's
# one declaration).

.PHONY: setup ui-setup demo demo-port test lint test-main test-scoring bench lock clean

setup: $(VENV)/.installed .venv-scoring/.inputs-sha256

# pip 23 (Python 3.11's own) cannot resolve azure-ai-ml's dependency set: upgrade it first.
# Then the project itself, editable and without dependencies (the lock installed them), which puts the
# `heart-failure` command in $(VENV)/bin (pyproject.toml [project.scripts]); built with the venv's own
# setuptools, so this step needs no download.
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 not found (neither python3.11 nor a python3 that is 3.11); install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==$(PIP_VERSION)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

.venv-scoring/.inputs-sha256: $(VENV)/.installed scoring/conda.yaml scoring/constraints.txt scoring/requirements-test.txt
	$(PY) -m jobs.local.scoring_env

# MLflow's UI for `jobs ui` (jobs/local/ui.py): the optional extra `ui` (pyproject.toml), the full mlflow package of
# the pinned mlflow-skinny's version, installed under the lock's pins (-c) so that nothing else changes version.
ui-setup: $(VENV)/.installed
	$(PY) -m pip install -q -c requirements.txt "mlflow==$$($(PY) -c 'import importlib.metadata as m; print(m.version("mlflow-skinny"))')"

# The whole local pipeline: train (60 s budget), register, deploy on 127.0.0.1 (PORT, or the default), invoke.
# The port is checked before training starts.
demo: demo-port setup
	$(PY) -m jobs all --target local $(if $(PORT),--port $(PORT))

# PORT is checked here, in make's terms (the user typed PORT=, not --port), against the port's one declaration
# (jobs/options.py). A port taken by another program is checked by `all` itself.
demo-port: $(VENV)/.installed
	@$(if $(filter undefined,$(origin PORT)),true,$(PY) -m jobs.options port "$(PORT)" --make-variable PORT)

bench: setup
	$(SCORING_PY) bench/scoring.py
	$(PY) bench/model_quality.py
	$(PY) bench/training.py

# mypy twice: our packages on 3.11 (pyproject.toml), the endpoint's scripts on 3.9 against the
# scoring venv's packages (scoring/mypy.ini; mypy's python_version cannot differ per module).
lint: $(VENV)/.installed .venv-scoring/.inputs-sha256
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m jobs.reference --check
	$(PY) -m mypy
	$(PY) -m mypy --config-file scoring/mypy.ini --python-executable $(SCORING_PY) scoring/score.py scoring/schema.py scoring/collect.py scoring/contract.py scoring/encoding.py scoring/fast_path.py

test-main: setup
	$(PY) -m pytest tests --ignore=tests/scoring

test-scoring: setup
	$(SCORING_PY) -m pytest tests/scoring

test: lint test-main test-scoring

# Rebuild the lock files from the direct dependency lists (needs the package index):
# requirements.txt from requirements.in, scoring/constraints.txt from scoring/conda.yaml.
lock: $(VENV)/.installed
	rm -rf /tmp/lock-venv /tmp/lock-scoring
	$(PYTHON) -m venv /tmp/lock-venv && /tmp/lock-venv/bin/pip install -q pip==$(PIP_VERSION)
	/tmp/lock-venv/bin/pip install -q -r requirements.in
	{ sed -n 1,2p requirements.txt; /tmp/lock-venv/bin/pip freeze | grep -vE '^(pip|wheel)=='; } > requirements.txt.new
	mv requirements.txt.new requirements.txt
	$(PYTHON) -m venv /tmp/lock-scoring && /tmp/lock-scoring/bin/pip install -q pip==$(PIP_VERSION)
	/tmp/lock-scoring/bin/pip install -q -r scoring/requirements-test.txt $$($(PY) -c 'from jobs.local.scoring_env import pip_requirements; print(" ".join(pip_requirements()))')
	{ sed -n 1p scoring/constraints.txt; /tmp/lock-scoring/bin/pip freeze | grep -vE '^(pip|setuptools|wheel)=='; } > scoring/constraints.txt.new
	mv scoring/constraints.txt.new scoring/constraints.txt

clean:
	-$(PY) -m jobs stop --target local 2>/dev/null
	rm -rf $(VENV) .venv-scoring .pytest_cache .ruff_cache .mypy_cache .local runs
