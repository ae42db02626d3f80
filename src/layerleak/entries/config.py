"""Text an image carries outside its layers: the config (Env, Labels, Cmd, Entrypoint,
Healthcheck, OnBuild, ...) and every history step's ``created_by``, where build ARG values show up
as ``|N KEY=value /bin/sh -c ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from layerleak.layers.history import history_entries
from layerleak.models import SourceKind


@dataclass(frozen=True, slots=True)
class ConfigText:
    source: SourceKind
    key: str  # ENV name, "label:NAME", "Cmd", "history[3]", ...
    text: str


def _join(value: Any) -> str | None:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    return None


def config_texts(config: Mapping[str, Any]) -> Iterator[ConfigText]:
    inner = config.get("config") or config.get("container_config") or {}
    if not isinstance(inner, dict):
        inner = {}
    for item in inner.get("Env") or []:
        text = str(item)
        name = text.split("=", 1)[0]
        yield ConfigText(SourceKind.CONFIG, name, text)
    labels = inner.get("Labels") or {}
    if isinstance(labels, dict):
        for name, value in labels.items():
            yield ConfigText(SourceKind.CONFIG, f"label:{name}", f"{name}={value}")
    for field in ("Cmd", "Entrypoint", "OnBuild", "Shell"):
        joined = _join(inner.get(field))
        if joined:
            yield ConfigText(SourceKind.CONFIG, field, joined)
    health = inner.get("Healthcheck")
    if isinstance(health, dict):
        test = _join(health.get("Test"))
        if test:
            yield ConfigText(SourceKind.CONFIG, "Healthcheck", test)
    # Anything else a builder stored: annotations, author, comment.
    for field in ("author", "comment"):
        value = config.get(field)
        if isinstance(value, str) and value:
            yield ConfigText(SourceKind.CONFIG, field, value)
    for i, entry in enumerate(history_entries(config)):
        for field in ("created_by", "comment", "author"):
            value = entry.get(field)
            if isinstance(value, str) and value:
                key = f"history[{i}]" if field == "created_by" else f"history[{i}].{field}"
                yield ConfigText(SourceKind.HISTORY, key, value)

