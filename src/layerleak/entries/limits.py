"""Every bound the scanner keeps on hostile input, as data, and the record of what was cut short.

Three scopes, each a frozen dataclass whose field names are the limit names that warnings and
errors quote (docs/limits.md lists them with their defaults):

- :class:`Limits`, per layer *file*: nested archives and compressed streams.
- :class:`LayerLimits`, per *layer*: the tar headers the walk reads (checked before tarfile
  reads a header's data, so a PAX or long-name bomb never reaches memory), member count, sparse
  maps, expansion of the layer's own compression.
- :class:`ImageLimits`, per *image* and target: JSON documents (manifest, index, config) by
  size and nesting depth, index nesting, layers per image, images per target.

Every regular file of a layer is scanned under one :class:`Budget`: nested archives and compressed
streams may open inside it only so deep, expand only so far, only so fast (compression ratio) and
hold only so many entries. A zip or tar bomb therefore costs at most ``max_expanded_bytes`` of
decompression; what was not scanned is said in a note, which the scan reports as an error of the
image (the finding list is then known to be incomplete).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from layerleak.entries.streams import Reader

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 5  # containers opened inside one another; a .tar.gz counts 2 (gzip + tar)
    max_expanded_bytes: int = 512 * MIB  # decompressed bytes per layer file, all levels together
    max_ratio: int = 200  # decompressed / compressed bytes of one stream or zip member ...
    ratio_floor: int = 1 * MIB  # ... checked once that stream has produced this much
    max_entries: int = 100_000  # archive members per layer file, all levels together
    zip_memory: int = 64 * MIB  # a zip is held in memory up to this size (it needs seeking) ...
    zip_spool: int = 1024 * MIB  # ... then in an unnamed temporary file; larger zips are not opened
    max_decoded: int = 10_000  # base64 values decoded per file
    max_matches: int = 1_000  # matches reported per layer file (a flood of tokens stops there)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class GitLimits:
    """Bounds on reading git repositories found in a layer (entries/gitrepo.py)."""

    spool_bytes: int = 1024 * MIB  # object files of one layer copied to a temporary dir (disk)
    max_repos: int = 32  # repositories read per layer
    max_objects: int = 500_000  # objects looked at per repository
    max_blob: int = 64 * MIB  # a larger blob is not inflated (its size is read from its header)
    max_chain: int = 64  # delta chain followed to learn an object's type and size


DEFAULT_GIT_LIMITS = GitLimits()


@dataclass(frozen=True, slots=True)
class LayerLimits:
    max_header_bytes: int = 1 * MIB  # one PAX extended header (x or g) record block
    max_name_bytes: int = 64 * 1024  # one GNU long name or long link (L, K) record
    max_extension_chain: int = 8  # extension headers (PAX, long name) before one member
    max_members: int = 1_000_000  # tar members in one layer
    max_sparse_entries: int = 100_000  # (offset, size) pairs in one sparse member's map
    max_layer_ratio: int = 2_000  # uncompressed / compressed bytes of a layer blob ...
    layer_ratio_floor: int = 256 * MIB  # ... checked once the layer has produced this much


DEFAULT_LAYER_LIMITS = LayerLimits()


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_json_bytes: int = 32 * MIB  # manifest.json, index.json, a manifest or a config
    max_json_depth: int = 64  # nesting of arrays and objects in one of them
    max_index_depth: int = 8  # image indexes inside image indexes
    max_layers: int = 1_000  # layers of one image (Docker itself stops at 125)
    max_images: int = 1_000  # images described by one target (manifests of an index, ...)


DEFAULT_IMAGE_LIMITS = ImageLimits()


def limit_text(name: str, value: int) -> str:
    """How a limit is named in a message: ``max_members (1000000)``."""
    shown = f"{value // MIB} MiB" if value >= MIB and value % MIB == 0 else str(value)
    return f"{name} ({shown})"


class Cut(Exception):
    """Raised when the whole layer file must stop (its entry budget is spent)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class Budget:
    """What one layer file has spent so far, and the notes on what was cut short."""

    limits: Limits = DEFAULT_LIMITS
    expanded: int = 0
    entries: int = 0
    decoded: int = 0
    spent: bool = False  # max_expanded_bytes reached: every decompressed stream ends
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def entry(self, where: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Cut(
                f"{where}: stopped after {self.limits.max_entries} archive entries in this file "
                "(entry limit); the rest was not scanned"
            )


class Limited:
    """A decompressed stream under the budget: counts what it yields, ends a bomb early, and ends
    where the decompressor fails. It ends by returning EOF after its last good bytes (so they are
    still scanned) and leaves a note saying why."""

    def __init__(
        self,
        inner: Reader,
        budget: Budget,
        compressed: Callable[[], int],
        where: str,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self.inner = inner
        self.budget = budget
        self.compressed = compressed
        self.where = where
        self.errors = errors
        self.count = 0
        self.ended = False  # cut short: what reads it next sees a truncated stream

    def read(self, n: int = -1, /) -> bytes:
        budget = self.budget
        if self.ended or budget.spent:
            self.ended = True
            return b""
        data = self._gather(n)
        self.count += len(data)
        budget.expanded += len(data)
        limits = budget.limits
        if budget.expanded > limits.max_expanded_bytes:
            data = data[: len(data) - (budget.expanded - limits.max_expanded_bytes)]
            budget.spent = True
            self._end(
                f"stopped after {limits.max_expanded_bytes // MIB} MiB decompressed from this "
                "file (expansion limit); the rest was not scanned"
            )
        elif self.count > limits.ratio_floor and self.count > limits.max_ratio * max(1, self.compressed()):
            self._end(
                f"stopped after {self.count // MIB} MiB: it expands more than {limits.max_ratio} "
                "times (a compression bomb?); the rest was not scanned"
            )
        return data

    def _gather(self, n: int) -> bytes:
        """Up to ``n`` bytes, read in the pieces the decompressor has ready, so that a stream
        that breaks off still yields everything before the break."""
        parts: list[bytes] = []
        size = 0
        read1 = getattr(self.inner, "read1", None)
        try:
            if read1 is None or n is None or n < 0:
                return self.inner.read(n)
            while size < n:
                piece = read1(n - size)
                if not piece:
                    break
                parts.append(piece)
                size += len(piece)
        except self.errors as exc:
            self._end(f"corrupt or truncated ({_reason(exc)}); scanned up to there")
        return b"".join(parts)

    def _end(self, why: str) -> None:
        self.ended = True
        self.budget.note(f"{self.where}: {why}")


def ended(stream: object) -> bool:
    """True when ``stream`` is a :class:`Limited` that was cut short (and said so)."""
    return isinstance(stream, Limited) and stream.ended


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())[:200]
