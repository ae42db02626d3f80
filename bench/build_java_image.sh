#!/usr/bin/env bash
# Build the Java image of the precision benchmark, once, into bench/out/:
#   Debian bookworm minbase (debootstrap, shared with build_image.sh) + a JRE + Debian's packaged
#   Java libraries (jars under /usr/share/java: Bouncy Castle, Jackson, Tomcat, Jetty, JDBC drivers,
#   Log4j, Commons, ...), exported as docker-archive: bench/out/java.docker.tar.
# Uses Debian's package registry through apt, and a private buildah storage root (vfs) under
# bench/out/. (Maven Central is not reachable from this workplace, so no ~/.m2 repository here.)
#   python3 bench/precision.py docker-archive:bench/out/java.docker.tar
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
docker_tar="$out/java.docker.tar"
if [[ -s "$docker_tar" ]]; then
  echo "already built: $docker_tar"
  exit 0
fi
mkdir -p "$out"
store="$out/storage"
bud=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
jars=(openjdk-17-jre-headless libbcprov-java libbcpkix-java libjackson2-databind-java libtomcat10-java
      libjetty9-java libpostgresql-jdbc-java libmariadb-java liblog4j2-java libcommons-lang3-java
      libcommons-codec-java libhttpclient-java libgoogle-gson-java libguava-java libslf4j-java
      libnetty-java libjsch-java)

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
if ! "${bud[@]}" inspect bench-java >/dev/null 2>&1; then
  ctr="$("${bud[@]}" from bench-base)"
  "${bud[@]}" run --isolation chroot --network host "$ctr" -- sh -c \
    "mkdir -p /usr/share/man/man1 && apt-get update -q \
     && apt-get install -y -q --no-install-recommends ${jars[*]} && rm -rf /var/lib/apt/lists/*"
  "${bud[@]}" commit -q "$ctr" bench-java >/dev/null
  "${bud[@]}" rm "$ctr" >/dev/null
fi

rm -f "$docker_tar"
"${bud[@]}" push -q bench-java "docker-archive:$docker_tar:bench/java:latest"
ls -l "$docker_tar"
