# The two commands a newcomer needs: `make demo` and `make test`. Both install first when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# Reinstall (rebuild the extension) when packaging or any kernel source changes.
OPS_SOURCES := $(shell find ops -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' 2>/dev/null)

.PHONY: install test test-fast demo lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(OPS_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Exactly this torch: anything else pulls gigabytes of CUDA packages.
	$(PIP) install -q "torch==2.13.0" setuptools wheel ninja
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	bash scripts/demo.sh

lint: install
	$(VENV)/bin/ruff check src tests bench setup.py
	$(VENV)/bin/ruff format --check src tests bench setup.py

format: install
	$(VENV)/bin/ruff check --fix src tests bench setup.py
	$(VENV)/bin/ruff format src tests bench setup.py

clean:
	rm -rf build $(VENV) src/rcnn_cli/_C*.so src/*.egg-info
