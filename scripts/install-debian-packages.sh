#!/usr/bin/env bash
# Install the Debian packages the real-server tests start: PostgreSQL (a private cluster per
# test session), etcd (the store of the session's kube-apiserver, tests/apiserver.py), OpenLDAP's
# slapd and its tools (a private directory per session), MIT Kerberos's ktutil (keytabs for
# DittoFS's Kerberos provider), iproute2 (`ip`, to bring up loopback in a pod's network
# namespace), and the real file clients the data-path tests drive (tests/clients.py): libnfs's
# nfs-cp/nfs-ls (NFSv3 from user space, no kernel mount) and Samba's smbclient. Does nothing
# when they are already there.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v ip >/dev/null || missing+=(iproute2)
[[ -x /usr/sbin/slapd ]] || missing+=(slapd)
command -v ldapadd >/dev/null || missing+=(ldap-utils)
command -v ktutil >/dev/null || missing+=(krb5-user)
command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
command -v nfs-cp >/dev/null && command -v nfs-ls >/dev/null || missing+=(libnfs-utils)
command -v smbclient >/dev/null || missing+=(smbclient)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  # slapd's package scripts would start a system directory: a policy-rc.d that says no (101)
  # keeps them from it; one already there is left as it is.
  policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -z $policy ]] || $SUDO rm -f "$policy"
fi
