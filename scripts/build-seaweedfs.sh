#!/usr/bin/env bash
# Build SeaweedFS's `weed` (a distributed object store with an S3 gateway) at the version
# scripts/seaweedfs/go.mod pins into .cache/seaweedfs/<version>/ (or $SEAWEEDFS_CACHE/<version>/),
# reusing it when present. The tests start it on loopback as the S3 server behind DittoFS's
# remote `s3` block store (tests/s3.py).
#
# SeaweedFS publishes no tagged Go module versions, so the pin is a pseudo-version; `go install`
# would ask the module proxy for version lists, which the proxy here refuses. The module in
# scripts/seaweedfs requires the exact version and carries its go.sum, so the build is
# reproducible. The first build takes about 7 minutes on 2 cores; later runs reuse the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE_DIR=scripts/seaweedfs
MODULE=github.com/seaweedfs/seaweedfs
VERSION=$(awk -v m="$MODULE" '$1 == "require" && $2 == m {print $3; exit} $1 == m && $2 ~ /^v/ {print $2; exit}' "$MODULE_DIR/go.mod")
OUT=${SEAWEEDFS_CACHE:-.cache/seaweedfs}/$VERSION
if [[ -x $OUT/weed ]]; then
  exit 0
fi
GO=${GO:-go}
GO_VERSION=$(awk '$1 == "go" {print $2; exit}' "$MODULE_DIR/go.mod")
if ! command -v "$GO" >/dev/null; then
  echo "error: the Go toolchain (go $GO_VERSION or newer) is needed to build SeaweedFS's weed $VERSION for the tests; install Go and run make test again" >&2
  exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "building SeaweedFS weed $VERSION (about 7 minutes the first time)" >&2
cd "$MODULE_DIR"
CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -o "$OUT/weed.tmp" "$MODULE/weed"
mv "$OUT/weed.tmp" "$OUT/weed"
