#!/usr/bin/env bash
# Build the Go-binaries image of the speed benchmark, once, into bench/out/:
#   Debian bookworm minbase (debootstrap, shared with build_image.sh) + Debian's packaged Go tools,
#   large statically linked binaries (rclone, restic, hugo, prometheus, etcd, gh: one layer of
#   about 300 MB), exported as docker-archive: bench/out/gobin.docker.tar.
# Uses Debian's package registry through apt with its default configuration, and a private
# buildah storage root (vfs) under bench/out/. Rerunning it is a no-op once the archive exists.
#   python3 bench/shapes.py --shapes gobin
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init "${1:-$here/out}" gobin
bench_base
bench_apt bench-gobin bench-base rclone restic hugo prometheus etcd-server etcd-client gh ca-certificates
bench_export bench-gobin bench/gobin:latest
