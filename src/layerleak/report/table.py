"""The human report: grouped by image, then layer; fits an 80-column terminal."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby

from layerleak.models import Finding, ImageResult, ScanReport, SourceKind
from layerleak.report.escape import escape

WIDTH = 80
Style = Callable[[str, str], str]


def _plain(text: str, _style: str) -> str:
    return text


def _cut(text: str, width: int) -> str:
    """One line of at most ``width`` characters; whatever came from the image is escaped, so no
    control sequence reaches the terminal (report/escape.py)."""
    text = escape(" ".join(text.splitlines()).replace("\t", " ").rstrip())
    return text if len(text) <= width else text[: width - 1] + "…"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


SEVERITY_STYLE = {"critical": "red", "high": "red", "medium": "yellow", "low": "cyan", "info": ""}


def _where(f: Finding) -> str:
    loc = f.location
    if loc.source is SourceKind.LAYER:
        where = f"{loc.path}:{loc.line}" if loc.line else str(loc.path)
        if loc.inner_path:
            where += f" ! {loc.inner_path}"
        return where
    if loc.source is SourceKind.CONFIG:
        key = loc.key or ""
        return f"LABEL {key[6:]}" if key.startswith("label:") else f"{key}"
    return loc.key or "history"


def _fate(f: Finding) -> str:
    loc = f.location
    if loc.status is None:
        return ""
    if loc.removed_in_layer is not None:
        return f"{loc.status} in layer {loc.removed_in_layer}"
    return str(loc.status)


def render_image(image: ImageResult, style: Style) -> list[str]:
    lines = []
    head = image.image if image.image is not None else "(layers of no known image)"
    meta = [image.image_id[:19] + "…" if image.image_id else None, image.platform]
    lines.append(style(_cut(head, WIDTH), "bold"))
    lines.append(
        _cut(
            "  " + "  ".join(m for m in meta if m)
            + f"  {len(image.layers)} layers, {_size(image.bytes_scanned)} scanned, "
            + f"{len(image.findings)} finding{'s' if len(image.findings) != 1 else ''}"
            + (f" ({image.hidden_findings} below --min-confidence hidden)" if image.hidden_findings else ""),
            WIDTH,
        )
    )
    for err in image.errors:
        where = f"layer {err.layer_index}: " if err.layer_index is not None else ""
        where += f"{err.path}: " if err.path else ""
        mark, colour = ("error", "red") if err.fatal else ("warning", "yellow")
        lines.append(style(_cut(f"  {mark}: {where}{err.message}", WIDTH), colour))

    def group(f: Finding) -> tuple[int, int]:
        loc = f.location
        order = {SourceKind.LAYER: 0, SourceKind.CONFIG: 1, SourceKind.HISTORY: 2}[loc.source]
        return order, loc.layer_index if loc.layer_index is not None else -1

    for (order, layer_index), items in groupby(image.findings, key=group):
        found = list(items)
        if order == 0:
            layer = image.layers[layer_index]
            title = f"  Layer {layer_index}  {layer.digest[:19]}"
            step = layer.created_by or ""
            lines.append(style(_cut(title + (f"  {step}" if step else ""), WIDTH), "bold"))
        else:
            lines.append(style("  Config" if order == 1 else "  History", "bold"))
        for f in found:
            sev = str(f.severity).upper()
            left = f"    {style(f'{sev:<8}', SEVERITY_STYLE.get(str(f.severity), ''))} "
            lines.append(left + _cut(f"{f.rule_id}  {_where(f)}", WIDTH - 13))
            if f.other_locations:
                also = ", ".join(f"layer {x.layer_index}" for x in f.other_locations)
                lines.append("             " + _cut(f"also in {also}", WIDTH - 13))
            detail = f.secret if f.secret is not None else f.redacted
            fate = _fate(f)
            extra = f"  [{fate}]" if fate else ""
            if str(f.confidence) != "high":
                extra += f"  ({f.confidence} confidence{', ' + f.reason if f.reason else ''})"
            lines.append("             " + _cut((detail.splitlines() or [""])[0] + extra, WIDTH - 13))
    return lines


def render_table(report: ScanReport, style: Style = _plain) -> str:
    out: list[str] = []
    for target in report.targets:
        if target.error:
            message = target.error
            if not message.startswith(target.target):
                message = f"{target.target}: {message}"
            out.append(style(_cut(message, WIDTH), "red"))
            out.append("")
        for image in target.images:
            out.extend(render_image(image, style))
            out.append("")
    total = len(report.findings)
    out.append(f"{total} finding{'s' if total != 1 else ''}" + (
        "" if report.secrets_shown else " (secrets redacted; --show-secrets to reveal)"
    ))
    return "\n".join(out) + "\n"
