"""Scanning: the place sources, layers, detection and findings meet.

- :func:`scan_targets` (:mod:`~layerleak.scan.targets`): the library call behind ``layerleak
  scan``: every target, one after another, each result yielded as soon as it is complete.
- :func:`scan_source` (:mod:`~layerleak.scan.image`): every image of one opened source.
- :mod:`~layerleak.scan.layers`: the layer phase (cache lookups, worker processes).
"""

from __future__ import annotations

from layerleak.scan.image import ScanOptions, scan_source
from layerleak.scan.layers import ProgressHook
from layerleak.scan.targets import TargetOptions, issue_lines, scan_targets

__all__ = ["ProgressHook", "ScanOptions", "TargetOptions", "issue_lines", "scan_source", "scan_targets"]
