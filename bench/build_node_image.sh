#!/usr/bin/env bash
# Build the Node.js image of the precision benchmark, once, into bench/out/:
#   Debian bookworm minbase (debootstrap, shared with build_image.sh) + Debian's nodejs + an
#   `npm install` of the popular SDKs in bench/node/package.json (cloud, payments, messaging, auth,
#   databases), exported as docker-archive: bench/out/node.docker.tar.
# Uses Debian's and npm's package registries through their ordinary clients (debootstrap, apt,
# npm) with their default configuration, and a private buildah storage root (vfs) under bench/out/.
# npm runs on the host (its configuration; the build container has none) with --ignore-scripts,
# and the project is copied in. Rerunning it is a no-op once the archive exists.
#   python3 bench/precision.py docker-archive:bench/out/node.docker.tar
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
docker_tar="$out/node.docker.tar"
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
if [[ ! -e "$out/node/.done" ]]; then
  rm -rf "$out/node"
  mkdir -p "$out/node"
  cp "$here/node/package.json" "$out/node/"
  (cd "$out/node" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch "$out/node/.done"
fi

if ! "${bud[@]}" inspect bench-base >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from scratch)"
  "${bud[@]}" add "$ctr" "$out/rootfs.tar" /
  "${bud[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${bud[@]}" commit -q "$ctr" bench-base >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi
if ! "${bud[@]}" inspect bench-nodejs >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-base)"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends nodejs ca-certificates \
     && rm -rf /var/lib/apt/lists/*"
  "${bud[@]}" commit -q "$ctr" bench-nodejs >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi
if ! "${bud[@]}" inspect bench-node-app >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-nodejs)"
  "${bud[@]}" copy "$ctr" "$out/node/package.json" "$out/node/package-lock.json" /srv/app/
  "${bud[@]}" copy "$ctr" "$out/node/node_modules" /srv/app/node_modules
  "${bud[@]}" run --isolation chroot "$ctr" -- sh -c \
    "printf 'const express = require(\"express\");\nexpress().listen(3000);\n' > /srv/app/index.js"
  "${bud[@]}" config --workingdir /srv/app --cmd "node index.js" "$ctr"
  "${bud[@]}" commit -q "$ctr" bench-node-app >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi

rm -f "$docker_tar"
"${bud[@]}" push -q bench-node-app "docker-archive:$docker_tar:bench/node:latest"
ls -l "$docker_tar"
echo "node_modules files: $(find "$out/node/node_modules" -type f | wc -l)"
