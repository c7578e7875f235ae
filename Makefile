# `make run` sets everything up and serves the dashboard; `make test` runs the whole test suite (what CI runs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
URL    := http://localhost:$(PORT)
# GPU=1 where Linux has an NVIDIA driver (nvidia-smi answers): `make setup` adds TensorFlow's CUDA libraries, the
# tensorflow[and-cuda] extra at the version pinned in requirements.txt. `make setup GPU=0` forces the CPU wheel
# (and takes those libraries out of a venv that had them). Elsewhere nothing changes.
GPU    ?= $(shell [ "$$(uname -s)" = Linux ] && nvidia-smi >/dev/null 2>&1 && echo 1 || echo 0)
TF_VERSION := $(shell sed -n 's/^tensorflow==//p' requirements.txt)


# TensorFlow's C++ log lines off the server's console (app.py quietens the rest; a first request for a deep link
# runs a page before app.py, so the variable is set here too). MNIST_EXPLORER_VERBOSE=1 keeps every line.
QUIET_TF := TF_CPP_MIN_LOG_LEVEL=$$( [ "$$MNIST_EXPLORER_VERBOSE" = 1 ] && echo 0 || echo 3 )

.PHONY: run run-ray lint test test-fast classroom classroom-ray setup setup-dev setup-ray cpu-wheel bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-cuda
	touch $@

# TensorFlow's CUDA libraries (pip's nvidia-* packages) beside the pinned tensorflow: the same wheel then finds a GPU.
$(VENV)/.installed-cuda: $(VENV)/.installed
	$(PY) -m pip install --quiet "tensorflow[and-cuda]==$(TF_VERSION)"
	@echo "TensorFlow $(TF_VERSION) with its CUDA libraries (GPU=1; make setup GPU=0 for the CPU wheel)"
	touch $@

# GPU=0 after a GPU setup: the CUDA libraries go, so TensorFlow computes on the CPU.
cpu-wheel: $(VENV)/.installed
	@if [ -f $(VENV)/.installed-cuda ]; then \
	  cuda=$$($(PY) -m pip freeze | sed -n 's/^\(nvidia-[A-Za-z0-9_.-]*\)==.*/\1/p'); \
	  [ -z "$$cuda" ] || $(PY) -m pip uninstall --quiet -y $$cuda; \
	  rm -f $(VENV)/.installed-cuda; echo "TensorFlow $(TF_VERSION): CPU wheel (GPU=0)"; fi

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.installed-ray: $(VENV)/.installed requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt
	touch $@

setup: $(VENV)/.installed $(if $(filter 1,$(GPU)),$(VENV)/.installed-cuda,cpu-wheel)

setup-dev: $(VENV)/.installed-dev

setup-ray: $(VENV)/.installed-ray

# Serves without asking anything (server.headless: no first-run e-mail prompt, works without a terminal);
# where there is a desktop, the browser opens once the server answers.
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
	  ( for i in $$(seq 120); do $(PY) -c "import urllib.request; urllib.request.urlopen('$(URL)/_stcore/health', timeout=1)" \
	      2>/dev/null && exec $(PY) -m webbrowser -t $(URL) >/dev/null 2>&1; sleep 1; done ) & fi
	$(QUIET_TF) $(PY) -m streamlit run app.py --server.port $(PORT)

# The same with the jobs on a local Ray instance (or MNIST_EXPLORER_RAY=ray://HOST:PORT make run-ray).
run-ray: setup-ray
	MNIST_EXPLORER_RAY=$${MNIST_EXPLORER_RAY:-local} $(QUIET_TF) $(PY) -m streamlit run app.py --server.port $(PORT)

# ruff (pinned in requirements-dev.txt, configured in pyproject.toml): lint and format check, zero findings.
lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The whole suite: ruff, unit tests and AppTest for every page in TEST_WORKERS pytest-xdist processes, then the
# real-browser tests one after another (three at once made their waits time out at random), then the Ray tests one
# after another (when Ray is installed: `.ci/run` installs it; each starts and kills Ray instances, which others
# running at once would join), then the classroom load tests alone (the Ray variant where Ray is installed).
TEST_WORKERS ?= 3
test: lint
	$(PY) -m pytest -m "not load and not ray and not browser" -n $(TEST_WORKERS) $(PYTEST_ARGS)
	$(PY) -m pytest -m "browser and not load and not ray" $(PYTEST_ARGS)
	$(PY) -m pytest -m "ray and not load" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory classroom
	$(MAKE) --no-print-directory classroom-ray

# The fast tier for daily work: tiny models made in the tests, no MNIST file, no browser, no Ray (< 2 min).
test-fast: lint
	MNIST_NPZ=/nonexistent/mnist.npz $(PY) -m pytest -m fast -q -n 2 $(PYTEST_ARGS)

# Classroom load test: 10 browser sessions, 8 of them start heavy jobs at once while 2 draw digits;
# writes test-artifacts/classroom.json (what the server did at each slow stroke included).
classroom: setup-dev
	$(PY) -m pytest -m load -s tests/browser/test_classroom.py

# The same with the jobs on a local Ray instance (5 sessions); skipped where Ray is not installed, run by CI.
classroom-ray: setup-dev
	$(PY) -m pytest -m load -s tests/browser/test_classroom_ray.py

bench: setup-dev
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
