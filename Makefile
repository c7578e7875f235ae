# Two commands: `make run` sets everything up and opens the dashboard; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test setup setup-dev bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

run: setup
	$(PY) -m streamlit run app.py --server.port $(PORT)

# The concurrent-users load test runs last, on its own, for a short bounded time.
LOAD_SECONDS ?= 10
test: setup-dev
	$(PY) -m pytest -m "not load" $(PYTEST_ARGS)
	LOAD_SECONDS=$(LOAD_SECONDS) $(PY) -m pytest -m load -s tests/browser/test_load.py

bench: setup-dev
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
