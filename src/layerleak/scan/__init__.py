"""Scanning: the place sources, layers, detection and findings meet.

- :func:`scan_targets` (:mod:`~layerleak.scan.targets`): the library call behind ``layerleak
  scan``: every target, one after another, each result yielded as soon as it is complete.
- :func:`scan_source` (:mod:`~layerleak.scan.image`): every image of one opened source.
- :mod:`~layerleak.scan.layers`: the layer phase (cache lookups, worker processes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerleak.scan.image import ScanOptions, scan_source
    from layerleak.scan.layers import ProgressHook
    from layerleak.scan.targets import TargetOptions, issue_lines, scan_targets

# Imported on first use (PEP 562), so that ``layerleak.scan.fleet`` (a registry job's rerun: no
# image scanned) does not import the whole scan pipeline with its package.
_WHERE = {
    "ScanOptions": "image",
    "scan_source": "image",
    "ProgressHook": "layers",
    "TargetOptions": "targets",
    "issue_lines": "targets",
    "scan_targets": "targets",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = ["ProgressHook", "ScanOptions", "TargetOptions", "issue_lines", "scan_source", "scan_targets"]
