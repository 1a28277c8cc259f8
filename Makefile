# `make demo` and `make test` work on a fresh machine: demo installs the plain package (OpenVINO and
# onnxruntime, no torch) into .venv-plain, as `pip install latentcodec` would; test makes .venv, editable,
# with the CPU build of PyTorch and the test extras.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := examples/speech_codec2_male.wav

PLAIN := .venv-plain
SOURCES := $(shell find latentcodec -type f -not -name '*.pyc' -not -path '*/__pycache__/*')

.PHONY: setup demo test test-fast lint test-plain bench clean

# The tests' venv: the package editable, then torch and the test extras (pytest, librosa, pesq, ray...).
$(BIN)/alat: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-extras: $(BIN)/alat
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,ray]'
	touch $@

setup: $(BIN)/alat

demo: $(PLAIN)/bin/alat
	$(PLAIN)/bin/alat encode -y $(EXAMPLE) /tmp/example.alat
	$(PLAIN)/bin/alat info /tmp/example.alat
	$(PLAIN)/bin/alat decode -y /tmp/example.alat /tmp/example.wav

test: lint
	$(BIN)/python -m pytest tests

# A developer's loop: the tests not marked slow (about a minute).
test-fast: $(VENV)/.test-extras
	$(BIN)/python -m pytest -m "not slow" tests

# The package linted, formatted and type-checked (ruff and mypy, pinned in the lint extra).
lint: $(VENV)/.test-extras
	$(BIN)/ruff check latentcodec
	$(BIN)/ruff format --check latentcodec
	$(BIN)/mypy latentcodec

# The plain install (no extras, so no torch; not editable, so setuptools warns of nothing), made again when
# the package changes: the demo runs it, test-plain prints its size and runs the tests that need no torch.
$(PLAIN)/bin/alat: pyproject.toml $(SOURCES)
	$(PY) -m venv $(PLAIN)
	rm -rf build  # setuptools' staging folder: a stale one would carry deleted files into the install
	$(PLAIN)/bin/pip install -q .
	touch $@

test-plain: $(PLAIN)/bin/alat
	du -sh $(PLAIN)
	du -sh $(PLAIN)/lib/python3*/site-packages/latentcodec  # apart: du counts a folder once
	$(PLAIN)/bin/pip install -q pytest
	$(PLAIN)/bin/python -m pytest tests/test_runtimes.py

# Benchmarks: Debian's ffmpeg for the classic codecs, matplotlib and visqol-python; ~12 min on 2 cores.
# Then the listening page (bench/listen/, ~1 min), checked in headless Chromium when Debian's chromium is installed.
bench: $(VENV)/.test-extras
	command -v ffmpeg >/dev/null || (apt-get update -q && apt-get install -y -q ffmpeg)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/listen.py
	$(BIN)/python bench/listen_check.py

clean:
	rm -rf $(VENV) $(PLAIN) build *.egg-info .pytest_cache .hypothesis
