# The two commands a newcomer needs:  `make run` (the sandbox) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-real cluster controlplane-binaries lint unit integration bench clean

$(STAMP): pyproject.toml testkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./testkit
	touch $(STAMP)

## run: the operator's main job on a machine with no cluster (emulated API + Expo simulator)
run: $(STAMP)
	$(BIN)/publishing-operator sandbox

## test: every test (unit, contract, integration) on the emulated API, then the integration and
## differential tests on a real kube-apiserver + etcd (built from Go modules once, then cached;
## skipped with a notice where there is no Go toolchain)
test: $(STAMP)
	$(BIN)/pytest -q
	@if command -v go >/dev/null 2>&1; then $(MAKE) --no-print-directory test-real; \
	else echo "make test: no Go toolchain here: the real-API-server pass (make test-real) is skipped"; fi

## test-real: the integration and differential tests against a real kube-apiserver + etcd
test-real: controlplane-binaries
	PUBLISHING_TEST_API=real $(BIN)/pytest -q tests/integration tests/differential

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

lint: $(STAMP)
	$(BIN)/ruff check operator testkit tests bench
	$(BIN)/ruff format --check operator testkit tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
