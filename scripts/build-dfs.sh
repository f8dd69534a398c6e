#!/usr/bin/env bash
# Build DittoFS's `dfs` server and `dfsctl` CLI at the version the hook writes for
# (hooks/dittofs/version.py) into .cache/dittofs/<version>/ (or $DITTOFS_CACHE/<version>/),
# reusing them when present.
#
# `go install <module>/cmd/dfs@<version>` asks the module proxy for the module's version list,
# which the proxy here refuses; requiring the exact version from a module of our own works.
# The first build takes about 3 minutes on 2 cores; later ones reuse Go's caches.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
read -r VERSION MODULE < <("$PYTHON" -c 'from hooks.dittofs import version; print(version.VERSION, version.GO_MODULE)')
OUT=${DITTOFS_CACHE:-.cache/dittofs}/$VERSION
if [[ -x $OUT/dfs && -x $OUT/dfsctl ]]; then
  exit 0
fi
GO=${GO:-go}
if ! command -v "$GO" >/dev/null; then
  echo "error: the Go toolchain (go 1.25 or newer) is needed to build dfs $VERSION for the tests; install Go and run make test again" >&2
  exit 1
fi
WORK=$OUT/module
mkdir -p "$WORK"
cat > "$WORK/go.mod" <<GOMOD
module dittofs-hooks/dfs-build

go 1.25

require $MODULE $VERSION
GOMOD
# A blank import behind a build tag, so that `go mod tidy` keeps the requirement.
cat > "$WORK/tools.go" <<GOSRC
//go:build tools

package tools

import (
	_ "$MODULE/cmd/dfs"
	_ "$MODULE/cmd/dfsctl"
)
GOSRC
echo "building dfs and dfsctl $VERSION (about 3 minutes the first time)" >&2
cd "$WORK"
"$GO" mod tidy
for cmd in dfs dfsctl; do
  CGO_ENABLED=0 "$GO" build -trimpath -o "../$cmd.tmp" "$MODULE/cmd/$cmd"
  mv "../$cmd.tmp" "../$cmd"
done
