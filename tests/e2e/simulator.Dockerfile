# syntax=docker/dockerfile:1
# The Expo API simulator as an in-cluster Service, for tests/e2e only (never shipped). Built from the
# repository root: docker build -f tests/e2e/simulator.Dockerfile -t publishing-simulator:e2e .
# (simulator.Dockerfile.dockerignore beside it replaces the root .dockerignore, which keeps the
# test tooling, testkit/, out of the production image's context).
FROM python:3.11-slim-bookworm
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY testkit ./testkit
RUN pip install . ./testkit
USER 10001:10001
EXPOSE 8787
ENTRYPOINT ["publishing-operator", "expo-simulator", "--host", "0.0.0.0", "--port", "8787"]
