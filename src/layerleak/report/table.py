"""The human report: grouped by image, then layer, fitted to the terminal, ending with what to do.

Fitting (``width``): a line too long loses characters from the middle of what can be shortened,
never the parts a responder needs: the status (``[deleted in layer 21]``), the file name at the end
of a path, the ``COPY ... in DEST`` end of a build step. With no width (a file or a pipe) nothing
is cut. Every text that came from an image is escaped (:func:`~layerleak.report.escape.escape`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from itertools import groupby

from layerleak.models import Finding, ImageResult, LayerSummary, ScanReport, SourceKind, Status
from layerleak.report.escape import escape
from layerleak.report.interface import Renderer, RenderOptions

WIDTH = 80  # the width of the golden file and of ``render_table`` without a width
INDENT = " " * 13
ELLIPSIS = "…"
Style = Callable[[str, str], str]

# SGR codes: critical and high must not look alike.
_SGR = {
    "critical": "1;97;41",  # bold white on red
    "high": "1;31",  # bold red
    "medium": "33",
    "low": "36",
    "info": "2",
    "bold": "1",
    "red": "31",
    "yellow": "33",
    "status-present": "31",
    "status-deleted": "35",
    "status-overwritten": "35",
    "dim": "2",
}


def _plain(text: str, _style: str) -> str:
    return text


def ansi(text: str, style: str) -> str:
    code = _SGR.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if code and text else text


def _one_line(text: str) -> str:
    return escape(" ".join(text.split()))


def cut_end(text: str, width: int | None) -> str:
    """Keep the start (a message)."""
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS


def cut_middle(text: str, width: int | None, keep_tail: int) -> str:
    """Shorten from the middle, keeping at least ``keep_tail`` characters of the end."""
    if width is None or len(text) <= width:
        return text
    keep_tail = min(keep_tail, len(text))
    head = width - keep_tail - 1
    if head < 1:
        return ELLIPSIS + text[-keep_tail:]
    return text[:head] + ELLIPSIS + text[-keep_tail:]


def fit_path(path: str, width: int | None) -> str:
    """A path shortened in its directories; the file name (and ``:line``, `` ! inner``) stays."""
    name_at = path.rfind("/", 0, path.find(" ! ") if " ! " in path else len(path))
    return cut_middle(path, width, len(path) - name_at if name_at >= 0 else len(path))


_NOP = "/bin/sh -c #(nop) "


def step_text(step: str) -> str:
    """A history step as a reader knows it: ``COPY file:ab in /dest``, ``RUN rm x``."""
    text = " ".join(step.split())
    if text.startswith(_NOP):
        return text[len(_NOP) :].strip()
    if text.startswith("/bin/sh -c "):
        return "RUN " + text[len("/bin/sh -c ") :]
    if text.startswith("|") and " /bin/sh -c " in text:  # |N ARG=value ... /bin/sh -c cmd
        return text.replace(" /bin/sh -c ", " RUN ", 1)
    return text


def fit_step(step: str, width: int | None) -> str:
    """A step shortened in its middle; the `` in DEST`` part of ADD/COPY stays whole."""
    text = escape(step_text(step))
    at = text.rfind(" in ")
    tail = len(text) - at if at >= 0 and text.split(" ", 1)[0] in ("COPY", "ADD") else min(len(text), 12)
    return cut_middle(text, width, tail)


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def where(f: Finding) -> str:
    """Where the finding is, as one (escaped) line."""
    loc = f.location
    if loc.source is SourceKind.LAYER:
        text = f"{loc.path}:{loc.line}" if loc.line else str(loc.path)
        if loc.inner_path:
            text += f" ! {loc.inner_path}"
        return _one_line(text)
    if loc.source is SourceKind.CONFIG:
        key = loc.key or ""
        return _one_line(f"LABEL {key[6:]}" if key.startswith("label:") else key)
    return _one_line(loc.key or "history")


# How findings are grouped, in this order, and what each group is called.
GROUPS = {
    SourceKind.LAYER: 0,
    SourceKind.CONFIG: 1,
    SourceKind.HISTORY: 2,
    SourceKind.ANNOTATION: 3,
    SourceKind.ATTESTATION: 4,
}
GROUP_TITLES = {1: "Config", 2: "History", 3: "Annotations", 4: "Attestations"}


def fate(f: Finding) -> str:
    loc = f.location
    if loc.status is None:
        return ""
    if loc.status is Status.DELETED and loc.removed_in_layer is not None:
        return f"deleted in layer {loc.removed_in_layer}"
    if loc.removed_in_layer is not None:
        return f"{loc.status} in layer {loc.removed_in_layer}"
    return str(loc.status)


def history_layer(f: Finding, layers: tuple[LayerSummary, ...]) -> str:
    """Which layer a history step made: its text is the layer's (both are scrubbed the same way)."""
    step = f.location.created_by
    for layer in layers:
        if step is not None and layer.created_by == step:
            return f"layer {layer.index}"
    return "no layer (an empty step)"


