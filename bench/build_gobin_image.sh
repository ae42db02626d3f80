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
out="${1:-$here/out}"
docker_tar="$out/gobin.docker.tar"
if [[ -s "$docker_tar" ]]; then
  echo "already built: $docker_tar"
  exit 0
fi
mkdir -p "$out"
store="$out/storage"
bud=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
tools=(rclone restic hugo prometheus etcd-server etcd-client gh ca-certificates)

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
if ! "${bud[@]}" inspect bench-gobin >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-base)"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends ${tools[*]} \
     && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"
  "${bud[@]}" commit -q "$ctr" bench-gobin >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi

rm -f "$docker_tar"
"${bud[@]}" push -q bench-gobin "docker-archive:$docker_tar:bench/gobin:latest"
ls -l "$docker_tar"
