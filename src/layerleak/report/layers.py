"""``layerleak layers``: each image's timeline as a table (like ``docker history``) or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from layerleak.report.escape import escape
from layerleak.report.table import cut_end, fit_step, human_size
from layerleak.scan.timeline import Step, Timeline

LAYERS_JSON_VERSION = 1
_ORDER = ("present", "deleted", "overwritten", "history")


def _findings(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in _ORDER if counts.get(k)) or "-"


def step_dict(step: Step) -> dict[str, Any]:
    return {
        "history_index": step.history_index,
        "layer_index": step.layer_index,
        "empty_layer": step.layer_index is None,
        "diff_id": step.diff_id,
        "blob_digest": step.blob_digest,
        "size": step.size,
        "uncompressed_size": step.uncompressed,
        "created": step.created,
        "created_by": step.created_by,
        "comment": step.comment,
        "files_added": step.added,
        "files_deleted": step.deleted,
        "files_overwritten": step.overwritten,
        "findings": {k: step.findings.get(k, 0) for k in _ORDER},
    }


def layers_json(target: str, timelines: Sequence[Timeline]) -> str:
    doc = {
        "version": LAYERS_JSON_VERSION,
        "target": target,
        "images": [
            {
                "image": t.result.image,
                "image_id": t.result.image_id,
                "platform": t.result.platform,
                "errors": [e.message for e in t.result.errors],
                "steps": [step_dict(s) for s in t.steps],
            }
            for t in timelines
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


HEADER = ("STEP", "LAYER", "DIFF ID", "SIZE", "CREATED", "ADDED", "DELETED", "OVERWR", "FINDINGS")


def _row(step: Step) -> list[str]:
    created = (step.created or "")[:16].replace("T", " ")
    empty = step.layer_index is None
    return [
        "-" if step.history_index is None else str(step.history_index),
        "-" if empty else str(step.layer_index),
        "(no layer)" if empty else escape((step.diff_id or step.blob_digest or "?")[:19]),
        "" if empty else _layer_size(step),
        escape(created),
        "" if empty else str(step.added),
        "" if empty else str(step.deleted),
        "" if empty else str(step.overwritten),
        _findings(step.findings),
    ]


def _layer_size(step: Step) -> str:
    """The blob's size as stored, else (an archive that does not record it) its tar's size."""
    if step.size is not None:
        return human_size(step.size)
    return human_size(step.uncompressed) if step.uncompressed is not None else "?"


def layers_table(timelines: Sequence[Timeline], width: int | None) -> str:
    out: list[str] = []
    for t in timelines:
        r = t.result
        head = "  ".join(escape(x) for x in (r.image, (r.image_id or "")[:19], r.platform or "") if x)
        out.append(cut_end(head, width))
        for e in r.errors:
            text = " ".join(f"{'error' if e.fatal else 'warning'}: {e.message}".split())
            out.append(cut_end("  " + escape(text), width))
        rows = [list(HEADER)] + [_row(s) for s in t.steps]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
        right = {0, 1, 3, 5, 6, 7}
        prefix = 2 + sum(widths) + 2 * len(widths)
        # Too narrow for the step beside the columns: each step goes on a line of its own.
        below = width is not None and width - prefix < 40
        for row, step in zip(rows, (None, *t.steps), strict=True):
            cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
            line = "  " + "  ".join(cells)
            text = ""
            if step is None:
                text = "" if below else "CREATED BY"
            elif step.created_by:
                text = fit_step(step.created_by, None if width is None else width - (6 if below else prefix))
            if below:
                out.append(line.rstrip())
                if text:
                    out.append("      " + text)
            else:
                out.append((line + "  " + text).rstrip())
        out.append("")
    return "\n".join(out)
