#!/usr/bin/env bash
# Build one Go command at the version a module of ours pins, into a versioned cache folder, reusing
# it when present. Used by scripts/build-kubectl.sh, scripts/build-helm.sh and scripts/build-seaweedfs.sh.
#
#   build-go-command.sh NAME MODULE_DIR PINNED_MODULE PACKAGE CACHE_DIR MINUTES [VERSION_VAR]
#
# NAME is the binary's name, MODULE_DIR our module (its go.mod requires PINNED_MODULE at an exact
# version, with go.sum, and keeps PACKAGE's requirements by a `tool` line or a tools.go), CACHE_DIR the cache root (the
# binary lands in CACHE_DIR/<version>/NAME), MINUTES what a first build takes, for the message; VERSION_VAR, when given, is the Go string
# variable set to the pinned version at link time (what `NAME version` prints).
# `go install pkg@version` would ask the module proxy for version lists, which the proxy here
# refuses; building by import path inside our module is reproducible and offline once
# downloaded.
set -euo pipefail
NAME=$1 MODULE_DIR=$2 MODULE=$3 PACKAGE=$4 CACHE=$5 MINUTES=$6 VERSION_VAR=${7:-}
cd "$(dirname "$0")/.."
VERSION=$(awk -v m="$MODULE" '$1 == "require" && $2 == m {print $3; exit} $1 == m && $2 ~ /^v/ {print $2; exit}' "$MODULE_DIR/go.mod")
if [[ -z $VERSION ]]; then
  echo "error: $MODULE_DIR/go.mod pins no version of $MODULE" >&2
  exit 1
fi
OUT=$CACHE/$VERSION
if [[ -x $OUT/$NAME ]]; then
  exit 0
fi
GO=${GO:-go}
GO_VERSION=$(awk '$1 == "go" {print $2; exit}' "$MODULE_DIR/go.mod")
if ! command -v "$GO" >/dev/null; then
  echo "error: the Go toolchain (go $GO_VERSION or newer) is needed to build $NAME $VERSION for the tests; install Go and run make test again" >&2
  exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "building $NAME $VERSION (about $MINUTES minutes the first time)" >&2
LDFLAGS=""
if [[ -n $VERSION_VAR ]]; then
  LDFLAGS="-X $VERSION_VAR=$VERSION"
fi
cd "$MODULE_DIR"
CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags="$LDFLAGS" -o "$OUT/$NAME.tmp" "$PACKAGE"
mv "$OUT/$NAME.tmp" "$OUT/$NAME"
