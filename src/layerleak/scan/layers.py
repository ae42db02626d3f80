"""The layer phase of a scan: take what the cache knows, scan the rest, keep what was found.

Layers are independent (a layer's scan records the paths it touches; status is decided later,
in layer order, by :mod:`layerleak.layers.status`), so the layers a file-backed source can
:meth:`~layerleak.sources.interface.ImageSource.locate` are scanned in worker processes, largest
first. A large uncompressed layer is split at member boundaries (:mod:`layerleak.layers.tarindex`)
into parts that the workers share, merged back in order (:func:`layerleak.layers.walk.merge`);
the workers start on the first parts while this process still walks the other layers' headers
(:class:`_Schedule`). A gzip layer cannot be split; it is decompressed on a second thread of
its worker (python-isal releases the GIL). A registry's blobs stream several at once, one per worker
(:mod:`layerleak.scan.streamed`); one-stream sources (a compressed archive, a daemon's save
stream) are scanned in order, in this process.

With ``jobs=1``, no cache, and the source's own streams, this is exactly the straightforward
path; tests/scan/test_layers.py checks that every other path gives the same findings.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from layerleak.detect.engine import Engine
from layerleak.detect.rules import Rule
from layerleak.entries.streams import Region
from layerleak.errors import LayerleakError
from layerleak.layers import tarindex
from layerleak.layers.decompress import sniff_compression
from layerleak.layers.scanned import LayerScan, merge
from layerleak.memory import return_large_buffers
from layerleak.scan import streamed
from layerleak.scan.spool import Spool
from layerleak.scan.workers import kill_workers, leave_signals_to_the_parent, signals_held
from layerleak.sources.interface import BlobLocation, ImageSource, LayerRef
from layerleak.store.cache import LayerStore

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

# The layer walk (and the decoders it imports), worker pools and threaded gzip are imported when
# a layer is scanned: a rescan answered from the cache never loads them.

ProgressHook = Callable[[str, int | None], Callable[[int], None] | None]

THREADED_GZIP_MIN = 32 * 1024 * 1024  # smaller gzip layers are not worth a thread
SHARD_MIN = 8 * 1024 * 1024  # an uncompressed layer is split in parts of at least this size
SHARDS_PER_JOB = 16  # parts aimed at per worker: small, because a part's cost varies tenfold with
# what it holds (source and .pyc files cost most per byte), and the last to finish sets the time


def default_jobs() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


@dataclass(frozen=True, slots=True)
class LayerPlan:
    jobs: int = 1
    cache: LayerStore | None = None
    show_secrets: bool = False  # cached layers with hits are rescanned to recover plaintext


@dataclass(frozen=True, slots=True)
class _Task:
    """One unit of work for a worker: a whole layer, or the members of an uncompressed layer
    from the one at ``start`` to the last before ``stop`` (None: to the end)."""

    key: str
    loc: BlobLocation
    start: int = 0
    stop: int | None = None

    @property
    def size(self) -> int:
        return (self.loc.size if self.stop is None else self.stop) - self.start

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop is None


def _cache_key(source: ImageSource, ref: LayerRef, loc: BlobLocation | None) -> str | None:
    """The key a layer's result is cached under: never a digest the image merely *claims*.

    An archive names its own layers' digests, and a crafted one could name the digest of a clean
    layer scanned before, to be handed that clean result. So a layer in a local file is cached
    under the file's identity (device, inode, size, modification time, offset) with the digest it
    claims: rescanning the same file hits, any other file is scanned. A registry's blobs are
    checked against their digest as they stream, so there the blob digest itself is the key.
    Other sources (daemon and compressed streams) are not cached.
    """
    if loc is not None:
        try:
            st = os.stat(loc.path)
        except OSError:
            return None
        claimed = ref.diff_id or ref.blob_digest or ""
        return f"file:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{loc.offset}:{claimed}"
    if source.verifies_blobs and ref.blob_digest:
        return f"blob:{ref.blob_digest}"
    return None


def scan_layers(
    source: ImageSource,
    refs: Mapping[str, LayerRef],
    engine: Engine,
    plan: LayerPlan,
    progress: ProgressHook | None = None,
) -> dict[str, LayerScan]:
    """Scan every layer in ``refs`` (source key -> layer), from the cache when it can."""
    scans: dict[str, LayerScan] = {}
    sizes: dict[str, int] = {}
    todo: list[str] = []
    cache_keys: dict[str, str | None] = {}
    for key, ref in refs.items():
        loc = source.locate(key)
        sizes[key] = loc.size if loc is not None else (ref.size if ref.size is not None else -1)
        cache_keys[key] = _cache_key(source, ref, loc) if plan.cache is not None else None
        cached = _from_cache(plan, key, cache_keys[key], engine, sizes[key])
        if cached is not None:
            scans[key] = cached
        else:
            todo.append(key)
    if not todo:
        return scans
    located = {k: loc for k in todo if (loc := source.locate(k)) is not None}
    schedule = _Schedule(located, plan) if plan.jobs > 1 and len(located) == len(todo) else None
    if schedule is not None and (len(located) > 1 or schedule.cuts or schedule.spools):
        with schedule:
            found = _scan_in_pool(schedule, engine, plan.jobs, progress)
    elif schedule is not None:
        key, loc = next(iter(located.items()))
        hook = progress(key, loc.size) if progress else None
        found = {key: scan_located(key, loc, engine)}
        if hook is not None:
            hook(loc.size)
    elif streamed.usable(source, todo, plan.jobs):  # a registry: several blobs at once
        sizes_of = {k: refs[k].size for k in todo}
        found = streamed.scan_streamed(source, todo, sizes_of, engine, plan.jobs, progress)
    else:
        from layerleak.layers.walk import scan_layer

        found = {}
        for key, stream in source.blobs(set(todo)):
            hook = progress(key, refs[key].size) if progress else None
            found[key] = scan_layer(key, stream, engine, hook)
    for key, scan in found.items():
        scans[key] = scan
        digest = cache_keys.get(key)
        if plan.cache is not None and digest is not None:
            plan.cache.put(digest, engine.ruleset, sizes[key], scan)
    return scans


def _from_cache(
    plan: LayerPlan, key: str, digest: str | None, engine: Engine, size: int
) -> LayerScan | None:
    if plan.cache is None or digest is None:
        return None
    scan = plan.cache.get(key, digest, engine.ruleset, size)
    if scan is not None and plan.show_secrets and scan.hits:
        return None  # the cache has no plaintext: rescan this one
    return scan


# --- the worker processes -----------------------------------------------------------------------

_engine: Engine | None = None


def _init_worker(rules: Sequence[Rule], gate: str) -> None:
    """A spawned worker builds its own engine."""
    global _engine
    leave_signals_to_the_parent()
    return_large_buffers()
    _engine = Engine(rules, gate=gate)


def _init_forked(engine: Engine) -> None:
    """A forked worker has the parent's engine already built (:meth:`Engine.prepare`)."""
    global _engine
    leave_signals_to_the_parent()
    return_large_buffers()
    _engine = engine


