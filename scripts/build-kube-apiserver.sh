#!/usr/bin/env bash
# Build Kubernetes' `kube-apiserver` at the version scripts/kube-apiserver/go.mod pins into
# .cache/kube-apiserver/<version>/ (or $KUBE_APISERVER_CACHE/<version>/), reusing it when present.
# The API-server tier of the tests (tests/apiserver.py) runs it against Debian's etcd.
#
# `go install` asks the module proxy for version lists, which the proxy here refuses; the module
# in scripts/kube-apiserver requires exact versions and carries its go.sum, so the build is
# reproducible. The first build takes about 1000 CPU-seconds (8.5 minutes on 2 idle cores, up
# to 17 on a shared machine); later runs reuse the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE_DIR=scripts/kube-apiserver
VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$MODULE_DIR/go.mod")
OUT=${KUBE_APISERVER_CACHE:-.cache/kube-apiserver}/$VERSION
# The version is linked in (as Kubernetes' own release builds do): /version answers it, and helm
# refuses a chart's kubeVersion against the v0.0.0-master a plain build reports. A binary built
# before without it is built again.
if [[ -x $OUT/kube-apiserver ]] && [[ $("$OUT/kube-apiserver" --version 2>/dev/null) == "Kubernetes $VERSION" ]]; then
  exit 0
fi
GO=${GO:-go}
if ! command -v "$GO" >/dev/null; then
  echo "error: the Go toolchain (go 1.24 or newer) is needed to build kube-apiserver $VERSION for the tests; install Go and run make test again" >&2
  exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "building kube-apiserver $VERSION (about 10 minutes the first time)" >&2
cd "$MODULE_DIR"
MAJOR_MINOR=${VERSION#v}
VERSION_PACKAGE=k8s.io/component-base/version
LDFLAGS="-X $VERSION_PACKAGE.gitVersion=$VERSION -X $VERSION_PACKAGE.gitMajor=${MAJOR_MINOR%%.*}"
MAJOR_MINOR=${MAJOR_MINOR#*.}
LDFLAGS="$LDFLAGS -X $VERSION_PACKAGE.gitMinor=${MAJOR_MINOR%%.*}"
CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags="$LDFLAGS" -o "$OUT/kube-apiserver.tmp" .
mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
