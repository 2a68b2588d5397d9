# syntax=docker/dockerfile:1
# publishing-operator: the production image. Only the operator and the packages it imports: the
# dependencies come from requirements.lock (exact versions, every file's hash checked); the test
# tooling (testkit/) and everything else stay out of the build context (.dockerignore).
#   docker build -t publishing-operator:0.1.0 .
# tests/image/ checks this file without a Docker engine: hadolint, the layer order, and the lock
# installed into a fresh virtual environment that starts the operator.

# The base image, pinned by digest so a rebuild gets the same bytes. NOT PINNED YET: no container
# registry was reachable where this was written. `make pin-base-image` (on a machine that reaches
# Docker Hub) resolves the tag's digest and writes it here, as python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# 1. Dependencies, in their own layer: a source change does not reinstall them. The virtual
#    environment has no pip of its own; the base image's pip installs into it.
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv --without-pip /opt/operator \
 && pip --python /opt/operator/bin/python install --require-hashes --no-deps -r /tmp/requirements.lock
# 2. The wheel build tools (setuptools, wheel), locked with hashes too; they stay in this stage.
COPY requirements-build.lock /tmp/requirements-build.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements-build.lock
# 3. The operator, without dependencies (they are all above).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/operator/bin/python install --no-deps /wheels/*.whl

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="publishing-operator" \
      org.opencontainers.image.description="Kubernetes operator that drives mobile-app builds and store submissions through Expo EAS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PATH=/opt/operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_DISABLE_CREATED_SERIES=True
COPY --from=build /opt/operator /opt/operator
# A fixed non-root user, so `runAsNonRoot: true` works without extra settings (the chart runs it
# with a read-only root filesystem and an emptyDir at /tmp).
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin operator
USER 10001:10001
# 9090: Prometheus metrics (/metrics); 8080: liveness (/healthz)
EXPOSE 9090 8080
ENTRYPOINT ["publishing-operator"]
CMD ["run"]
