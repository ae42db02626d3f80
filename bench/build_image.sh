#!/usr/bin/env bash
# Build the realistic benchmark image of the speed issue, once, into bench/out/:
#   Debian bookworm minbase (debootstrap) + python3 + a venv of popular packages, in 4 layers,
#   exported as docker-archive (uncompressed layers) and oci-archive (gzip layers).
# Uses Debian's and Python's package registries through their ordinary clients (debootstrap, apt,
# pip) with their default configuration, and a private buildah storage root (vfs) under bench/out/.
# Takes several minutes; rerunning it is a no-op once both archives exist.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
docker_tar="$out/realistic.docker.tar"
oci_tar="$out/realistic.oci.tar"
if [[ -s "$docker_tar" && -s "$oci_tar" ]]; then
  echo "already built: $docker_tar $oci_tar"
  exit 0
fi
mkdir -p "$out"
store="$out/storage"
bud=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
packages=(boto3 django flask cryptography paramiko sqlalchemy pyjwt numpy pandas)

# 1: the minbase root file system
if [[ ! -s "$out/rootfs.tar" ]]; then
  rm -rf "$out/rootfs"
  debootstrap --variant=minbase bookworm "$out/rootfs"
  tar -C "$out/rootfs" --numeric-owner -cf "$out/rootfs.tar.partial" .
  mv "$out/rootfs.tar.partial" "$out/rootfs.tar"
  rm -rf "$out/rootfs"
fi

step() { # step NAME FROM -- commands to run inside (sh -c)
  local name="$1" from="$2" script="$3" ctr
  ctr="$("${bud[@]}" from "$from")"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c "$script"
  "${bud[@]}" commit -q "$ctr" "$name" >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
}

if ! "${bud[@]}" inspect bench-base >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from scratch)"
  "${bud[@]}" add "$ctr" "$out/rootfs.tar" /
  "${bud[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${bud[@]}" commit -q "$ctr" bench-base >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi
if ! "${bud[@]}" inspect bench-python >/dev/null 2>&1; then
  step bench-python bench-base \
    "apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
     && rm -rf /var/lib/apt/lists/*"
fi
# The wheels are fetched on the host with its pip configuration (the build container has none),
# then installed inside from a local folder.
if [[ ! -e "$out/wheels/.done" ]]; then
  pip download -q -d "$out/wheels" --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    "${packages[@]}"
  touch "$out/wheels/.done"
fi
if ! "${bud[@]}" inspect bench-venv >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-python)"
  "${bud[@]}" copy "$ctr" "$out/wheels" /tmp/wheels
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-cache-dir --no-index \
     --find-links /tmp/wheels ${packages[*]} && rm -rf /tmp/wheels"
  "${bud[@]}" commit -q "$ctr" bench-venv >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi
if ! "${bud[@]}" inspect bench-app >/dev/null 2>&1; then
  step bench-app bench-venv \
    "mkdir -p /srv/app && printf 'import flask\napp = flask.Flask(__name__)\n' > /srv/app/app.py"
fi

rm -f "$docker_tar" "$oci_tar"
"${bud[@]}" push -q bench-app "docker-archive:$docker_tar:bench/realistic:latest"
"${bud[@]}" push -q bench-app "oci-archive:$oci_tar:bench/realistic:latest"
ls -l "$docker_tar" "$oci_tar"
