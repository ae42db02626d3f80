"""Layers of a remote source (a registry) streamed several at once, one per worker process.

A registry's layers are separate blobs, each its own GET, so nothing ties one layer's stream to
another's. With ``jobs > 1`` the layers are handed out, largest first, to forked workers: each
opens its own connections (:meth:`~layerleak.sources.interface.ImageSource.after_fork`, keeping
the parent's token and the scheme its probe found) and streams its blob through the same
:meth:`~layerleak.sources.interface.ImageSource.blobs` and layer walk as the one-at-a-time path,
digest check included, so each layer's scan is the one that path gives (a big gzip blob is
inflated and hashed on a second thread of its worker). Memory is one layer walk's bound per
worker, plus the inflating thread's few buffers: nothing is spooled. Results come back over the
pool's local pipe, as those of an archive's layers do (a plaintext secret never leaves this
machine or the user).

Daemon save streams and compressed archives are one stream holding every layer, read front to
back: they keep the one-at-a-time path (a gzip layer is still inflated on a second thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, cast

from layerleak.detect.engine import Engine
from layerleak.errors import LayerleakError
from layerleak.layers.scanned import LayerScan
from layerleak.memory import return_large_buffers
from layerleak.scan.workers import kill_workers, leave_signals_to_the_parent, signals_held
from layerleak.sources.interface import ImageSource

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

ProgressHook = Callable[[str, int | None], Callable[[int], None] | None]

_source: ImageSource | None = None
_engine: Engine | None = None


def usable(source: ImageSource, keys: list[str], jobs: int) -> bool:
    """Whether ``keys`` of ``source`` can be streamed in parallel here: a source that allows it,
    more than one layer and one job, and a process that may fork (no other thread running,
    whose locks a fork could copy held)."""
    import multiprocessing  # not at import: a rescan answered by the cache never loads it

    return (
        source.parallel_blobs
        and jobs > 1
        and len(keys) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


def scan_streamed(
    source: ImageSource,
    keys: list[str],
    sizes: Mapping[str, int | None],
    engine: Engine,
    jobs: int,
    progress: ProgressHook | None = None,
) -> dict[str, LayerScan]:
    """Scan every layer of ``keys`` (call :func:`usable` first), several at once."""
    from concurrent.futures import FIRST_COMPLETED, Future, wait
    from concurrent.futures.process import BrokenProcessPool

    order = sorted(keys, key=lambda k: sizes.get(k) or 0, reverse=True)
    hooks = {k: progress(k, sizes.get(k)) if progress else None for k in order}
    found: dict[str, LayerScan] = {}
    engine.prepare()  # built once here, shared by the forked workers
    with signals_held():
        pool = _pool(source, engine, min(jobs, len(order)))
    try:
        with signals_held():  # the first submit forks the workers
            pending: dict[Future[LayerScan | None], str] = {
                pool.submit(_scan_one, k, sizes.get(k)): k for k in order
            }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                try:
                    scan = fut.result()
                except BrokenProcessPool:
                    raise LayerleakError(
                        "a layer-scanning worker process died (out of memory?); try --jobs 1"
                    ) from None
                if scan is not None:
                    found[key] = scan
                hook = hooks[key]
                if hook is not None:
                    hook(sizes.get(key) or 0)
    except BaseException:  # interrupted, or a worker failed: stop the others now
        kill_workers(pool)
        raise
    pool.shutdown(wait=True)
    return {k: found[k] for k in sorted(found)}  # the order the one-at-a-time path gives


def _pool(source: ImageSource, engine: Engine, workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forked: the source (its token, its probe's answer) and the engine are inherited, not pickled
    return ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), _init, (source, engine))


def _init(source: ImageSource, engine: Engine) -> None:
    global _source, _engine
    leave_signals_to_the_parent()
    return_large_buffers()
    source.after_fork()
    _source, _engine = source, engine


def _scan_one(key: str, size: int | None) -> LayerScan | None:
    """One layer's scan. A big gzip blob is inflated (and both its digests computed) on a second
    thread, as an archive's is (python-isal and hashlib release the GIL); should it turn out
    damaged, it is fetched again and scanned without the thread, so its error and what was read
    before it are exactly what the one-at-a-time path reports."""
    from layerleak.layers.walk import scan_layer
    from layerleak.scan.layers import THREADED_GZIP_MIN

    assert _source is not None and _engine is not None, "the pool initializer sets them"
    for got, stream in _source.blobs({key}):
        if size is None or size < THREADED_GZIP_MIN:
            return scan_layer(got, stream, _engine)
        scan = _threaded(got, stream, _engine)
        if scan is not None:
            return scan
        break
    else:
        return None
    for got, stream in _source.blobs({key}):
        return scan_layer(got, stream, _engine)
    return None


def _threaded(key: str, blob: IO[bytes], engine: Engine) -> LayerScan | None:
    """The scan of a gzip blob inflated on another thread, or None if anything failed; a blob
    that is not gzip is scanned as it is (it cannot be read again from here)."""
    from layerleak.entries.streams import Prefixed
    from layerleak.layers.decompress import sniff_compression
    from layerleak.layers.walk import scan_gzip_threaded, scan_layer

    head = blob.read(4)
    whole = cast(IO[bytes], Prefixed(head, blob))
    if sniff_compression(head) != "gzip":
        return scan_layer(key, whole, engine)
    return scan_gzip_threaded(key, whole, engine)
