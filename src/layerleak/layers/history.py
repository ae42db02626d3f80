"""Pair the image config's history with its layers.

History entries with ``empty_layer: true`` (ENV, LABEL, ARG, ...) made no layer; the others pair,
in order, with the layers. When the counts disagree (squashed or hand-made images) only the
entries that can be paired safely are used: none, rather than a wrong Dockerfile step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def history_entries(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    hist = config.get("history")
    return [h for h in hist if isinstance(h, dict)] if isinstance(hist, list) else []


def layer_steps(config: Mapping[str, Any], layer_count: int) -> list[str | None]:
    """``created_by`` for each layer index, or None where it cannot be known."""
    non_empty = [h for h in history_entries(config) if not h.get("empty_layer")]
    if len(non_empty) != layer_count:
        return [None] * layer_count
    return [str(h["created_by"]) if h.get("created_by") else None for h in non_empty]
