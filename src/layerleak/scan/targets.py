"""The library call behind ``layerleak scan``: targets in, one result per target out, as each ends.

:func:`scan_targets` opens each target, scans it (:func:`~layerleak.scan.image.scan_source`),
applies the confidence cut and yields the :class:`~layerleak.models.TargetResult` at once, so a
caller can write it to a report or a database before the next target starts: nothing piles up.
A target that cannot be opened or read is a result with an ``error``, never an exception: the
next target is still scanned. The same target named twice is scanned once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from layerleak.detect.engine import Engine
from layerleak.errors import LayerleakError, mask_url_secrets
from layerleak.findings.policy import confidence_cut
from layerleak.models import Confidence, TargetResult
from layerleak.scan.deadline import deadline
from layerleak.scan.image import ScanOptions, scan_source
from layerleak.scan.layers import ProgressHook
from layerleak.sources.interface import SourceOptions
from layerleak.sources.targets import TRANSPORTS, open_target, split_path_ref
from layerleak.store.cache import LayerStore


@dataclass(frozen=True, slots=True)
class TargetOptions:
    """Everything about a run of targets that is not the engine, the cache or the progress."""

    scan: ScanOptions = field(default_factory=ScanOptions)
    source: SourceOptions = field(default_factory=SourceOptions)
    jobs: int = 1
    min_confidence: Confidence = Confidence.MEDIUM
    timeout: float | None = None  # seconds of wall clock per target (scan/deadline.py)


def target_key(target: str) -> tuple[str, ...]:
    """Two spellings of one target have one key: ``oci:./a`` and ``oci:a`` (same directory)."""
    transport, sep, rest = target.partition(":")
    if sep and transport in TRANSPORTS and transport not in ("docker", "docker-daemon"):
        path, ref = split_path_ref(rest)
        return (transport, os.path.realpath(path), ref or "")
    if sep and transport in TRANSPORTS:
        return (transport, rest)
    path, ref = split_path_ref(target)
    return ("", os.path.realpath(path), ref or "")


def scan_targets(
    targets: Iterable[str],
    engine: Engine,
    options: TargetOptions,
    cache: LayerStore | None = None,
    progress: ProgressHook | None = None,
) -> Iterator[TargetResult]:
    """Scan each distinct target in order; yield its result as soon as it is complete."""
    seen: set[tuple[str, ...]] = set()
    for target in targets:
        key = target_key(target)
        if key in seen:
            continue
        seen.add(key)
        try:
            with deadline(options.timeout), open_target(target, options.source) as source:
                images = scan_source(
                    source, engine, options.scan, progress, jobs=options.jobs, cache=cache
                )
            result = TargetResult(target=target, images=tuple(images))
        except LayerleakError as exc:
            message = exc.diagnostics()
            shown = mask_url_secrets(target)
            if shown not in message:  # every line names the image it is about
                message = f"{shown}: {message}"
            result = TargetResult(target=shown, error=message)
        yield confidence_cut(result, options.min_confidence)


def issue_lines(result: TargetResult) -> list[tuple[bool, str]]:
    """(fatal, one line) for each problem of a target: what the CLI prints on stderr (notices,
    which are about the scan rather than the image, only go in the report)."""
    if result.error is not None:
        return [(True, result.error)]
    lines: list[tuple[bool, str]] = []
    for image in result.images:
        for issue in image.errors:
            if issue.notice:
                continue
            where = f" layer {issue.layer_index}" if issue.layer_index is not None else ""
            where += f" {issue.path}" if issue.path is not None else ""
            name = image.image if image.image is not None else "no known image"
            lines.append((issue.fatal, f"{result.target} ({name}){where}: {issue.message}"))
    return lines
