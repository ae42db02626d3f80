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

- npm: each installed package's own ``node_modules/<name>/package.json`` (its ``files``,
  ``main`` and ``bin``), and the hidden lockfile ``node_modules/.package-lock.json`` when present.
  npm records no per-file digest, so a file is vendor content when it lies in a package directory
  that has a package.json, is among the files that package publishes (the ``files`` patterns, or
  everything when there are none, plus package.json, README, LICENSE, ``main`` and ``bin``; never
  what npm never publishes: ``.npmrc``, ``.git/``, ``npm-debug.log``, ``*.orig``, ...), and, when
  the project's lockfile is in the image, the lockfile knows the package;
- Go modules: ``<GOMODCACHE>/cache/download/<module>/@v/<version>.ziphash`` marks
  ``<GOMODCACHE>/<module>@<version>/`` as an extracted module (the go command writes it after
  checking the module against go.sum);
- Ruby gems: ``<GEM_HOME>/specifications/<name>-<version>.gemspec`` marks
  ``<GEM_HOME>/gems/<name>-<version>/`` as an installed gem;
- Maven and Gradle: the ``<file>.sha1`` a Maven local repository keeps next to each downloaded
  artifact, and the SHA-1 directory of Gradle's ``caches/modules-2/files-2.1/<g>/<a>/<v>/<sha1>/``
  (both digests of the whole jar: a finding inside a jar whose bytes match is vendor content).

Records from every layer of the image count: a package upgraded in a later layer still vouches
for the files its older version installed below. On merged-/usr systems a record for ``/bin/x``
also vouches for ``/usr/bin/x``. Byte code (``__pycache__/*.pyc``) is compiled after installation
and recorded nowhere: it counts as vendor content when its ``.py`` source is recorded by a package
and was not itself found modified. Only files and databases that fit in the first
chunk the walk reads (8 MiB) are parsed. A file that fits is digested with every algorithm;
a larger one is digested on the way with one (SHA-256 under ``site-packages`` and
``/usr/local/lib/python*``, else MD5), so a large file is vendor content for dpkg and Python
records, never for apk's SHA-1; npm, Go modules and gems vouch by path whatever the size.
"""

from __future__ import annotations

import base64
import binascii
import csv
import fnmatch
import hashlib
import io
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

VENDOR = "vendor"

_DPKG_MD5SUMS = re.compile(r"^/var/lib/dpkg/info/[^/]+\.md5sums$")
_DPKG_STATUS = "/var/lib/dpkg/status"
_APK_INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
_RECORD = re.compile(r"\.dist-info/RECORD$")


_NPM_PACKAGE_JSON = re.compile(r"/node_modules/(?:@[^/]+/)?[^/]+/package\.json$")
_NPM_LOCK = "/node_modules/.package-lock.json"
_GO_ZIPHASH = re.compile(
    r"^(?P<cache>.*/pkg/mod)/cache/download/(?P<module>.+)/@v/(?P<version>[^/]+)\.ziphash$"
)
_GEMSPEC = re.compile(r"^(?P<home>.*)/specifications/(?:default/)?(?P<gem>[^/]+)\.gemspec$")
_MAVEN_SHA1 = re.compile(r"/repository/.+\.(?:jar|war|ear|aar|pom)\.sha1$")
_GRADLE_CACHE = re.compile(r"/caches/modules-2/files-2\.1/[^/]+/[^/]+/[^/]+/(?P<sha1>[0-9a-f]{40})/[^/]+$")

# Markers kept in the package records, beside "algo:hexdigest" digests
NPM_PACKAGE = "npm:package"  # on a package directory: it has a package.json
NPM_LOCKED = "npm:locked"  # on a package directory: the project's lockfile knows it
NPM_LOCKFILE = "npm:lockfile"  # on a node_modules directory: its project has a hidden lockfile
NPM_ALL = "npm:all"  # the package.json has no "files": everything is published
NPM_FILES, NPM_MAIN, NPM_BIN = "npm-files:", "npm-main:", "npm-bin:"
GO_MODULE = "go:module"
GEM_INSTALLED = "gem:installed"


# Every name is_package_db accepts ends with one of these: one test rejects the other files.
_DB_ENDINGS = ("/RECORD", ".md5sums", "/status", "/installed", "/package.json", _NPM_LOCK, ".ziphash",
               ".gemspec", ".sha1")


