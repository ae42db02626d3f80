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
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init "${1:-$here/out}" java
bench_base
bench_apt bench-java bench-base openjdk-17-jre-headless libbcprov-java libbcpkix-java \
  libjackson2-databind-java libtomcat10-java libjetty9-java libpostgresql-jdbc-java libmariadb-java \
  liblog4j2-java libcommons-lang3-java libcommons-codec-java libhttpclient-java libgoogle-gson-java \
  libguava-java libslf4j-java libnetty-java libjsch-java
bench_export bench-java bench/java:latest
