#!/usr/bin/env bash
# Build kube-apiserver and kubectl from the k8s.io/kubernetes module pinned in go.mod into "$1".
# Called by tests/tools/gobuild (which sets CGO_ENABLED=0 and caches the result); everything comes
# through the Go module proxy, checked against go.sum.
set -euo pipefail
out=${1:?usage: build.sh <bin-dir>}
mkdir -p "$out"

# Both binaries in ONE `go build`: they share most packages, compiled once.
# -pgo=off: cmd/kube-apiserver ships a default.pgo that the default -pgo=auto would compile with,
# much more slowly, for a server that only runs tests here. CGO is off, as upstream builds them
# (KUBE_STATIC_BINARIES in hack/lib/golang.sh).
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local

version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)   # v1.37.2
minor=$(echo "$version" | cut -d. -f2)
# The release's own date (from the proxy's .info), not the build's: same inputs, same binary.
released=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)

# The variables upstream sets (hack/lib/version.sh) in both packages, so that /version and
# `kubectl version` tell the truth. The git commit is unknown in a module zip: left empty.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.gitCommit= -X $pkg.buildDate=$released"
done

go build -trimpath -pgo=off -ldflags "$ldflags" -o "$out/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
