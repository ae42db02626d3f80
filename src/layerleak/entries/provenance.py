"""Vendor provenance: a file whose bytes are what its package shipped is not a leak.

Package managers record a digest of every file they install. The layer walk reads those records
as it meets them (they are ordinary files in the layers) and, for each file with a match, the
file's own digests. After the walk, a match in a file whose digest equals one its package
database recorded for that path is vendor content: a test key in a library's test suite, an
example token in documentation. Such findings are kept, at ``low`` confidence with the reason
``vendor``; a package file that was modified after installation no longer matches and is reported
as usual.

Databases read:

- dpkg: ``/var/lib/dpkg/info/*.md5sums`` (``<md5>  <path>``) and the ``Conffiles:`` of
  ``/var/lib/dpkg/status`` (configuration files are not in the md5sums);
- apk: ``/lib/apk/db/installed`` (``F:`` directory, ``R:`` file, ``Z:Q1`` base64 SHA-1);
- Python: ``*.dist-info/RECORD`` (``path,sha256=<urlsafe base64>,size``, relative to the
  directory holding the ``.dist-info``).

Records from every layer of the image count: a package upgraded in a later layer still vouches
for the files its older version installed below. On merged-/usr systems a record for ``/bin/x``
also vouches for ``/usr/bin/x``. Byte code (``__pycache__/*.pyc``) is compiled after installation
and recorded nowhere: it counts as vendor content when its ``.py`` source is recorded by a package
and was not itself found modified. Only files and databases that fit in the first
chunk the walk reads (8 MiB) are digested or parsed; a larger file with a match keeps its
confidence (it is reported, never hidden).
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping

VENDOR = "vendor"

_DPKG_MD5SUMS = re.compile(r"^/var/lib/dpkg/info/[^/]+\.md5sums$")
_DPKG_STATUS = "/var/lib/dpkg/status"
_APK_INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
_RECORD = re.compile(r"\.dist-info/RECORD$")


def is_package_db(path: str) -> bool:
    return bool(
        path.endswith("/RECORD") and _RECORD.search(path)
        or path.endswith(".md5sums") and _DPKG_MD5SUMS.match(path)
        or path == _DPKG_STATUS
        or path in _APK_INSTALLED
    )


def package_entries(path: str, data: bytes) -> Iterator[tuple[str, str]]:
    """(absolute path, ``algo:hexdigest``) of every file the database at ``path`` records."""
    text = data.decode("utf-8", "surrogateescape")
    if path.endswith(".md5sums"):
        yield from _dpkg_md5sums(text)
    elif path == _DPKG_STATUS:
        yield from _dpkg_conffiles(text)
    elif path in _APK_INSTALLED:
        yield from _apk_installed(text)
    elif path.endswith("/RECORD"):
        yield from _record(posixpath.dirname(posixpath.dirname(path)), text)


def _dpkg_md5sums(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 32 and name:
            yield "/" + name.lstrip("/"), "md5:" + digest.lower()


def _dpkg_conffiles(text: str) -> Iterator[tuple[str, str]]:
    inside = False
    for line in text.splitlines():
        if line.startswith("Conffiles:"):
            inside = True
        elif inside and line.startswith(" "):
            parts = line.split()
            if len(parts) >= 2 and len(parts[1]) == 32:
                yield parts[0], "md5:" + parts[1].lower()
        else:
            inside = False


def _apk_installed(text: str) -> Iterator[tuple[str, str]]:
    directory, name = "", None
    for line in text.splitlines():
        if line.startswith("F:"):
            directory, name = line[2:], None
        elif line.startswith("R:"):
            name = line[2:]
        elif line.startswith("Z:Q1") and name is not None:
            try:
                digest = base64.b64decode(line[4:], validate=True).hex()
            except (binascii.Error, ValueError):
                continue
            yield "/" + posixpath.join(directory, name).lstrip("/"), "sha1:" + digest
        elif not line:
            directory, name = "", None


def _record(root: str, text: str) -> Iterator[tuple[str, str]]:
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or not row[1].startswith("sha256="):
            continue
        encoded = row[1][len("sha256=") :]
        try:
            digest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
        except (binascii.Error, ValueError):
            continue
        yield posixpath.normpath(posixpath.join(root, row[0])), "sha256:" + digest


def file_digests(data: bytes) -> frozenset[str]:
    """The digests a package database may have recorded for a file with these bytes."""
    return frozenset(
        (
            "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "sha1:" + hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "sha256:" + hashlib.sha256(data).hexdigest(),
        )
    )


def vendored(
    layers: Iterable[tuple[int, Mapping[str, set[str]], Mapping[str, frozenset[str]]]],
) -> set[tuple[int, str]]:
    """(layer index, path) of every digested file whose bytes a package database vouches for.

    ``layers`` gives, per layer, its index, the package records it holds (path -> digests) and the
    digests of its files with matches (path -> digests)."""
    layers = list(layers)
    known: dict[str, set[str]] = {}
    for _, packages, _ in layers:
        for path, digests in packages.items():
            for alias in _aliases(path):
                known.setdefault(alias, set()).update(digests)
    modified = {
        path
        for _, _, files in layers
        for path, digests in files.items()
        if path in known and known[path].isdisjoint(digests)
    }
    return {
        (index, path)
        for index, _, files in layers
        for path, digests in files.items()
        if _vouched(path, digests, known, modified)
    }


def _vouched(path: str, digests: frozenset[str], known: dict[str, set[str]], modified: set[str]) -> bool:
    if not known.get(path, set()).isdisjoint(digests):
        return True
    source = _pyc_source(path)
    return source is not None and source in known and source not in modified


_MERGED_USR = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def _aliases(path: str) -> tuple[str, ...]:
    """Debian's merged /usr: a package records /bin/bash, the layer holds /usr/bin/bash."""
    return (path, "/usr" + path) if path.startswith(_MERGED_USR) else (path,)


def _pyc_source(path: str) -> str | None:
    """``.../__pycache__/name.cpython-311.pyc`` -> ``.../name.py``.

    Byte code is compiled on the machine (pip, dpkg's py3compile), so no database records its
    digest; it is vendor content when its source file is recorded by a package and was not found
    modified (a modified source with a secret is reported itself)."""
    head, _, name = path.rpartition("/__pycache__/")
    if not head or not name.endswith(".pyc"):
        return None
    return f"{head}/{name.split('.', 1)[0]}.py"