def is_package_db(path: str) -> bool:
    if not path.endswith(_DB_ENDINGS):
        return False
    return bool(
        path.endswith("/RECORD") and _RECORD.search(path)
        or path.endswith(".md5sums") and _DPKG_MD5SUMS.match(path)
        or path == _DPKG_STATUS
        or path in _APK_INSTALLED
        or path.endswith("/package.json") and _NPM_PACKAGE_JSON.search(path)
        or path.endswith(_NPM_LOCK)
        or path.endswith(".ziphash") and _GO_ZIPHASH.match(path)
        or path.endswith(".gemspec") and _GEMSPEC.match(path)
        or path.endswith(".sha1") and _MAVEN_SHA1.search(path)
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
    elif path.endswith(_NPM_LOCK):
        yield from _npm_lockfile(path, text)
    elif path.endswith("/package.json"):
        yield from _npm_package(path, text)
    elif path.endswith(".ziphash"):
        m = _GO_ZIPHASH.match(path)
        if m:
            yield f"{m.group('cache')}/{m.group('module')}@{m.group('version')}", GO_MODULE
    elif path.endswith(".gemspec"):
        m = _GEMSPEC.match(path)
        if m:
            yield f"{m.group('home')}/gems/{m.group('gem')}", GEM_INSTALLED
    elif path.endswith(".sha1"):
        digest = text.split(maxsplit=1)[0].lower() if text.strip() else ""
        if len(digest) == 40 and all(c in "0123456789abcdef" for c in digest):
            yield path[: -len(".sha1")], "sha1:" + digest


def _npm_package(path: str, text: str) -> Iterator[tuple[str, str]]:
    """A package's own package.json: what it publishes."""
    try:
        doc = json.loads(text)
    except ValueError:
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return
    directory = posixpath.dirname(path)
    yield directory, NPM_PACKAGE
    files = doc.get("files")
    if isinstance(files, list) and files:
        for pattern in files:
            if isinstance(pattern, str) and pattern.strip():
                yield directory, NPM_FILES + pattern.strip()
    else:
        yield directory, NPM_ALL
    main = doc.get("main")
    if isinstance(main, str) and main:
        yield directory, NPM_MAIN + main
    bins = doc.get("bin")
    for target in (bins.values() if isinstance(bins, dict) else [bins]):
        if isinstance(target, str) and target:
            yield directory, NPM_BIN + target


def _npm_lockfile(path: str, text: str) -> Iterator[tuple[str, str]]:
    """``node_modules/.package-lock.json``: every package directory it knows, relative to the
    project (``node_modules/a/node_modules/b``)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, dict):
        return
    modules = posixpath.dirname(path)
    project = posixpath.dirname(modules)
    yield modules, NPM_LOCKFILE
    for key in packages:
        if isinstance(key, str) and key.startswith("node_modules/"):
            yield posixpath.join(project, key), NPM_LOCKED


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




class Hashing:
    """A reader that digests what passes through it: for files too large to hold whole. One
    algorithm, chosen by where the file is (pip's RECORD under ``site-packages`` or
    ``/usr/local/lib/python*``: SHA-256; else dpkg's MD5), so the
    cost stays one hash over large files; :meth:`digests` reads what the scan left unread."""

    def __init__(self, inner: Reader, path: str) -> None:
        self.inner = inner
        self.algo = large_file_algo(path)
        self.hash = hashlib.new(self.algo, usedforsecurity=False)

    def read(self, n: int = -1, /) -> bytes:
        data = self.inner.read(n)
        self.hash.update(data)
        return data

    def digests(self) -> frozenset[str]:
        while self.read(1 << 20):
            pass
        return frozenset({f"{self.algo}:{self.hash.hexdigest()}"})


def large_file_algo(path: str) -> str:
    """The one digest a file too large to hold whole gets (see :class:`Hashing`)."""
    pip = "/site-packages/" in path or path.startswith("/usr/local/lib/python")
    return "sha256" if pip else "md5"


def region_digests(fd: int, offset: int, size: int, path: str) -> frozenset[str]:
    """What :meth:`Hashing.digests` gives for a large file, read again from ``size`` bytes at
    ``offset`` of the open file ``fd`` (without moving its position). A layer read from a file
    digests a large file only when it has a match, instead of every one on the way. A file
    shorter than ``size`` raises OSError, as reading it through the tar did."""
    algo = large_file_algo(path)
    digest = hashlib.new(algo, usedforsecurity=False)
    while size > 0:
        data = os.pread(fd, min(size, 1 << 20), offset)
        if not data:
            raise OSError(f"file ends {size} bytes early")
        digest.update(data)
        offset += len(data)
        size -= len(data)
    return frozenset({f"{algo}:{digest.hexdigest()}"})


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
        if digests and path in known and known[path].isdisjoint(digests)
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
    if source is not None and source in known and source not in modified:
        return True
    if "/node_modules/" in path:
        return npm_published(path, known)
    gradle = _GRADLE_CACHE.search(path)
    if gradle is not None:
        return "sha1:" + gradle.group("sha1") in digests
    return _under_marked(path, known, (GO_MODULE, GEM_INSTALLED))


def _under_marked(path: str, known: Mapping[str, set[str]], markers: tuple[str, ...]) -> bool:
    """Whether a directory above ``path`` carries one of ``markers`` (a Go module, a gem)."""
    directory = posixpath.dirname(path)
    while directory not in ("", "/"):
        marks = known.get(directory)
        if marks and any(m in marks for m in markers):
            return True
        directory = posixpath.dirname(directory)
    return False


# What npm never puts in a package, whatever its "files" say (npm-packlist's fixed ignores).
_NPM_NEVER_DIRS = frozenset({".git", "CVS", ".svn", ".hg", "node_modules"})
_NPM_NEVER_FILES = frozenset({".npmrc", "npm-debug.log", "config.gypi", "package-lock.json", ".DS_Store",
                              ".lock-wscript"})
_NPM_ALWAYS = re.compile(r"(?i)^(?:package\.json|(?:readme|license|licence)(?:\.[^/]*)?)$")


def npm_package_dir(path: str) -> tuple[str, str] | None:
    """(package directory, path inside it) of a file in ``node_modules``: the innermost package."""
    i = path.rfind("/node_modules/")
    if i < 0:
        return None
    rest = path[i + len("/node_modules/") :].split("/")
    size = 2 if rest[0].startswith("@") else 1
    if len(rest) <= size:
        return None
    return path[: i + len("/node_modules/")] + "/".join(rest[:size]), "/".join(rest[size:])


def npm_published(path: str, known: Mapping[str, set[str]]) -> bool:
    """Whether the file at ``path`` is one its npm package publishes (see the module doc)."""
    found = npm_package_dir(path)
    if found is None:
        return False
    directory, inside = found
    marks = known.get(directory)
    if not marks or NPM_PACKAGE not in marks:
        return False
    first = path.find("/node_modules/")
    if NPM_LOCKFILE in known.get(path[: first + len("/node_modules")], ()) and NPM_LOCKED not in marks:
        return False  # the project's lockfile does not know this package
    parts = inside.split("/")
    base = parts[-1]
    if _NPM_NEVER_DIRS.intersection(parts[:-1]) or base in _NPM_NEVER_FILES:
        return False
    if base.startswith("._") or base.endswith(".orig") or fnmatch.fnmatchcase(base, ".*.swp"):
        return False
    if (len(parts) == 1 and _NPM_ALWAYS.match(base)) or NPM_ALL in marks:
        return True
    for mark in marks:
        if mark.startswith((NPM_MAIN, NPM_BIN)) and _same_file(inside, mark.split(":", 1)[1]):
            return True
    patterns = [m[len(NPM_FILES) :] for m in marks if m.startswith(NPM_FILES)]
    included = any(_npm_match(inside, p) for p in patterns if not p.startswith("!"))
    return included and not any(_npm_match(inside, p[1:]) for p in patterns if p.startswith("!"))


def _same_file(inside: str, target: str) -> bool:
    target = posixpath.normpath(target.strip()).removeprefix("./")
    return inside in (target, target + ".js", target + ".json", target + "/index.js")


def _npm_match(inside: str, pattern: str) -> bool:
    """A ``files`` pattern: a file or a directory (and everything in it), globs allowed."""
    pattern = posixpath.normpath(pattern.strip()).removeprefix("./").removeprefix("/").rstrip("/")
    if not pattern or pattern == ".":
        return True
    if inside == pattern or inside.startswith(pattern + "/"):
        return True
    glob = pattern.replace("**/", "*").replace("/**", "/*")
    if fnmatch.fnmatchcase(inside, glob):
        return True
    # a glob naming directories ("lib/*", "dist*"): the files below them
    parts = inside.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:k]), glob) for k in range(1, len(parts)))


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
