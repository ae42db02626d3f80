#!/usr/bin/env bash
# Build the Go image of the precision benchmark, once, into bench/out/:
#   Debian bookworm minbase (debootstrap, shared with build_image.sh) + Go programs Debian packages
#   (gh, rclone, restic, etcdctl: large static Go binaries) and the Go source of popular SDKs
#   (/usr/share/gocode: aws-sdk-go, x/oauth2), exported as docker-archive: bench/out/go.docker.tar.
# Uses Debian's package registry through apt, and a private buildah storage root (vfs) under
# bench/out/. (The Go module proxy is not reachable from this workplace, so no module cache here:
# the module-cache rule of entries/provenance.py is covered by tests/entries/test_provenance.py.)
#   python3 bench/precision.py docker-archive:bench/out/go.docker.tar
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init "${1:-$here/out}" go
bench_base
bench_apt bench-go bench-base gh rclone restic etcd-client golang-github-aws-aws-sdk-go-dev \
  golang-golang-x-oauth2-dev ca-certificates
bench_export bench-go bench/go:latest
