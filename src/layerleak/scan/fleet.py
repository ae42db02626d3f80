"""A fleet job: every image a registry walk finds, each unique layer scanned once, into the database.

Three phases, each streaming into the results database (the job's checkpoint):

1. **enumerate**: the walk (:mod:`layerleak.sources.catalog`) yields images; an image the database
   already holds complete (same manifest digest, ruleset and scanner version) is not even read.
2. **layers**: the layers of the images found, deduplicated by content key; those the database
   already holds are *reused*; the rest go to a runner (:mod:`layerleak.scan.runners`: processes
   or Dask) with a bounded window in flight, and each result is recorded, with its hits, in one
   transaction as it arrives. A job killed at any moment and rerun scans only what is missing.
3. **images**: each image's findings are assembled from its own stack (status per image:
   :func:`~layerleak.findings.build.assemble`), from the recorded layer scans, then recorded.

Memory: the images found (descriptions and configs) and one image's layer scans at a time; layer
scans are written as they arrive and not kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerleak.models import Confidence, ImageResult, TargetResult
from layerleak.scan.blobs import BlobTask, LayerOutcome, content_key
from layerleak.scan.runners import Runner, RunnerError
from layerleak.sources.catalog import Found, Item, Problem, Unchanged
from layerleak.sources.registry_auth import Credentials
from layerleak.store.cache import scanner_version
from layerleak.store.results.db import ImageRecord, ResultsDB

if TYPE_CHECKING:  # the layer walk and findings assembly: imported only when there is an image to build
    from layerleak.detect.engine import Engine
    from layerleak.layers.walk import LayerScan

SUMMARY_VERSION = 1


@dataclass(frozen=True, slots=True)
class FleetOptions:
    min_confidence: Confidence = Confidence.MEDIUM
    insecure: bool = False
    ca_file: str | None = None
    cert_dir: str | None = None
    creds: Credentials | None = field(default=None, repr=False)
    base_url: str | None = None  # the registry's https:// or http:// base, once known
    base_layers: frozenset[str] = frozenset()  # --base: layer digests of the named base image(s)
    common_repos: int | None = None  # a layer seen in more than this many other repos is inherited


@dataclass
class FleetSummary:
    registry: str
    repositories: int = 0
    images: int = 0  # images found (scanned now or unchanged since a finished run)
    images_unchanged: int = 0
    layer_refs: int = 0
    layers_unique: int = 0
    layers_scanned: int = 0
    layers_reused: int = 0
    bytes_scanned: int = 0
    findings: int = 0  # in every image of the job, those unchanged since an earlier run included
    findings_by_status: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float = 0.0  # starting the workers (a Dask cluster), overlapping the walk
    phase_seconds: dict[str, float] = field(default_factory=dict)  # enumerate, workers, layers, images

    def as_json(self) -> dict[str, object]:
        return {
            "version": SUMMARY_VERSION,
            "registry": self.registry,
            "repositories": self.repositories,
            "images": self.images,
            "images_unchanged": self.images_unchanged,
            "layer_refs": self.layer_refs,
            "layers_unique": self.layers_unique,
            "layers_scanned": self.layers_scanned,
            "layers_reused": self.layers_reused,
            "bytes_scanned": self.bytes_scanned,
            "findings": self.findings,
            "findings_by_status": dict(sorted(self.findings_by_status.items())),
            "errors": list(self.errors),
            "seconds": round(self.seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_seconds.items()},
        }


class FleetProgress:
    """What a display is told (report/progress.py draws it); the default tells nobody."""

    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, nbytes: int = 0) -> None:
        pass


ErrorHook = Callable[[str], None]


def run_fleet(
    items: Iterable[Item],
    registry: str,
    engine: Engine,
    db: ResultsDB,
    runner: Runner | None,
    options: FleetOptions,
    progress: FleetProgress | None = None,
    on_error: ErrorHook | None = None,
    base_url: Callable[[], str | None] | None = None,
    recorded: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
) -> FleetSummary:
    """Run one job; problems are lines in ``summary.errors`` (and ``on_error``), never raised,
    except a database that cannot be written (a StoreError: nothing can be checkpointed).
    ``recorded`` is :meth:`ResultsDB.complete_images` read once before the walk (its finding
    counts are those of the :class:`Unchanged` images); without it each is asked for."""
    started = time.monotonic()
    show = progress or FleetProgress()
    summary = FleetSummary(registry)
    scanner = scanner_version()

    def error(message: str) -> None:
        summary.errors.append(message)
        if on_error is not None:
            on_error(message)

    # 1. enumerate
    show.phase("enumerate", None)
    found: list[Found] = []
    for item in items:
        if isinstance(item, Found):
            if not found and runner is not None:
                runner.warm()  # something to scan: start the workers while the walk goes on
            found.append(item)
            summary.images += 1
        elif isinstance(item, Unchanged):
            summary.images += 1
            summary.images_unchanged += 1
            counted = recorded.get((item.name, item.digest)) if recorded is not None else None
            if counted is None:
                counted = db.finding_counts(item.name, item.digest, engine.ruleset, scanner)
            for status, n in counted.items():
                summary.findings += n
                summary.findings_by_status[status] = summary.findings_by_status.get(status, 0) + n
        elif isinstance(item, Problem) and item.fatal:
            error(item.message)
        show.advance()
    summary.repositories = len({(f.registry, f.repo) for f in found})  # the caller may know more

    # 2. layers: each unique content key once
    tasks: dict[str, BlobTask] = {}
    for image in found:
        for layer in image.image.layers:
            summary.layer_refs += 1
            if layer.blob_digest is None:
                continue
            key = content_key(layer.blob_digest)
            if key not in tasks:
                tasks[key] = BlobTask(
                    key,
                    image.registry,
                    image.repo,
                    layer.blob_digest,
                    layer.size,
                    insecure=options.insecure,
                    ca_file=options.ca_file,
                    cert_dir=options.cert_dir,
                    base=base_url() if base_url else options.base_url,
                    creds=options.creds,
                )
    summary.layers_unique = len(tasks)
    known = db.known_layers(tasks, engine.ruleset, scanner)
    summary.layers_reused = len(known)
    todo = [t for k, t in tasks.items() if k not in known]
    failed: dict[str, str] = {}
    summary.phase_seconds["enumerate"] = time.monotonic() - started
    show.phase("layers", len(todo))
    if todo and runner is None:
        for task in todo:
            failed[task.key] = "not scanned: no runner"
    elif todo and runner is not None:
        try:
            for task, outcome in runner.run(todo):
                _record(db, engine, scanner, task, outcome, failed, summary)
                if outcome.error is not None:
                    error(outcome.error)
                show.advance(1, outcome.scan.bytes_read if outcome.scan else 0)
        except RunnerError as exc:
            error(exc.diagnostics())
            for task in todo:
                failed.setdefault(task.key, exc.diagnostics())
        summary.startup_seconds = runner.startup_seconds

    # 3. images: findings from each image's own stack
    waited = runner.waited_seconds if runner is not None else 0.0
    summary.phase_seconds["workers"] = waited  # waiting for workers to start, after the walk
    summary.phase_seconds["layers"] = (
        time.monotonic() - started - summary.phase_seconds["enumerate"] - waited
    )
    show.phase("images", len(found))
    counts = _repo_counts(db, found, options)
    recent = RecentScans()
    for image in found:
        result = _image_result(db, engine, scanner, image, failed, options, recent)
        inherited = _inherited(image, options, counts)
        db.record_image(
            ImageRecord(
                image.image.name, image.registry, image.repo, image.tag, image.digest, image.platform
            ),
            result,
            engine.ruleset,
            scanner,
            [content_key(layer.blob_digest) if layer.blob_digest else None for layer in image.image.layers],
            inherited,
        )
        summary.findings += len(result.findings)
        for f in result.findings:
            status = str(f.location.status) if f.location.status else str(f.location.source)
            summary.findings_by_status[status] = summary.findings_by_status.get(status, 0) + 1
        show.advance()
    summary.seconds = time.monotonic() - started
    summary.phase_seconds["images"] = summary.seconds - sum(summary.phase_seconds.values())
    return summary


def _record(
    db: ResultsDB,
    engine: Engine,
    scanner: str,
    task: BlobTask,
    outcome: LayerOutcome,
    failed: dict[str, str],
    summary: FleetSummary,
) -> None:
    if outcome.scan is not None:
        summary.bytes_scanned += outcome.scan.bytes_read
    if outcome.ok and outcome.scan is not None:
        db.record_layer(
            task.key, engine.ruleset, scanner, task.size if task.size is not None else -1, outcome.scan
        )
        summary.layers_scanned += 1
    else:
        failed[task.key] = outcome.error or "layer could not be scanned"


class RecentScans:
    """The last few layer scans read back from the database, decoded: the images of a repository
    (and of a registry) share their base layers, so each is read and decoded once for them all,
    not once per image. Bounded: ``size`` scans (assembling only reads them)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._scans: OrderedDict[tuple[str, str], LayerScan] = OrderedDict()

    def get(self, key: tuple[str, str]) -> LayerScan | None:
        scan = self._scans.get(key)
        if scan is not None:
            self._scans.move_to_end(key)
        return scan

    def put(self, key: tuple[str, str], scan: LayerScan) -> None:
        self._scans[key] = scan
        while len(self._scans) > self.size:
            self._scans.popitem(last=False)


