"""A big gzip layer of a local file, inflated once into a private temporary file, so that its
members can be shared out among the workers as an uncompressed layer's are.

A gzip stream cannot be split: whoever reads its last member must inflate everything before it.
So one big gzip layer kept one worker busy (and a second thread inflating) while the other
workers had nothing left to do. A :class:`Spool` inflates it on a thread of the parent process,
which otherwise only waits (python-isal and hashlib release the GIL, and writes do), into a file
in a fresh 0700 directory of the temporary directory; the layer is then cut into parts like an
uncompressed one (:mod:`layerleak.scan.layers`). The file is removed when the layer is scanned,
or at once if the spool is abandoned.

The spool computes both digests on the way, from the bytes it reads: the blob's (the compressed
bytes, checked against the manifest) and the diff_id (the uncompressed bytes, checked against the
config). It gives up, leaving the layer to the usual path, which then reports whatever made it
give up exactly as it always did, when:

- the blob is not gzip, or is damaged (truncated, corrupt, data after the stream);
- it expands more than the layer limits allow (``max_layer_ratio``: a compression bomb);
- it would take more than ``max_bytes`` of disk (default :data:`SPOOL_MAX`), or leave less than
  :data:`FREE_RESERVE` free on the temporary directory's file system.

The temporary file holds the layer's plain bytes, secrets included, for as long as the scan of
that layer takes: it is readable by the user only, never named outside this process, and
removed even when the scan is interrupted (``close``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from typing import IO, cast

from layerleak.entries.limits import DEFAULT_LAYER_LIMITS, LayerLimits
from layerleak.entries.streams import Region
from layerleak.sources.interface import BlobLocation

SPOOL_MAX = 4 << 30  # bytes of disk one spooled layer may take
FREE_RESERVE = 1 << 30  # bytes left free on the temporary directory's file system, at least
CHUNK = 1 << 20


class _Abandoned(Exception):
    """The spool gave up: the layer is scanned the usual way."""


class Spool:
    """Inflate the gzip layer at ``loc`` on a thread (:meth:`start`); :meth:`wait` gives the
    plain layer's location, or None if the spool gave up."""

    def __init__(
        self,
        loc: BlobLocation,
        max_bytes: int = SPOOL_MAX,
        limits: LayerLimits = DEFAULT_LAYER_LIMITS,
        directory: str | None = None,
    ) -> None:
        self.loc = loc
        self.max_bytes = max_bytes
        self.limits = limits
        self._parent = directory
        self._dir: str | None = None
        self._path: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.size = 0  # plain bytes written
        self.diff_id: str | None = None
        self.blob_sha256: str | None = None
        self.reason: str | None = None  # why it gave up (for tests and --verbose)
        self._ok = False
        self._done = False  # inflated, or given up

    def start(self) -> Spool:
        self._thread = threading.Thread(target=self._run, name="layerleak-spool", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> BlobLocation | None:
        """The plain layer's location once inflated (inflated here and now if it was never
        started), or None."""
        if self._thread is None and not self._done and not self._stop.is_set():
            self._run()
        if self._thread is not None:
            self._thread.join()
        if not self._ok or self._path is None:
            return None
        return BlobLocation(self._path, 0, self.size)

    def close(self) -> None:
        """Stop inflating (if it still does) and remove the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._ok = False  # its file is gone
        self._remove()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._inflate()
            self._ok = True
        except _Abandoned as why:
            self.reason = str(why)
        except Exception as exc:  # noqa: BLE001 - damage of any kind: the usual path reports it
            self.reason = f"{type(exc).__name__}: {exc}"
        if not self._ok:
            self._remove()
        self._done = True

    def _inflate(self) -> None:
        from isal import igzip

        from layerleak.layers.walk import Hashing

        self._dir = tempfile.mkdtemp(prefix="layerleak-spool-", dir=self._parent)  # 0700
        self._path = os.path.join(self._dir, "layer.tar")
        plain_hash = hashlib.sha256()
        limits = self.limits
        with open(self.loc.path, "rb", buffering=0) as raw:
            if os.pread(raw.fileno(), 2, self.loc.offset) != b"\x1f\x8b":
                raise _Abandoned("not gzip")
            raw.seek(self.loc.offset)
            blob = Hashing(cast(IO[bytes], Region(raw, self.loc.size)))  # counted and hashed as read
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with igzip.IGzipFile(fileobj=blob, mode="rb") as plain:  # type: ignore[no-untyped-call]
                    while True:
                        if self._stop.is_set():
                            raise _Abandoned("stopped")
                        data = plain.read(CHUNK)
                        if not data:
                            break
                        self.size += len(data)
                        if self.size > self.max_bytes:
                            raise _Abandoned(f"larger than {self.max_bytes} bytes")
                        if self.size > limits.layer_ratio_floor and self.size > limits.max_layer_ratio * max(
                            1, blob.count
                        ):
                            raise _Abandoned("expands more than max_layer_ratio")
                        plain_hash.update(data)
                        _write_all(fd, data)
                        if self.size % (64 * CHUNK) < CHUNK and _free(self._dir) < FREE_RESERVE:
                            raise _Abandoned("the temporary directory is nearly full")
                while blob.read(CHUNK):  # the rest of the blob (the usual path hashes it all)
                    pass
            finally:
                os.close(fd)
        self.diff_id = "sha256:" + plain_hash.hexdigest()
        self.blob_sha256 = blob.digest()

    def _remove(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _free(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize
