# `make demo` and `make test` work on a fresh machine: demo installs the plain package (onnxruntime, no torch),
# test adds the CPU build of PyTorch and the test extras.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := examples/speech_codec2_male.wav

PLAIN := .venv-plain

.PHONY: setup demo test test-plain bench clean

# The demo needs the package alone; the tests add torch and their extras (pytest, librosa, pesq, ray...).
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

demo: setup
	$(BIN)/alat encode -y $(EXAMPLE) /tmp/example.alat
	$(BIN)/alat info /tmp/example.alat
	$(BIN)/alat decode -y /tmp/example.alat /tmp/example.wav

test: $(VENV)/.test-extras
	$(BIN)/python -m pytest tests

# The plain install (no extras, so no torch): its size, then the tests that run on it (the rest skip).
$(PLAIN)/bin/alat: pyproject.toml
	$(PY) -m venv $(PLAIN)
	$(PLAIN)/bin/pip install -q .
	touch $@

test-plain: $(PLAIN)/bin/alat
	du -sh $(PLAIN)
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
	rm -rf $(VENV) $(PLAIN) *.egg-info .pytest_cache .hypothesis
