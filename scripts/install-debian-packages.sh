#!/usr/bin/env bash
# Install the Debian packages the real-server tests start: PostgreSQL (a private cluster per
# test session), etcd (the store of the session's kube-apiserver, tests/apiserver.py) and
# iproute2 (`ip`, to bring up loopback in a pod's network namespace).
# Does nothing when they are already there.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