def _image_result(
    db: ResultsDB,
    engine: Engine,
    scanner: str,
    image: Found,
    failed: dict[str, str],
    options: FleetOptions,
    recent: RecentScans | None = None,
) -> ImageResult:
    from layerleak.findings.build import assemble
    from layerleak.findings.policy import confidence_cut
    from layerleak.layers.walk import LayerScan

    scans: dict[str, LayerScan] = {}
    for layer in image.image.layers:
        if layer.blob_digest is None:
            continue
        key = content_key(layer.blob_digest)
        if key in failed:
            scans[layer.key] = LayerScan(key=layer.key, error=failed[key])
            continue
        scan = recent.get((key, layer.key)) if recent is not None else None
        if scan is None:
            scan = db.layer_scan(key, engine.ruleset, scanner, layer.key)
            if scan is not None and recent is not None:
                recent.put((key, layer.key), scan)
        if scan is not None:
            scans[layer.key] = scan
    result = assemble(image.image.name, image.image, scans, engine, show_secrets=False)
    cut = confidence_cut(TargetResult(image.image.name, (result,)), options.min_confidence)
    return cut.images[0]


def _repo_counts(db: ResultsDB, found: list[Found], options: FleetOptions) -> dict[tuple[str, str], int]:
    """(repo, content key) -> in how many *other* repositories the layer is seen: at least the
    count in this job, or in the database, whichever is larger."""
    if options.common_repos is None:
        return {}
    in_job: dict[str, set[str]] = {}
    for image in found:
        for layer in image.image.layers:
            if layer.blob_digest:
                in_job.setdefault(content_key(layer.blob_digest), set()).add(image.repo)
    out: dict[tuple[str, str], int] = {}
    for repo in {f.repo for f in found}:
        keys = [k for k, repos in in_job.items() if repo in repos]
        in_db = db.repo_counts(keys, exclude_repo=repo)
        for key in keys:
            out[(repo, key)] = max(len(in_job[key] - {repo}), in_db.get(key, 0))
    return out


def _inherited(image: Found, options: FleetOptions, counts: dict[tuple[str, str], int]) -> list[int]:
    out = []
    for layer in image.image.layers:
        if (
            layer.digest in options.base_layers
            or (layer.blob_digest or "") in options.base_layers
            or (
                options.common_repos is not None
                and layer.blob_digest
                and counts.get((image.repo, content_key(layer.blob_digest)), 0) > options.common_repos
            )
        ):
            out.append(layer.index)
    return out


def base_layer_digests(images: Iterator[Found] | list[Found]) -> frozenset[str]:
    return frozenset(
        d for f in images for layer in f.image.layers for d in (layer.digest, layer.blob_digest) if d
    )
