"""Values that flow through the scanner: frozen, typed, and free of plaintext secrets by default."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """Ordered so that ``severity >= threshold`` reads naturally."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None

    def __str__(self) -> str:
        return self.name.lower()


class Confidence(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, text: str) -> Confidence:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown confidence {text!r} (expected low, medium or high)") from None

    def __str__(self) -> str:
        return self.name.lower()


class Status(enum.Enum):
    """Where a file-borne finding stands in the final filesystem."""

    PRESENT = "present"
    DELETED = "deleted"
    OVERWRITTEN = "overwritten"

    def __str__(self) -> str:
        return self.value


class SourceKind(enum.Enum):
    LAYER = "layer"
    CONFIG = "config"
    HISTORY = "history"
    ANNOTATION = "annotation"  # key: the annotation's name (manifest, index or descriptor)
    ATTESTATION = "attestation"  # key: the in-toto statement's predicate and the field inside it

    def __str__(self) -> str:
        return self.value


Detail = tuple[tuple[str, str | int | bool], ...]


@dataclass(frozen=True, slots=True)
class Validity:
    """What a value's own structure says about it, found offline (see detect/validity.py).

    ``format`` is one of checksum-ok, checksum-bad, parsed, unparsed, expired; ``detail`` holds
    (name, value) pairs that carry no secret (key type and fingerprint, JWT claims, ...)."""

    format: str
    detail: Detail = ()

    def as_dict(self) -> dict[str, object]:
        return {"format": self.format, "detail": dict(self.detail)}


@dataclass(frozen=True, slots=True)
class Match:
    """A rule matched inside one chunk of bytes. Holds the plaintext: never leaves the scan."""

    rule_id: str
    secret: str
    offset: int  # byte offset of the secret inside the scanned buffer
    line: int  # 1-based line of the secret inside the scanned buffer
    confidence: Confidence = Confidence.HIGH
    reason: str | None = None  # why confidence was lowered, e.g. "vendor"
    validity: Validity | None = None  # offline validity (checksum, parsed structure), if judged


@dataclass(frozen=True, slots=True)
class GitOrigin:
    """Where a secret found in a git object database lives in the repository's history."""

    commit: str | None  # the first commit whose tree (or message) holds it; None: no commit does
    path: str | None  # its path in that commit's tree
    object: str  # the blob (or commit, tag) id
    reachable: bool  # the commit is reachable from HEAD, a branch or a tag
    in_worktree: bool  # the same secret is still in the working-tree file at that path


@dataclass(frozen=True, slots=True)
class Location:
    """Where a secret lives in an image."""

    source: SourceKind
    layer_index: int | None = None
    layer_digest: str | None = None
    created_by: str | None = None
    path: str | None = None
    inner_path: str | None = None
    line: int | None = None
    status: Status | None = None
    removed_in_layer: int | None = None
    key: str | None = None
    git: GitOrigin | None = None  # a secret in a git repository's history (entries/gitrepo.py)


@dataclass(frozen=True, slots=True)
class Related:
    """A place in the same image holding the public half of a leaked private key."""

    kind: str  # "certificate", "public-key", "ssh-public-key", "keystore-certificate"
    fingerprint: str  # "SHA256:<base64>" of the public key's DER SubjectPublicKeyInfo (detect/validity.py)
    layer_index: int
    path: str
    detail: str  # a certificate's subject, an OpenSSH key's comment, a PEM label


@dataclass(frozen=True, slots=True)
class Finding:
    """A reportable secret. ``secret`` is plaintext only when the user asked for it."""

    rule_id: str
    title: str
    severity: Severity
    confidence: Confidence
    target: str
    image: str | None  # None: a layer of no known image (the manifest was never reached)
    image_id: str | None
    location: Location
    fingerprint: str
    redacted: str
    secret: str | None = None
    reason: str | None = None
    # The same secret in the same file in other layers (see dedup.py); ``location`` is the lowest.
    other_locations: tuple[Location, ...] = ()
    validity: Validity | None = None  # offline validity of the secret (detect/validity.py)
    # A private key's certificates and public keys found in the same image (entries/pubkeys.py).
    related: tuple[Related, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanIssue:
    """Something that could not be scanned completely; reported, never fatal for the rest.

    ``fatal`` issues (a layer that cannot be read to its end, a missing or corrupt blob) make the
    scan's result incomplete: exit code 2. Others (a nested archive cut short by a documented
    limit, a corrupt member inside one, a malformed but readable manifest) are warnings.
    """

    message: str
    layer_index: int | None = None
    layer_digest: str | None = None
    path: str | None = None
    fatal: bool = True
    # A notice about the scan rather than the image (badkeys' blocklist not installed): in the
    # report with the warnings, not repeated on stderr, so an input error stays one line there.
    notice: bool = False


@dataclass(frozen=True, slots=True)
class LayerSummary:
    index: int
    digest: str  # diff_id (uncompressed digest) when known, else the blob digest
    blob_digest: str | None
    media_type: str | None
    created_by: str | None
    bytes_scanned: int
    files_scanned: int


@dataclass(frozen=True, slots=True)
class ImageResult:
    target: str
    image: str | None  # a human name: repo:tag, ref name, or digest; None: unattributed layers
    image_id: str | None  # config digest
    platform: str | None
    layers: tuple[LayerSummary, ...]
    bytes_scanned: int
    errors: tuple[ScanIssue, ...]
    findings: tuple[Finding, ...]
    hidden_findings: int = 0  # below the --min-confidence threshold, left out of ``findings``
    baselined: int = 0  # in the --baseline report, left out of ``findings``
    ignored: int = 0  # matched an [[ignore]] entry of .layerleak.toml, left out of ``findings``


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One TARGET argument: zero or more images, or an error that stopped it before any image."""

    target: str
    images: tuple[ImageResult, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScanReport:
    targets: tuple[TargetResult, ...]
    ruleset: str
    secrets_shown: bool = False

    @property
    def findings(self) -> list[Finding]:
        return [f for t in self.targets for i in t.images for f in i.findings]

    @property
    def baselined(self) -> int:
        return sum(i.baselined for t in self.targets for i in t.images)

    @property
    def ignored(self) -> int:
        return sum(i.ignored for t in self.targets for i in t.images)

    @property
    def has_errors(self) -> bool:
        return any(
            t.error or any(e.fatal for i in t.images for e in i.errors) for t in self.targets
        )
