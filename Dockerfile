# publishing-operator: the production image (no sandbox extras).
# Build: docker build -t publishing-operator:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_DISABLE_CREATED_SERIES=True
COPY --from=build /install /usr/local
# A fixed non-root user, so `runAsNonRoot: true` works without extra settings.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin operator
USER 10001
# 9090: Prometheus metrics; 8080: liveness (/healthz)
EXPOSE 9090 8080
ENTRYPOINT ["publishing-operator"]
CMD ["run"]
