"""What one layer's walk found (:class:`LayerScan`), apart from the walk itself.

The cache, the file-status pass and the findings read these values without importing the layer
walk and its decoders (:mod:`layerleak.layers.walk`): a rescan answered from the cache never
loads them. ``layers.walk`` re-exports every name here.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerleak.models import Match

if TYPE_CHECKING:
    from layerleak.store.sealed import SealedMatch

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
KIND_DIR = "d"
KIND_OTHER = "f"


@dataclass(frozen=True, slots=True)
class FileHit:
    path: str
    match: Match | SealedMatch  # sealed: from the cache, without plaintext (store/sealed.py)
    inner_path: str | None = None
    git: tuple[str | None, str | None, str, bool, bool] | None = None  # gitrepo.GitHit.origin
    key_id: str | None = None  # a private key's public-key fingerprint ("SHA256:..."): entries/pubkeys.py


@dataclass(slots=True)
class LayerScan:
    """What one layer holds and what was found in it."""

    key: str
    entries: dict[str, str] = field(default_factory=dict)  # path -> KIND_DIR | KIND_OTHER
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    hits: list[FileHit] = field(default_factory=list)
    bytes_read: int = 0
    files_scanned: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # format -> count
    error: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, what was cut short)
    # Vendor provenance (entries/provenance.py): what this layer's package databases record
    # (path -> {"algo:hex"}), and the digests of its files that have matches.
    packages: dict[str, set[str]] = field(default_factory=dict)
    digests: dict[str, frozenset[str]] = field(default_factory=dict)
    # Correlation (entries/pubkeys.py): key fingerprint -> [(path, kind, detail)] of the
    # certificates and public keys in this layer.
    public_keys: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # sha256 of the whole uncompressed stream (checked against the config's diff_id) and of the
    # blob as stored (checked against the manifest's digest); None when not read whole.
    diff_id: str | None = None
    blob_sha256: str | None = None


def normalize(name: str) -> str:
    """The absolute path of a member name. Bytes that are not UTF-8 (kept by tarfile as lone
    surrogates) become the text ``\\xNN``, so every path is a string any encoder takes."""
    if not name.isascii():
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return posixpath.normpath("/" + name.lstrip("/"))



def merge(key: str, parts: list[LayerScan], size: int, diff_id: str | None = None) -> LayerScan:
    """One layer's scan from the scans of its consecutive parts (``size``: the whole layer;
    ``diff_id``: its digest, hashed on the side)."""
    result = LayerScan(key=key, bytes_read=size, diff_id=diff_id, blob_sha256=diff_id)
    for part in parts:
        result.entries.update(part.entries)  # a path seen twice keeps its last kind, as in one walk
        result.whiteouts |= part.whiteouts
        result.opaque |= part.opaque
        result.hits.extend(part.hits)
        result.files_scanned += part.files_scanned
        for reason, count in part.skipped.items():
            result.skipped[reason] = result.skipped.get(reason, 0) + count
        result.notes.extend(part.notes)
        for path, digests in part.packages.items():
            result.packages.setdefault(path, set()).update(digests)
        result.digests.update(part.digests)
        for fp, places in part.public_keys.items():
            result.public_keys.setdefault(fp, []).extend(places)
    return result
