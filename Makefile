# The two commands a newcomer needs:  `make run` (the sandbox) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-real cluster controlplane-binaries lint unit integration chart image tools manifests lock pin-base-image bench chaos audit clean

# Go-built test tools (tests/tools/<name>/), cached outside the repository by tests/tools/gobuild.
GO_TOOLS := helm
UV_VERSION := 0.13.8
CRANE_VERSION := v0.22.1
BASE_IMAGE := python:3.11-slim-bookworm

$(STAMP): pyproject.toml testkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./testkit
	touch $(STAMP)

## run: the operator's main job on a machine with no cluster (emulated API + Expo simulator)
run: $(STAMP)
	$(BIN)/publishing-operator sandbox

## test: every test (unit, contract, integration, chart, image) on the emulated API, then the
## integration, differential and chart-install tests on a real kube-apiserver + etcd (built from
## Go modules once, then cached; skipped with a notice where there is no Go toolchain). Both passes
## run even when the first fails; make fails if either did.
test: $(STAMP) tools
	@status=0; $(BIN)/pytest -q || status=$$?; \
	if command -v go >/dev/null 2>&1; then $(MAKE) --no-print-directory test-real || status=$$?; \
	else echo "make test: no Go toolchain here: the real-API-server pass (make test-real) is skipped"; fi; \
	exit $$status

## test-real: the integration, differential and chart-install tests against a real kube-apiserver + etcd
test-real: controlplane-binaries tools
	PUBLISHING_TEST_API=real $(BIN)/pytest -q tests/integration tests/differential tests/chart/test_real_install.py

## controlplane-binaries: build kube-apiserver, kubectl and etcd from Go modules (cached; minutes cold)
controlplane-binaries: $(STAMP)
	$(BIN)/python -m publishing_testkit.controlplane --build-only

## cluster: a real kube-apiserver + etcd (no controllers) in the foreground until Ctrl-C; .cluster/kubeconfig
cluster: $(STAMP)
	$(BIN)/python -m publishing_testkit.controlplane --kubeconfig .cluster/kubeconfig

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## chart: the Helm chart, deploy/ and the Argo CD health check (tests/chart)
chart: $(STAMP) tools
	$(BIN)/pytest -q tests/chart

## image: the Dockerfile, the locks, and the operator run from the locked environment (tests/image; needs PyPI)
image: $(STAMP)
	$(BIN)/pytest -q tests/image

## chaos: a longer chaos run than `make test`'s (SEED=N RESOURCES=200 MINUTES=10 by default)
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --seed $(or $(SEED),1) --resources $(or $(RESOURCES),200) --minutes $(or $(MINUTES),10)

## audit: the runtime lock against known vulnerabilities (pip-audit; needs OSV or PyPI's JSON API)
audit: $(STAMP)
	$(BIN)/python tests/tools/audit.py

## tools: build the Go test tools (Helm: about 3 minutes the first time, then cached)
tools:
	@for tool in $(GO_TOOLS); do tests/tools/gobuild tests/tools/$$tool >/dev/null; done

## manifests: regenerate deploy/publishing-operator.yaml, the Argo CD patch and the chart's copied files
manifests: $(STAMP) tools
	$(BIN)/python -m tests.chart.generate

## lock: re-resolve the image's locks from pyproject.toml (UPGRADE=1: newest allowed versions)
lock: $(STAMP)
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command "make lock" --quiet $(if $(UPGRADE),--upgrade) -o requirements.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile - --universal --python-version 3.11 --generate-hashes \
	    --custom-compile-command "make lock" --quiet $(if $(UPGRADE),--upgrade) -o requirements-build.lock

## pin-base-image: pin the Dockerfile's base image to the digest its tag has now (needs Docker Hub)
pin-base-image:
	digest=$$(go run github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION) digest $(BASE_IMAGE)) \
	  && sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$(BASE_IMAGE)@$$digest|" Dockerfile \
	  && grep '^ARG PYTHON_IMAGE=' Dockerfile

lint: $(STAMP)
	$(BIN)/ruff check operator testkit tests bench deploy
	$(BIN)/ruff format --check operator testkit tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
