#!/usr/bin/env bash
# Build Helm's `helm` at the version scripts/helm/go.mod pins into .cache/helm/<version>/ (or
# $HELM_CACHE/<version>/). The tests lint, render, install and upgrade charts/dittofs-hooks with
# it (tests/test_chart.py). The first build used about 275 CPU-seconds (4.6 minutes on the shared
# 2-core machine with Go's build cache empty; the module download adds about 20 seconds).
exec "$(dirname "$0")/build-go-command.sh" helm scripts/helm helm.sh/helm/v4 \
  helm.sh/helm/v4/cmd/helm "${HELM_CACHE:-.cache/helm}" 5 \
  helm.sh/helm/v4/internal/version.version
