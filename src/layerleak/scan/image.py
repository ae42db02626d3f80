"""Every image of one opened source: the layer phase once, then each image's findings.

``scan_source`` reads every wanted layer once (shared layers are scanned once for all images that
use them), decides each file-borne match's status from the layers above it, scans config and
history, and returns :class:`ImageResult` values holding redacted findings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from layerleak.detect.engine import Engine
from layerleak.errors import ImageFormatError
from layerleak.findings.build import assemble
from layerleak.layers.scanned import LayerScan
from layerleak.models import ImageResult, ScanIssue
from layerleak.scan.layers import LayerPlan, ProgressHook, scan_layers
from layerleak.sources.interface import ImageDesc, ImageSource, LayerRef
from layerleak.sources.platforms import select
from layerleak.store.cache import LayerStore


@dataclass(frozen=True, slots=True)
class ScanOptions:
    show_secrets: bool = False
    platform: str | None = None


def scan_source(
    source: ImageSource,
    engine: Engine,
    options: ScanOptions,
    progress: ProgressHook | None = None,
    *,
    jobs: int = 1,
    cache: LayerStore | None = None,
) -> list[ImageResult]:
    """``jobs`` > 1 scans file-backed layers in that many processes; ``cache`` skips layers
    already scanned (both give the same findings as the plain path: see scan/layers.py).

    A target cut short or corrupt part-way (``source.damage``) is an error of each image, whose
    layers read before the damage are still reported. When no image can be described at all (the
    manifest was never reached, or cannot be read), the blobs that look like layers are scanned
    anyway and reported as one result with ``image`` None: what was found is never thrown away.
    """
    scans: dict[str, LayerScan] = {}
    plan = LayerPlan(jobs=jobs, cache=cache, show_secrets=options.show_secrets)
    if source.streaming:
        from layerleak.layers.walk import scan_layer  # the walk and its decoders: only to scan

        for key, stream in source.blobs(None):
            scans[key] = scan_layer(key, stream, engine, progress(key, None) if progress else None)
    try:
        images = select(source.images(), options.platform, source.target)
    except ImageFormatError as exc:
        orphans = source.unattributed()
        if not orphans:
            if source.damage:
                raise ImageFormatError(f"{source.damage}; {exc.message}") from None
            raise
        if not source.streaming:
            scans = scan_layers(source, {ref.key: ref for ref in orphans}, engine, plan, progress)
        return [_unattributed(source, exc.message, orphans, scans, engine, options)]
    if not source.streaming:
        refs = {layer.key: layer for image in images for layer in image.layers}
        scans = scan_layers(source, refs, engine, plan, progress)
    results = [assemble(source.target, image, scans, engine, options.show_secrets) for image in images]
    if source.damage:
        damage = ScanIssue(message=source.damage)
        results = [dataclasses.replace(r, errors=(damage, *r.errors)) for r in results]
    return results


def _unattributed(
    source: ImageSource,
    why: str,
    orphans: list[LayerRef],
    scans: dict[str, LayerScan],
    engine: Engine,
    options: ScanOptions,
) -> ImageResult:
    """The layers of a target whose images are unknown, each named by the digest of its content."""
    layers: list[LayerRef] = []
    for ref in orphans:
        scan = scans.get(ref.key)
        digest = scan.diff_id if scan is not None and scan.diff_id else None
        layers.append(dataclasses.replace(ref, index=len(layers), diff_id=digest))
    message = f"{why}: the {len(layers)} layers found were scanned as layers of no known image"
    errors = (source.damage, message) if source.damage else (message,)
    desc = ImageDesc(name="", image_id=None, platform=None, config={}, layers=tuple(layers), errors=errors)
    result = assemble(source.target, desc, scans, engine, options.show_secrets)
    findings = tuple(dataclasses.replace(f, image=None) for f in result.findings)
    return dataclasses.replace(result, image=None, findings=findings)