def render_image(image: ImageResult, style: Style, width: int | None = WIDTH) -> list[str]:
    def inner(indent: int) -> int | None:
        return None if width is None else max(width - indent, 20)

    head = image.image if image.image is not None else "(layers of no known image)"
    lines = [style(cut_end(_one_line(head), width), "bold")]
    meta = [image.image_id[:19] + ELLIPSIS if image.image_id else None, image.platform]
    summary = (
        "  " + "  ".join(_one_line(m) for m in meta if m)
        + f"  {_plural(len(image.layers), 'layer')}, {human_size(image.bytes_scanned)} scanned, "
        + _plural(len(image.findings), "finding")
    )
    extras = []
    if image.hidden_findings:
        extras.append(f"{image.hidden_findings} below --min-confidence hidden")
    baselined = image.baselined
    ignored = image.ignored
    if baselined:
        extras.append(f"{baselined} baselined")
    if ignored:
        extras.append(f"{ignored} ignored")
    if extras:
        summary += f" ({', '.join(extras)})"
    lines.append(cut_end(summary, width))
    for err in image.errors:
        at = f"layer {err.layer_index}: " if err.layer_index is not None else ""
        at += f"{err.path}: " if err.path else ""
        mark, colour = ("error", "red") if err.fatal else ("warning", "yellow")
        lines.append(style(cut_end("  " + _one_line(f"{mark}: {at}{err.message}"), width), colour))

    def group(f: Finding) -> tuple[int, int]:
        loc = f.location
        order = GROUPS[loc.source]
        return order, loc.layer_index if loc.layer_index is not None else -1

    for (order, layer_index), items in groupby(image.findings, key=group):
        if order == 0:
            layer = image.layers[layer_index]
            title = f"  Layer {layer_index}  {layer.digest[:19]}"
            step = layer.created_by or ""
            room = None if width is None else width - len(title) - 2
            shown = fit_step(step, room) if step else ""
            cramped = ELLIPSIS in shown and shown.index(ELLIPSIS) < 16  # too little of the command left
            if room is not None and (len(shown) > room or cramped):  # a line of its own, all its width
                lines.append(style(title, "bold"))
                lines.append(style("    " + fit_step(step, width - 4 if width else None), "bold"))
            else:
                lines.append(style(title + (f"  {shown}" if shown else ""), "bold"))
        else:
            lines.append(style(f"  {GROUP_TITLES[order]}", "bold"))
        for f in items:
            sev = str(f.severity)
            label = style(f"{sev.upper():<8}", sev)
            head = f"{escape(f.rule_id)}  "
            room = None if width is None else max(width - 13 - len(head), 16)
            lines.append(f"    {label} {head}{fit_path(where(f), room)}")
            if f.location.source is SourceKind.HISTORY and f.location.created_by:
                prefix = f"{history_layer(f, image.layers)}: "
                room = None if width is None else max(width - 13 - len(prefix), 24)
                lines.append(INDENT + prefix + fit_step(f.location.created_by, room))
            if f.other_locations:
                also = ", ".join(f"layer {x.layer_index}" for x in f.other_locations)
                lines.append(INDENT + cut_end(f"also in {also}", inner(13)))
            for r in f.related:  # the leaked key's certificates and public keys in this image
                text = f"its {r.kind}: layer {r.layer_index} {r.path}"
                text += f" ({r.detail})" if r.detail else ""
                lines.append(INDENT + cut_end(_one_line(text), inner(13)))
            detail = _one_line((f.secret if f.secret is not None else f.redacted).splitlines()[0]
                               if (f.secret or f.redacted) else "")
            status = fate(f)
            tail = ""
            if str(f.confidence) != "high":
                tail = f"  ({f.confidence} confidence{', ' + f.reason if f.reason else ''})"
            badge = f"  [{status}]" if status else ""
            room = inner(13)
            coloured = style(badge, f"status-{f.location.status}") if badge else ""
            # Neither the secret's form (short and fixed-size when redacted) nor the status badge
            # is cut: the badge moves to a line of its own, and the confidence note gives way.
            if room is not None and len(detail) + len(badge) > room:
                lines.append(INDENT + detail)
                badge = badge.strip()
                detail, coloured = "", style(badge, f"status-{f.location.status}")
            if room is not None and len(detail) + len(badge) + len(tail) > room:
                tail = ""
            lines.append(INDENT + detail + coloured + tail)
    return lines


