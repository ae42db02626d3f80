"""Fleet outputs: the job summary, and the answers of ``layerleak db`` (JSON and tables).

Text that came from an image (paths, names) goes through :func:`safe` before it reaches a
terminal: control characters are shown escaped, never interpreted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from layerleak.scan.fleet import FleetSummary

DB_JSON_VERSION = 1


def safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def summary_json(summary: FleetSummary) -> str:
    return json.dumps(summary.as_json(), indent=2) + "\n"


def summary_table(summary: FleetSummary) -> str:
    data = summary.as_json()
    lines = [f"registry {safe(summary.registry)}"]
    for key in (
        "repositories",
        "images",
        "images_unchanged",
        "layer_refs",
        "layers_unique",
        "layers_scanned",
        "layers_reused",
        "bytes_scanned",
        "findings",
    ):
        lines.append(f"  {key.replace('_', ' '):<18} {data[key]}")
    by_status = ", ".join(f"{k} {v}" for k, v in summary.findings_by_status.items()) or "none"
    lines.append(f"  {'findings by status':<18} {by_status}")
    started = f" ({summary.startup_seconds:.1f} starting workers)" if summary.startup_seconds >= 0.05 else ""
    lines.append(f"  {'seconds':<18} {summary.seconds:.1f}{started}")
    if summary.errors:
        lines.append(f"  errors ({len(summary.errors)}):")
        lines.extend(f"    {safe(e)}" for e in summary.errors)
    return "\n".join(lines) + "\n"


def findings_json(findings: list[dict[str, Any]]) -> str:
    return json.dumps({"version": DB_JSON_VERSION, "findings": findings}, indent=2) + "\n"


def findings_table(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "no findings\n"
    rows: list[tuple[object, ...]] = [("IMAGE", "STATUS", "RULE", "SECRET", "LAYER", "WHERE")]
    for f in findings:
        where = f.get("path") or f.get("key") or ""
        status = (f.get("status") or f.get("source") or "") + (" (inherited)" if f.get("inherited") else "")
        layer = "" if f.get("layer_index") is None else str(f["layer_index"])
        rows.append((f.get("image"), status, f.get("rule_id"), f.get("secret"), layer, where))
    return _table(rows)


def where_json(answer: dict[str, Any]) -> str:
    return json.dumps(answer, indent=2) + "\n"


def where_table(answer: dict[str, Any]) -> str:
    if not answer["images"]:
        return f"fingerprint {safe(answer['fingerprint'])}: in no recorded image\n"
    rows = [("IMAGE", "LAYER", "PATH", "STATUS")]
    rows.extend(
        (i["image"], i["layer_digest"] or "", i["path"] or "", i["status"] or i["source"])
        for i in answer["images"]
    )
    return _table(rows)


def related_json(related: list[dict[str, Any]]) -> str:
    return json.dumps({"version": DB_JSON_VERSION, "related": related}, indent=2) + "\n"


def related_table(related: list[dict[str, Any]]) -> str:
    if not related:
        return "no recorded private key has a recorded certificate or public key\n"
    rows = [("KEY", "ROLE", "IMAGE", "LAYER", "PATH")]
    for item in related:
        spki = item["fingerprint"][:23]  # "SHA256:" and 16 characters
        sides = [("private key", p, p["path"] + (f" ! {p['inner_path']}" if p["inner_path"] else ""))
                 for p in item["private_keys"]]
        sides += [(p["kind"], p, p["path"] + (f" ({p['detail']})" if p["detail"] else ""))
                  for p in item["public_halves"]]
        for role, place, shown in sides:
            for holder in place["in"] or [{"image": "(no recorded image)", "layer_index": ""}]:
                rows.append((spki, role, holder["image"], holder["layer_index"], shown))
    return _table(rows)


def images_json(images: list[dict[str, Any]]) -> str:
    return json.dumps({"version": DB_JSON_VERSION, "images": images}, indent=2) + "\n"


def images_table(images: list[dict[str, Any]]) -> str:
    if not images:
        return "no images recorded\n"
    rows = [("IMAGE", "PLATFORM", "LAYERS", "PRESENT", "DELETED", "OVERWRITTEN", "CONFIG", "COMPLETE")]
    for i in images:
        f = i["findings"]
        rows.append(
            (
                i["image"],
                i["platform"] or "",
                i["layers"],
                f["present"],
                f["deleted"],
                f["overwritten"],
                f["config"],
                "yes" if i["complete"] else "no",
            )
        )
    return _table(rows)


def _table(rows: Sequence[Sequence[object]]) -> str:
    cells = [[safe(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in cells
    )
