#!/usr/bin/env bash
# Build Helm's `helm` at the version scripts/helm/go.mod pins into .cache/helm/<version>/ (or
# $HELM_CACHE/<version>/). The tests lint, render, install and upgrade charts/dittofs-hooks with
# it (tests/test_chart.py).
exec "$(dirname "$0")/build-go-command.sh" helm scripts/helm helm.sh/helm/v4 \
  helm.sh/helm/v4/cmd/helm "${HELM_CACHE:-.cache/helm}" 7
