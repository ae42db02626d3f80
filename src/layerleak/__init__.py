"""layerleak: find secrets baked into container image layers.

The small public API (imported lazily, so ``import layerleak`` stays cheap)::

    from layerleak import Engine, TargetOptions, load_rules, scan_targets

    engine = Engine(load_rules())
    for result in scan_targets(["docker-archive:app.tar"], engine, TargetOptions()):
        for image in result.images:
            print(image.image, len(image.findings))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Engine", "ScanOptions", "TargetOptions", "__version__", "load_rules", "scan_source", "scan_targets",
]

if TYPE_CHECKING:
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.scan import ScanOptions, TargetOptions, scan_source, scan_targets

_LAZY = {
    "Engine": "layerleak.detect.engine",
    "load_rules": "layerleak.detect.rules",
    "ScanOptions": "layerleak.scan",
    "TargetOptions": "layerleak.scan",
    "scan_source": "layerleak.scan",
    "scan_targets": "layerleak.scan",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'layerleak' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
