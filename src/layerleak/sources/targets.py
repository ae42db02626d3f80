"""Parse a TARGET the way skopeo's transports name them, and open the matching source.

``docker-archive:PATH[:REF]``, ``oci-archive:PATH[:REF]``, ``oci:DIR[:REF]``,
``docker-daemon:NAME[:TAG]``, ``docker://HOST/REPO[:TAG|@DIGEST]``, or a bare path (detected).
"""

from __future__ import annotations

import os
import stat
import tarfile

from layerleak.errors import TargetError, UsageError
from layerleak.layers.decompress import sniff_compression
from layerleak.sources.archive import STDIN, OciDirSource, TarArchiveSource
from layerleak.sources.interface import ImageSource, SourceOptions

TRANSPORTS = ("docker-archive", "oci-archive", "oci", "docker-daemon", "docker")


def split_path_ref(spec: str) -> tuple[str, str | None]:
    """``PATH[:REF]`` where PATH itself may contain colons: the longest existing prefix wins."""
    if os.path.exists(spec):
        return spec, None
    idx = len(spec)
    while (idx := spec.rfind(":", 0, idx)) > 0:
        if os.path.exists(spec[:idx]):
            return spec[:idx], spec[idx + 1 :] or None
    return spec, None


def open_target(target: str, options: SourceOptions | None = None) -> ImageSource:
    options = options or SourceOptions()
    transport, sep, rest = target.partition(":")
    if sep and transport in TRANSPORTS:
        if transport == "docker":
            if not rest.startswith("//"):
                raise UsageError(f"{target}: registry targets look like docker://HOST/REPO:TAG")
            from layerleak.sources.registry import RegistrySource

            return RegistrySource(target, rest[2:], options)
        if transport == "docker-daemon":
            from layerleak.sources.daemon import DaemonSource

            return DaemonSource(target, rest)
        path, ref = _stdin_ref(rest) or split_path_ref(rest)
        if path != STDIN and not os.path.exists(path):
            raise TargetError(f"{target}: {path} does not exist")
        if transport == "oci":
            if path == STDIN:
                raise TargetError(f"{target}: a layout directory cannot come on stdin (use oci-archive:-)")
            if not os.path.isdir(path):
                raise TargetError(f"{target}: {path} is not a directory (use oci-archive: for a tar)")
            return OciDirSource(target, path, ref)
        kind = "docker" if transport == "docker-archive" else "oci"
        if os.path.isdir(path):
            raise TargetError(f"{target}: {path} is a directory (use oci:{path})")
        return TarArchiveSource(target, path, kind, ref)
    return _detect(target)


STDIN_PATHS = (STDIN, "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def reads_stdin(target: str) -> bool:
    """True when ``target`` is an archive read from standard input (``-``, ``/dev/stdin``)."""
    transport, sep, rest = target.partition(":")
    spec = rest if sep and transport in ("docker-archive", "oci-archive") else target
    path = STDIN if _stdin_ref(spec) else split_path_ref(spec)[0]
    return path in STDIN_PATHS


def _stdin_ref(spec: str) -> tuple[str, str | None] | None:
    """``-`` or ``-:REF``: the archive comes on standard input (unless a file named ``-`` exists)."""
    if (spec == STDIN or spec.startswith(STDIN + ":")) and not os.path.exists(spec):
        return STDIN, spec[2:] or None
    return None


def _detect(target: str) -> ImageSource:
    stdin = _stdin_ref(target)
    if stdin is not None:
        return TarArchiveSource(target, stdin[0], None, stdin[1])
    path, ref = split_path_ref(target)
    if not os.path.exists(path):
        raise TargetError(
            f"{target}: no such file or directory, and not a known transport "
            f"({', '.join(t + ':' for t in TRANSPORTS)})"
        )
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "index.json")):
            return OciDirSource(target, path, ref)
        raise TargetError(f"{target}: directory is not an OCI image layout (no index.json)")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe or FIFO: its first bytes can be read once
        return TarArchiveSource(target, path, None, ref)
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise TargetError(f"{target}: cannot read ({exc.strerror})") from None
    if sniff_compression(head) is None and not _is_tar(head):
        raise TargetError(f"{target}: not an image archive (neither tar nor compressed tar)")
    return TarArchiveSource(target, path, None, ref)


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True
