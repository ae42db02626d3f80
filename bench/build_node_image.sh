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
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init "${1:-$here/out}" node
bench_base
if [[ ! -e "$out/node/.done" ]]; then
  rm -rf "$out/node"
  mkdir -p "$out/node"
  cp "$here/node/package.json" "$out/node/"
  (cd "$out/node" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch "$out/node/.done"
fi
bench_apt bench-nodejs bench-base nodejs ca-certificates
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
bench_export bench-node-app bench/node:latest
echo "node_modules files: $(find "$out/node/node_modules" -type f | wc -l)"
