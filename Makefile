# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install serve bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Train the digits MLP, export it with its parity check, and serve it on 127.0.0.1.
demo: $(STAMP)
	$(PY) -m forge.demo

## The whole test suite (unit, parity, service, end-to-end training).
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

## Install the benchmark engines (ONNX Runtime, PyTorch CPU) and write docs/benchmarks.md (~10 min).
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m tests.benchmarks.run --output docs/benchmarks.md

serve: $(STAMP)
	$(VENV)/bin/forge serve

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
