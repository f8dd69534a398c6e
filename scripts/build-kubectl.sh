#!/usr/bin/env bash
# Build Kubernetes' `kubectl` from the same k8s.io/kubernetes version as kube-apiserver, in the
# same module (scripts/kube-apiserver, whose go.mod names cmd/kubectl as a tool), into
# .cache/kubectl/<version>/ (or $KUBECTL_CACHE/<version>/). The tests run it against the real API
# server (tests/kubectl.py), never a kubectl found on PATH. With kube-apiserver's
# build done first, only kubectl's own packages compile: about 1 minute on 2 cores.
exec "$(dirname "$0")/build-go-command.sh" kubectl scripts/kube-apiserver k8s.io/kubernetes \
  k8s.io/kubernetes/cmd/kubectl "${KUBECTL_CACHE:-.cache/kubectl}" 2 \
  k8s.io/component-base/version.gitVersion
