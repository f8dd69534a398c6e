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
exec "$(dirname "$0")/build-go-command.sh" weed scripts/seaweedfs github.com/seaweedfs/seaweedfs \
  github.com/seaweedfs/seaweedfs/weed "${SEAWEEDFS_CACHE:-.cache/seaweedfs}" 7
