# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install serve bench clean image base-image

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

## The service's Docker image (docs/docker.md): `make image`, or with Docker:
## `make image BUILDER=docker`. Where Docker Hub is unreachable: `make base-image`, then
## `make image BASE_IMAGE=localhost/debian-py:bookworm`. PIP_CA=/path/to/ca.pem hands pip
## a proxy's certificate authority (a build secret, never stored in the image).
BUILDER    ?= buildah
IMAGE      ?= localhost/forge-service:latest
BASE_IMAGE ?= python:3.11-slim
LOCAL_BASE ?= localhost/debian-py:bookworm
ISOLATION  ?= chroot
PIP_CA     ?=
comma := ,
ifeq ($(BUILDER),docker)
IMAGE_BUILD = docker build
else  # buildah, podman: the docker format keeps HEALTHCHECK (OCI images drop it)
IMAGE_BUILD = $(BUILDER) build --format docker --layers \
	$(if $(filter buildah,$(BUILDER)),--isolation $(ISOLATION))
endif

image:
	$(IMAGE_BUILD) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		$(if $(PIP_CA),--secret id=pip_ca$(comma)src=$(PIP_CA)) -t $(IMAGE) .

## A local Debian base image with Python 3.11 (needs root, debootstrap, podman).
base-image:
	tests/docker/make_base.sh $(LOCAL_BASE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
