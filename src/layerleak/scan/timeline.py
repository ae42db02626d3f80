"""An image's build, step by step (``layerleak layers``): what each step did to the filesystem.

Every history step is listed in order, like ``docker history``, with the layer it made (none for
ENV, LABEL, ARG, ...): the layer's diff_id, blob size, the files it added, deleted (whiteouts and
opaque directories) and overwritten (present in a lower layer), and its findings by status.
Step texts are scrubbed as in every report (build ARG values, secrets found in the image).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from layerleak.detect.engine import Engine
from layerleak.findings.build import assemble
from layerleak.findings.redact import scrub_build_args
from layerleak.layers.history import history_entries
from layerleak.layers.scanned import KIND_DIR, LayerScan
from layerleak.models import Confidence, ImageResult, SourceKind
from layerleak.scan.image import ScanOptions
from layerleak.scan.layers import LayerPlan, ProgressHook, scan_layers
from layerleak.sources.interface import ImageDesc, ImageSource
from layerleak.sources.platforms import select
from layerleak.store.cache import LayerCache


@dataclass(frozen=True, slots=True)
class Step:
    """One history step, or one layer with no history to pair it with."""

    history_index: int | None
    layer_index: int | None  # None: a step that made no layer
    created: str | None
    created_by: str | None  # scrubbed
    comment: str | None = None
    diff_id: str | None = None
    blob_digest: str | None = None
    size: int | None = None  # the blob's size as stored (compressed)
    uncompressed: int | None = None
    added: int = 0
    deleted: int = 0
    overwritten: int = 0
    findings: Mapping[str, int] = field(default_factory=dict)  # status (or "history") -> count


@dataclass(frozen=True, slots=True)
class Timeline:
    result: ImageResult
    steps: tuple[Step, ...]


def _file_counts(scan: LayerScan | None, below: list[LayerScan | None]) -> tuple[int, int, int]:
    if scan is None:
        return 0, 0, 0
    added = overwritten = 0
    for path, kind in scan.entries.items():
        if kind == KIND_DIR:
            continue
        if any(lower is not None and path in lower.entries for lower in below):
            overwritten += 1
        else:
            added += 1
    return added, len(scan.whiteouts) + len(scan.opaque), overwritten


def timeline(image: ImageDesc, result: ImageResult, scans: Mapping[str, LayerScan],
             show_secrets: bool = False) -> Timeline:
    by_layer: dict[int, Counter[str]] = {}
    by_step: dict[int, Counter[str]] = {}
    step_text: dict[int, str] = {}
    for f in result.findings:
        for loc in (f.location, *f.other_locations):
            if loc.layer_index is not None:
                by_layer.setdefault(loc.layer_index, Counter())[str(loc.status or "present")] += 1
        key = f.location.key or ""
        if f.location.source is SourceKind.HISTORY and key.startswith("history[") and key.endswith("]"):
            index = int(key[len("history["):-1]) if key[len("history["):-1].isdigit() else -1
            by_step.setdefault(index, Counter())["history"] += 1
            if f.location.created_by:
                step_text[index] = f.location.created_by  # scrubbed of what was found in it
    stack = [scans.get(layer.key) for layer in image.layers]
    summaries = {s.index: s for s in result.layers}

    def layer_step(index: int, hist: int | None, entry: Mapping[str, object]) -> Step:
        ref, scan = image.layers[index], stack[index]
        added, deleted, overwritten = _file_counts(scan, stack[:index])
        counts = Counter(by_layer.get(index, Counter()))
        if hist is not None:
            counts.update(by_step.get(hist, Counter()))
        return Step(
            history_index=hist, layer_index=index, created=_str(entry.get("created")),
            created_by=summaries[index].created_by if index in summaries else None,
            comment=_str(entry.get("comment")), diff_id=ref.diff_id, blob_digest=ref.blob_digest,
            size=ref.size, uncompressed=scan.bytes_read if scan else None,
            added=added, deleted=deleted, overwritten=overwritten, findings=dict(counts),
        )

    entries = history_entries(image.config)
    stepped = [h for h in entries if not h.get("empty_layer")]
    steps: list[Step] = []
    if len(stepped) == len(image.layers):
        next_layer = 0
        for hist, entry in enumerate(entries):
            if entry.get("empty_layer"):
                raw = step_text.get(hist) or _str(entry.get("created_by"))
                steps.append(Step(
                    history_index=hist, layer_index=None, created=_str(entry.get("created")),
                    created_by=raw if show_secrets or raw is None else scrub_build_args(raw),
                    comment=_str(entry.get("comment")), findings=dict(by_step.get(hist, Counter())),
                ))
            else:
                steps.append(layer_step(next_layer, hist, entry))
                next_layer += 1
    else:  # history that cannot be paired safely: the layers alone
        steps = [layer_step(i, None, {}) for i in range(len(image.layers))]
    return Timeline(result, tuple(steps))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def timelines(
    source: ImageSource,
    engine: Engine,
    options: ScanOptions,
    progress: ProgressHook | None = None,
    *,
    jobs: int = 1,
    cache: LayerCache | None = None,
    min_confidence: Confidence = Confidence.MEDIUM,
) -> list[Timeline]:
    """Each wanted image's timeline; findings below ``min_confidence`` are not counted. The
    layer phase is :func:`~layerleak.scan.image.scan_source`'s (shared layers read once, the
    cache used); a target cut short is an error here, where a scan still reports what it read."""
    scans: dict[str, LayerScan] = {}
    if source.streaming:
        from layerleak.layers.walk import scan_layer  # the walk and its decoders: only to scan

        for key, stream in source.blobs(None):
            scans[key] = scan_layer(key, stream, engine, progress(key, None) if progress else None)
    images = select(source.images(), options.platform, source.target)
    if not source.streaming:
        refs = {layer.key: layer for image in images for layer in image.layers}
        plan = LayerPlan(jobs=jobs, cache=cache, show_secrets=options.show_secrets)
        scans = scan_layers(source, refs, engine, plan, progress)
    out = []
    for image in images:
        result = assemble(source.target, image, scans, engine, options.show_secrets)
        kept = tuple(f for f in result.findings if f.confidence >= min_confidence)
        result = dataclasses.replace(result, findings=kept,
                                     hidden_findings=len(result.findings) - len(kept))
        out.append(timeline(image, result, scans, options.show_secrets))
    return out
