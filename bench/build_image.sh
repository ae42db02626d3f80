#!/usr/bin/env bash
# Build the realistic benchmark image of the speed issue, once, into bench/out/:
#   Debian bookworm minbase (debootstrap) + python3 + a venv of popular packages, in 4 layers,
#   exported as docker-archive (uncompressed layers) and oci-archive (gzip layers).
# Uses Debian's and Python's package registries through their ordinary clients (debootstrap, apt,
# pip) with their default configuration, and a private buildah storage root (vfs) under bench/out/.
# Takes several minutes; rerunning it is a no-op once both archives exist.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
out="${1:-$here/out}"
docker_tar="$out/realistic.docker.tar"
oci_tar="$out/realistic.oci.tar"
if [[ -s "$docker_tar" && -s "$oci_tar" ]]; then
  echo "already built: $docker_tar $oci_tar"
  exit 0
fi
mkdir -p "$out"
bud=(buildah --root "$out/storage/root" --runroot "$out/storage/run" --storage-driver vfs)
packages=(boto3 django flask cryptography paramiko sqlalchemy pyjwt numpy pandas)

bench_base
bench_apt bench-python bench-base python3 python3-venv ca-certificates
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
bench_step bench-app bench-venv \
  "mkdir -p /srv/app && printf 'import flask\napp = flask.Flask(__name__)\n' > /srv/app/app.py"

rm -f "$docker_tar" "$oci_tar"
"${bud[@]}" push -q bench-app "docker-archive:$docker_tar:bench/realistic:latest"
"${bud[@]}" push -q bench-app "oci-archive:$oci_tar:bench/realistic:latest"
ls -l "$docker_tar" "$oci_tar"
