#!/usr/bin/env bash
# Build helm from the helm.sh/helm/v3 module pinned in go.mod into "$1".
# Called by tests/tools/gobuild (which sets CGO_ENABLED=0 and caches the result); everything comes
# through the Go module proxy, checked against go.sum.
set -euo pipefail
out=${1:?usage: build.sh <bin-dir>}
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local

version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)     # v3.22.0
# Helm's Makefile derives the default Kubernetes version (.Capabilities.KubeVersion, and the
# deprecation rules of `helm lint`) from the client-go it is built with: v0.37.x -> 1.37. Without
# these flags a module build says "v3.22" and assumes Kubernetes 1.20.
k8s_minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=archive"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

go build -trimpath -ldflags "$ldflags" -o "$out/" helm.sh/helm/v3/cmd/helm
