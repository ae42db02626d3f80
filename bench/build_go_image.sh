#!/usr/bin/env bash
# Build the Go image of the precision benchmark, once, into bench/out/:
#   Debian bookworm minbase (debootstrap, shared with build_image.sh) + Debian's Go toolchain +
#   a module that depends on popular Go SDKs (bench/go/), built into a binary: the image keeps the
#   module cache (/root/go/pkg/mod) and the binary, exported as docker-archive: bench/out/go.docker.tar.
# Uses Debian's package registry through apt and the Go module proxy through `go` (for Go modules),
# and a private buildah storage root (vfs) under bench/out/.
#   python3 bench/precision.py docker-archive:bench/out/go.docker.tar
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
docker_tar="$out/go.docker.tar"
if [[ -s "$docker_tar" ]]; then
  echo "already built: $docker_tar"
  exit 0
fi
mkdir -p "$out"
store="$out/storage"
bud=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)

if [[ ! -s "$out/rootfs.tar" ]]; then
  rm -rf "$out/rootfs"
  debootstrap --variant=minbase bookworm "$out/rootfs"
  tar -C "$out/rootfs" --numeric-owner -cf "$out/rootfs.tar.partial" .
  mv "$out/rootfs.tar.partial" "$out/rootfs.tar"
  rm -rf "$out/rootfs"
fi
if ! "${bud[@]}" inspect bench-base >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from scratch)"
  "${bud[@]}" add "$ctr" "$out/rootfs.tar" /
  "${bud[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${bud[@]}" commit -q "$ctr" bench-base >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi
if ! "${bud[@]}" inspect bench-go >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-base)"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends golang-go ca-certificates git \
     && rm -rf /var/lib/apt/lists/*"
  "${bud[@]}" copy "$ctr" "$here/go" /src/app
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "cd /src/app && go mod tidy && go build -o /usr/local/bin/app . && go clean -cache"
  "${bud[@]}" commit -q "$ctr" bench-go >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi

rm -f "$docker_tar"
"${bud[@]}" push -q bench-go "docker-archive:$docker_tar:bench/go:latest"
ls -l "$docker_tar"
