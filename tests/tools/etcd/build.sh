#!/usr/bin/env bash
# Build etcd from the go.etcd.io/etcd/server/v3 module pinned in go.mod into "$1".
# Called by tests/tools/gobuild; `go install pkg@version` is refused for this module (its go.mod has
# replace directives), so it is built as a tool of this module instead.
set -euo pipefail
out=${1:?usage: build.sh <bin-dir>}
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local
# etcd's version is a constant of go.etcd.io/etcd/api/v3/version; only the git SHA is a variable.
go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module" \
  -o "$out/etcd" go.etcd.io/etcd/server/v3
