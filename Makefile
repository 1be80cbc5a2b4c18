# make test: set up .venv (torch, torchvision, kornia, timm, pillow, pytest), build the extension, run the suite.
# FORCE_CUDA=1 make test also compiles the CUDA kernels (no GPU needed), as CI does.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
# The CUDA toolkit and the headers that CUDA wheels of torch keep beside it.
CUDA_HOME ?= /usr/local/cuda
export CUDA_HOME

.PHONY: test build bench clean

$(VENV)/.deps: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Builds the CUDA kernels too when a CUDA toolkit is found (see setup.py).
build: $(VENV)/.deps
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .

test: build
	$(PY) -m pytest -q tests

bench: build
	$(PY) benchmarks/bench_ops.py

clean:
	rm -rf build *.egg-info s2c_ops/_C*.so
