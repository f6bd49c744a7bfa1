# syntax=docker/dockerfile:1
# The Forge prediction service: runtime (numpy) + numba + FastAPI, no pytensor.
# Build, run and configure: docs/docker.md.
#
#   docker build -t forge-service .                      # or: make image
#   docker run --rm -p 8000:8000 forge-service
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11), the venv module and useradd.
# Machines that cannot reach Docker Hub use a local one: tests/docker/make_base.sh.
ARG BASE_IMAGE=python:3.11-slim

# -- builder: a virtual environment with the project and its [serve,fast] extras --------
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/forge

WORKDIR /src
# Only what the wheel needs. forge/ (the training side, which imports pytensor) is not
# copied, so the installed distribution holds runtime/ and service/ alone.
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY service ./service

# Behind a TLS-intercepting proxy, hand pip its certificate authority as a build secret:
#   docker build --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt .
# Off by default; a secret is mounted for this step only and never stored in a layer.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/forge/bin/pip install '.[serve,fast]' \
    && /opt/forge/bin/pip uninstall --yes pip setuptools

# -- the service image -------------------------------------------------------------------
FROM ${BASE_IMAGE}

# A numeric, unprivileged user (Kubernetes' runAsNonRoot can check a numeric USER).
ARG UID=10001
RUN groupadd --gid "${UID}" forge \
    && useradd --uid "${UID}" --gid forge --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin forge \
    && mkdir -p /var/cache/forge/numba /models \
    && chown forge:forge /var/cache/forge/numba

COPY --from=builder /opt/forge /opt/forge

# The example digits model, in the repository layout <name>/<version>/model.npz. Mount
# or copy your own repository over /models (docs/docker.md).
COPY service/models/digits.npz /models/digits/1/model.npz

# NUMBA_CPU_NAME=generic (build argument) makes the warmed cache valid on any x86-64 CPU,
# at some speed cost; by default kernels are compiled for the build machine's CPU and a
# different CPU recompiles them once, at model load, into the same cache directory.
ARG NUMBA_CPU_NAME=
ENV PATH=/opt/forge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/var/cache/forge/numba \
    NUMBA_CPU_NAME=${NUMBA_CPU_NAME} \
    FORGE_MODEL_REPOSITORY=/models \
    FORGE_HOST=0.0.0.0 \
    FORGE_PORT=8000

USER ${UID}:${UID}
WORKDIR /tmp
# Compile every numba kernel now, as the serving user, so the first request does not.
RUN python -m runtime.kernels.warm

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ.get('FORGE_PORT', '8000'), timeout=4)"]
CMD ["forge", "serve"]
