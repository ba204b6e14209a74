# The two commands a newcomer needs: `make demo` and `make test`. Both install first when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# The torch to install. The default is this project's CPU wheel (torch 2.13.0+cpu, which pip finds in
# /opt/wheels through pip.conf here): exactly this one, as anything else pulls gigabytes of CUDA
# packages. For a CUDA build: make install TORCH="torch==2.14.1" (nvcc from CUDA_HOME; the CUDA
# kernels are compiled whenever torch is a CUDA build and nvcc is found). The package itself asks
# only for torch>=2.4 (pyproject.toml).
TORCH  ?= torch==2.13.0
# Reinstall (rebuild the extension) when packaging or any kernel source changes.
OPS_SOURCES := $(shell find ops -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' 2>/dev/null)

.PHONY: install test test-fast demo lint format bench clean peers gpu-check gpu-wheels check-cuda-build

install: $(STAMP)

# TORCH given on the command line reinstalls even over a fresh stamp; a later `make test` keeps
# whatever torch the venv has.
ifeq ($(origin TORCH),command line)
.PHONY: $(STAMP)
endif

$(STAMP): pyproject.toml setup.py $(OPS_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$(TORCH)" "setuptools>=77" wheel ninja
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	@# pip -q hides the build's own line; the installed package says which kernels it has.
	$(VENV)/bin/rcnn --version
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

# The peers of bench/ (bench/README.md): torch 2.14.1 + torchvision 0.29.1, opencv-contrib and our
# package built against that torch, in a venv of its own so that torchvision never reaches .venv.
# Rebuilt when the package changes. Settings and why: scripts/install_peers.sh.
PEERS       := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
PY_SOURCES  := $(shell find src -name '*.py' 2>/dev/null)

peers: $(PEERS_STAMP)

$(PEERS_STAMP): pyproject.toml setup.py scripts/install_peers.sh scripts/copy_worktree.sh $(OPS_SOURCES) $(PY_SOURCES)
	PYTHON=$(PYTHON) bash scripts/install_peers.sh
	touch $(PEERS_STAMP)

# On a GPU machine with a CUDA torch (the lent H200: no registry, so the wheels it lacks travel in
# .whl/) it builds the CUDA kernels, runs the CUDA tests and the benchmarks; here it is a dry run.
gpu-check:
	PYTHON=$(if $(wildcard $(PY)),$(PY),python3) bash scripts/gpu_check.sh

# The wheels the lent H200 lacks (Python 3.12, no registry there), fetched here into .whl/ (git-ignored),
# for run(command="bash scripts/gpu_check.sh", carry=[".whl"]). pycocotools is a binary wheel for that
# Python; selectivesearch (pure Python, sdist only) is built here.
gpu-wheels:
	mkdir -p .whl
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d .whl "pycocotools>=2.0.7"
	$(PYTHON) -m pip wheel -q --no-deps -w .whl "selectivesearch>=0.4"
	ls .whl

# The extension compiled whole against a CUDA torch (2.14.1, CUDA 13) for sm_90 without a GPU, in a
# throw-away venv under build/check-cuda, then imported and tests/ops run against it (on the CPU).
# Run it before every change to ops/ (.ci/run does). Settings: scripts/check_cuda_build.sh.
check-cuda-build:
	bash scripts/check_cuda_build.sh

clean:
	rm -rf build $(VENV) src/rcnn_cli/_C*.so src/*.egg-info