def summary_lines(report: ScanReport) -> list[str]:
    """What a responder does next: how many distinct secrets, where they stand, and to rotate."""
    findings = report.findings
    counts = {s: 0 for s in Status}
    elsewhere = 0
    for f in findings:
        for loc in (f.location, *f.other_locations):
            if loc.status is None:
                elsewhere += 1
            else:
                counts[loc.status] += 1
    unique = len({f.fingerprint for f in findings})
    places = sum(counts.values()) + elsewhere
    lines = [
        f"{_plural(len(findings), 'finding')} of {_plural(unique, 'unique secret')}"
        + (
            f", in {_plural(places, 'place')}: {counts[Status.PRESENT]} present, {counts[Status.DELETED]} "
            f"deleted but still extractable, {counts[Status.OVERWRITTEN]} overwritten, {elsewhere} in "
            "config or history"
            if findings else ""
        )
    ]
    suppressed = []
    baselined = report.baselined
    ignored = report.ignored
    if baselined:
        suppressed.append(f"{baselined} baselined")
    if ignored:
        suppressed.append(f"{ignored} ignored by .layerleak.toml")
    if suppressed:
        lines.append("Not shown: " + ", ".join(suppressed) + ".")
    if findings:
        lines.append("Rotate every one: a deleted file is still in the image.")
    if not report.secrets_shown:
        lines.append("Secrets are redacted; --show-secrets reveals them.")
    return lines


def render_table(report: ScanReport, style: Style = _plain, width: int | None = WIDTH) -> str:
    out: list[str] = []
    for target in report.targets:
        if target.error:
            message = target.error
            if not message.startswith(target.target):
                message = f"{target.target}: {message}"
            out.append(style(cut_end(_one_line(message), width), "red"))
            out.append("")
        for image in target.images:
            out.extend(render_image(image, style, width))
            out.append("")
    for i, line in enumerate(summary_lines(report)):
        # Wrapped, never cut: this is what the reader acts on.
        for part in textwrap.wrap(line, width or len(line) or 1, subsequent_indent="  ") or [""]:
            out.append(style(part, "bold") if i == 0 else part)
    return "\n".join(out) + "\n"


class TableRenderer(Renderer):
    name = "table"
    extension = "txt"

    def render(self, report: ScanReport, options: RenderOptions) -> str:
        return render_table(report, ansi if options.color else _plain, options.width)