def _pool(engine: Engine, workers: int) -> ProcessPoolExecutor:
    """Workers are forked when this process runs no other thread: they start at once, with the
    modules imported (the layer walk and its decoders too) and the engine built (a spawned
    worker spends most of a second on that).
    With another thread running, forking could copy a lock that thread holds, so they are
    spawned."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        engine.prepare()  # built once here, not once in every worker
        import layerleak.layers.walk  # noqa: F401 - imported once here too: a sixth of a second each
        return ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), _init_forked, (engine,))
    return ProcessPoolExecutor(
        workers, multiprocessing.get_context("spawn"), _init_worker, (engine.rules, engine.gate)
    )


def scan_located(key: str, loc: BlobLocation, engine: Engine, threaded: bool = True) -> LayerScan:
    """Scan one layer read straight from its file. A big gzip layer is decompressed on another
    thread; should that layer be corrupt, it is scanned again without the thread, so what was
    read before the damage is exactly what the straightforward path reports."""
    from layerleak.layers.walk import scan_gzip_threaded, scan_layer

    with open(loc.path, "rb") as f:
        f.seek(loc.offset)
        head = f.read(4)
        f.seek(loc.offset)
        blob: IO[bytes] = io.BufferedReader(Region(f, loc.size), buffer_size=1 << 20)
        if not (threaded and loc.size >= THREADED_GZIP_MIN and sniff_compression(head) == "gzip"):
            return scan_layer(key, blob, engine)
        scan = scan_gzip_threaded(key, blob, engine)
    return scan if scan is not None else scan_located(key, loc, engine, threaded=False)


def _tasks(located: dict[str, BlobLocation], plan: LayerPlan) -> list[_Task]:
    """Every layer as one task, except that a large uncompressed layer is split at member
    boundaries into parts of about equal size, so that one big layer keeps every worker busy;
    largest first."""
    with _Schedule(located, plan, spool=False) as schedule:  # tasks that outlive the schedule
        return schedule.tasks()


def _worth_spooling(loc: BlobLocation, total: int, jobs: int) -> bool:
    """A gzip layer more than one worker's share of all the bytes: scanned whole, it would keep
    one worker busy after the others are done."""
    return loc.size * jobs > total and _is_gzip(loc)


def _is_gzip(loc: BlobLocation) -> bool:
    try:
        with open(loc.path, "rb", buffering=0) as f:
            return os.pread(f.fileno(), 4, loc.offset)[:2] == b"\x1f\x8b"
    except OSError:
        return False


def _largest_first(tasks: list[_Task]) -> list[_Task]:
    return sorted(tasks, key=lambda t: t.size, reverse=True)  # stable: layer order, then offset


class _Cut:
    """A large uncompressed layer cut into parts as the walk of its headers goes on: a part is
    known once the walk has passed its end, and can be scanned while the walk goes on."""

    def __init__(self, key: str, loc: BlobLocation, parts: int, file: IO[bytes]) -> None:
        self.key, self.loc = key, loc
        self._file = file
        starts = tarindex.walk_members(file, loc.size)
        self._points = tarindex.split_stream(starts, loc.size, parts)
        self._start = 0
        self.parts: list[_Task] = []  # found so far; when the walk is over, every part
        self.over = False

    def next_part(self) -> _Task | None:
        """The next part whose end is known; None once the walk is over, when ``parts`` is the
        whole list: the last part is added then, or, if the walk gave up, ``parts`` becomes the
        layer as one task (the parts handed out before are not part of it)."""
        if self.over:
            return None
        try:
            point = next(self._points, None)
        except tarindex.Unsplittable:
            self.parts = [_Task(self.key, self.loc)]
            point = None
        else:
            if point is not None:
                self.parts.append(_Task(self.key, self.loc, self._start, point))
                self._start = point
                return self.parts[-1]
            self.parts.append(_Task(self.key, self.loc, self._start, None))
        self.over = True
        self.close()
        return None

    def finish(self) -> list[_Task]:
        while self.next_part() is not None:
            pass
        return self.parts

    def close(self) -> None:
        self._file.close()


class _Schedule:
    """The tasks of the layers of ``located``: a whole layer is one task, known at once; a
    large uncompressed layer's parts are found by walking its headers (:class:`_Cut`), which
    can go on while the first parts are scanned."""

    def __init__(self, located: dict[str, BlobLocation], plan: LayerPlan, spool: bool = True) -> None:
        self.located = located
        total = sum(loc.size for loc in located.values())
        self.target = max(SHARD_MIN, total // (plan.jobs * SHARDS_PER_JOB))
        self.whole: dict[str, _Task] = {}
        self.cuts: dict[str, _Cut] = {}
        # A gzip layer bigger than a worker's share is inflated to a temporary file (by a
        # thread of this process, while the workers scan the rest), then cut like a plain one.
        self.spools: dict[str, Spool] = {}
        self.plain: dict[str, BlobLocation] = {}  # the spooled layers' plain files
        try:
            for key, loc in located.items():
                parts = -(-loc.size // self.target) if loc.size >= 2 * self.target else 0
                if spool and parts and plan.jobs > 1 and _worth_spooling(loc, total, plan.jobs):
                    self.spools[key] = Spool(loc)  # started once the workers are forked
                    continue
                cut = self._cut(key, loc, parts) if parts else None
                if cut is None:
                    self.whole[key] = _Task(key, loc)
                else:
                    self.cuts[key] = cut
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _cut(key: str, loc: BlobLocation, parts: int) -> _Cut | None:
        f = open(loc.path, "rb")  # noqa: SIM115 - the cut closes it when its walk is over
        try:
            f.seek(loc.offset)
            if sniff_compression(f.read(4)) is not None:
                f.close()
                return None  # compressed: scanned whole
            f.seek(loc.offset)
        except BaseException:
            f.close()
            raise
        return _Cut(key, loc, parts, f)

    def early(self, count: int) -> Iterator[_Task]:
        """Up to ``count`` tasks to start the workers on before every layer is walked, each
        as soon as it is known: the whole layers at least a part's size, largest first, then
        the first parts of the largest layer being cut. A part handed out here whose layer's
        walk then gives up is not among :meth:`tasks` (at most ``count`` parts are wasted)."""
        big = _largest_first([t for t in self.whole.values() if t.size >= self.target])[:count]
        yield from big
        if self.cuts and len(big) < count:
            cut = max(self.cuts.values(), key=lambda c: c.loc.size)
            for _ in range(count - len(big)):
                part = cut.next_part()
                if part is None:
                    return
                yield part

    def start_spools(self) -> None:
        """Start inflating. After the workers are forked: a fork copies no running thread, but
        a fork while one runs could copy a lock it holds."""
        for spool in self.spools.values():
            spool.start()

    def ready(self) -> list[_Task]:
        """Every task but the spooled layers' (which are still being inflated), largest first."""
        found: list[_Task] = []
        for key in self.located:
            cut = self.cuts.get(key)
            if cut is not None:
                found.extend(cut.finish())
            elif key in self.whole:
                found.append(self.whole[key])
        return _largest_first(found)

    def tasks(self) -> list[_Task]:
        """Every task, once every layer is walked (and every spool inflated), largest first."""
        found = self.ready()
        for key, spool in self.spools.items():
            found.extend(self._spooled(key, spool))
        return _largest_first(found)

    def _spooled(self, key: str, spool: Spool) -> list[_Task]:
        """A spooled layer's tasks: the parts of its plain file, or the whole plain file if it
        cannot be cut, or the layer as it is if the spool gave up (the usual path then reports
        what made it give up)."""
        plain = spool.wait()
        if plain is None:
            return [_Task(key, self.located[key])]
        self.plain[key] = plain
        parts = -(-plain.size // self.target) if plain.size >= 2 * self.target else 0
        if not parts:
            return [_Task(key, plain)]
        f = open(plain.path, "rb")  # noqa: SIM115 - the cut closes it when its walk is over
        cut = self.cuts[key] = _Cut(key, plain, parts, f)
        return cut.finish()

    def reported_size(self, task: _Task) -> int:
        """How much of its layer's blob ``task`` stands for, for progress (a spooled layer's
        parts are parts of its plain file, bigger than the blob)."""
        plain = self.plain.get(task.key)
        if plain is None or not plain.size:
            return task.size
        return task.size * self.located[task.key].size // plain.size

    def close(self) -> None:
        for cut in self.cuts.values():
            cut.close()
        for spool in self.spools.values():
            spool.close()  # its temporary file goes

    def __enter__(self) -> _Schedule:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan_part(task: _Task, engine: Engine) -> LayerScan:
    """Scan one task: a whole layer, or one part of an uncompressed one."""
    if task.whole:
        return scan_located(task.key, task.loc, engine)
    # The file itself, not a view bounded to the layer: tarindex found the layer's end-of-archive
    # marker, and a part stops at a member, so nothing past the layer is taken for part of it.
    from layerleak.layers.walk import scan_layer_part

    with open(task.loc.path, "rb", buffering=1 << 20) as f:
        f.seek(task.loc.offset + task.start)
        stop = None if task.stop is None else task.stop - task.start
        return scan_layer_part(task.key, f, engine, stop)


def _worker_scan(task: _Task) -> LayerScan:
    assert _engine is not None, "the worker initializer builds the engine"
    return scan_part(task, _engine)


def _scan_in_pool(
    schedule: _Schedule,
    engine: Engine,
    jobs: int,
    progress: ProgressHook | None,
) -> dict[str, LayerScan]:
    from concurrent.futures.process import BrokenProcessPool

    located = schedule.located
    hooks = {k: progress(k, loc.size) if progress else None for k, loc in located.items()}
    digests: dict[str, str | None] = {}
    try:
        parts = _run_pool(schedule, engine, jobs, hooks, digests)
    except BrokenProcessPool:
        raise LayerleakError(
            "a layer-scanning worker process died (out of memory?); try --jobs 1"
        ) from None
    found: dict[str, LayerScan] = {}
    for key, loc in located.items():
        mine = sorted((t.start, scan) for t, scan in parts.items() if t.key == key)
        scans = [scan for _, scan in mine]
        plain = schedule.plain.get(key)  # spooled: the parts are of this plain file
        if any(scan.error is not None for scan in scans) and (len(scans) > 1 or plain is not None):
            found[key] = scan_located(key, loc, engine)  # damage: the straightforward way reports it
        elif len(scans) == 1:
            found[key] = scans[0]
        else:
            found[key] = merge(key, scans, plain.size if plain else loc.size, digests.get(key))
        if plain is not None and found[key].error is None:
            found[key].blob_sha256 = schedule.spools[key].blob_sha256  # the blob's own digest
    return found


HASH_BUFFER = 256 * 1024  # read into one buffer that stays in the CPU cache: a new 4 MiB bytes
# for every read (its pages faulted in, then copied into) cost a third more than the hashing


def hash_region(loc: BlobLocation) -> str | None:
    """sha256 of a layer's bytes in its file (a split layer's diff_id, which no part sees
    whole); None if the file cannot be read to the end. hashlib releases the GIL."""
    digest = hashlib.sha256()
    view = memoryview(bytearray(HASH_BUFFER))
    left = loc.size
    try:
        with open(loc.path, "rb", buffering=0) as f:
            f.seek(loc.offset)
            while left > 0:
                got = f.readinto(view[: min(left, HASH_BUFFER)])
                if not got:
                    return None
                digest.update(view[:got])
                left -= got
    except OSError:
        return None
    return "sha256:" + digest.hexdigest()


def _hash_all(regions: dict[str, BlobLocation], out: dict[str, str | None]) -> None:
    for key, loc in regions.items():
        out[key] = hash_region(loc)


def _run_pool(
    schedule: _Schedule,
    engine: Engine,
    jobs: int,
    hooks: dict[str, Callable[[int], None] | None],
    digests: dict[str, str | None] | None = None,
) -> dict[_Task, LayerScan]:
    """Run the schedule's tasks. The workers start on the first ``jobs`` tasks while this
    process walks the layers it cuts; then the rest are handed out, largest first, and a
    thread of this (otherwise waiting) process hashes the split layers into ``digests``."""
    from concurrent.futures import FIRST_COMPLETED, Future, wait

    found: dict[_Task, LayerScan] = {}
    workers = jobs if schedule.cuts or schedule.spools else min(jobs, len(schedule.whole))
    with signals_held():
        pool = _pool(engine, workers)
    try:
        futures: dict[_Task, Future[LayerScan]] = {}

        def submit(task: _Task) -> None:
            with signals_held():  # the first submit forks the workers
                futures[task] = pool.submit(_worker_scan, task)

        if schedule.spools:
            with signals_held():  # fork the workers now (the first submit does), then inflate
                pool.submit(int).result()
            schedule.start_spools()
        for task in schedule.early(jobs):
            submit(task)
        if schedule.spools:  # the rest first, while the spools inflate; their parts come last
            for task in schedule.ready():
                if task not in futures:
                    submit(task)
        tasks = schedule.tasks()
        for task in tasks:
            if task not in futures:
                submit(task)
        wanted = set(tasks)
        for task, fut in futures.items():
            if task not in wanted:
                fut.cancel()  # a part of a layer whose walk gave up: its result is not used
        pending = {futures[t]: t for t in tasks}
        hasher = None
        regions = {t.key: t.loc for t in tasks if not t.whole}
        if regions:
            out = digests if digests is not None else {}
            hasher = threading.Thread(target=_hash_all, args=(regions, out), name="diff-id", daemon=True)
            hasher.start()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                found[task] = fut.result()
                hook = hooks[task.key]
                if hook is not None:
                    hook(schedule.reported_size(task))
        if hasher is not None:
            hasher.join()
    except BaseException:  # interrupted (or a worker failed): stop the workers now, not after their tasks
        kill_workers(pool)
        raise
    pool.shutdown(wait=True)
    return found
