"""Every image of one opened source: the layer phase once, then each image's findings.

``scan_source`` reads every wanted layer once (shared layers are scanned once for all images that
use them), decides each file-borne match's status from the layers above it, scans config and
history, and returns :class:`ImageResult` values holding redacted findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerleak.detect.engine import Engine
from layerleak.errors import LayerleakError
from layerleak.findings.build import assemble
from layerleak.layers.walk import LayerScan, scan_layer
from layerleak.models import ImageResult
from layerleak.scan.layers import LayerPlan, ProgressHook, scan_layers
from layerleak.sources.interface import ImageDesc, ImageSource
from layerleak.sources.layout import platform_matches
from layerleak.store.cache import LayerCache


@dataclass(frozen=True, slots=True)
class ScanOptions:
    show_secrets: bool = False
    platform: str | None = None


def select_images(images: Sequence[ImageDesc], platform: str | None) -> list[ImageDesc]:
    return [i for i in images if platform_matches(i.platform, platform)]


def scan_source(
    source: ImageSource,
    engine: Engine,
    options: ScanOptions,
    progress: ProgressHook | None = None,
    *,
    jobs: int = 1,
    cache: LayerCache | None = None,
) -> list[ImageResult]:
    """``jobs`` > 1 scans file-backed layers in that many processes; ``cache`` skips layers
    already scanned (both give the same findings as the plain path: see scan/layers.py)."""
    scans: dict[str, LayerScan] = {}
    if source.streaming:
        for key, stream in source.blobs(None):
            scans[key] = scan_layer(key, stream, engine, progress(key, None) if progress else None)
        images = select_images(source.images(), options.platform)
    else:
        images = select_images(source.images(), options.platform)
        refs = {layer.key: layer for image in images for layer in image.layers}
        plan = LayerPlan(jobs=jobs, cache=cache, show_secrets=options.show_secrets)
        scans = scan_layers(source, refs, engine, plan, progress)
    if options.platform and not images:
        raise LayerleakError(f"{source.target}: no image for platform {options.platform}")
    return [assemble(source.target, image, scans, engine, options.show_secrets) for image in images]
