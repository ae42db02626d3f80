# Shared steps of the bench image builds (sourced by build_*_image.sh): a private buildah storage
# root (vfs) under OUT, the Debian bookworm minbase root file system (debootstrap, once), the
# bench-base image made from it, and images made a step at a time on top of it.
#   source "$here/lib.sh"; bench_init OUT NAME   # sets out, docker_tar, bud; exits if already built
set -euo pipefail

bench_init() { # bench_init OUT NAME: the archive OUT/NAME.docker.tar, or exit 0 if it exists
  out="$1"
  docker_tar="$out/$2.docker.tar"
  if [[ -s "$docker_tar" ]]; then
    echo "already built: $docker_tar"
    exit 0
  fi
  mkdir -p "$out"
  local store="$out/storage"
  bud=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
}

bench_base() { # the minbase root file system and the bench-base image, each made once
  if [[ ! -s "$out/rootfs.tar" ]]; then
    rm -rf "$out/rootfs"
    debootstrap --variant=minbase bookworm "$out/rootfs"
    tar -C "$out/rootfs" --numeric-owner -cf "$out/rootfs.tar.partial" .
    mv "$out/rootfs.tar.partial" "$out/rootfs.tar"
    rm -rf "$out/rootfs"
  fi
  if ! "${bud[@]}" inspect bench-base >/dev/null 2>&1; then
    local ctr
    ctr="$("${bud[@]}" from scratch)"
    "${bud[@]}" add "$ctr" "$out/rootfs.tar" /
    "${bud[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    "${bud[@]}" commit -q "$ctr" bench-base >/dev/null
    "${bud[@]}" rm "$ctr" >/dev/null
  fi
}

bench_step() { # bench_step NAME FROM SCRIPT: image NAME = FROM + `sh -c SCRIPT` inside, made once
  local name="$1" from="$2" script="$3" ctr
  "${bud[@]}" inspect "$name" >/dev/null 2>&1 && return 0
  ctr="$("${bud[@]}" from "$from")"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c "$script"
  "${bud[@]}" commit -q "$ctr" "$name" >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
}

bench_apt() { # bench_apt NAME FROM PACKAGE...: FROM + Debian packages, made once
  local name="$1" from="$2"
  shift 2
  bench_step "$name" "$from" "mkdir -p /usr/share/man/man1 && apt-get update -q \
    && apt-get install -y -q --no-install-recommends $* && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"
}

bench_export() { # bench_export IMAGE REPO:TAG: IMAGE written as the docker-archive
  rm -f "$docker_tar"
  "${bud[@]}" push -q "$1" "docker-archive:$docker_tar:$2"
  ls -l "$docker_tar"
}
