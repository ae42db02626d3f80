"""``--format html``: one self-contained page a responder can open anywhere, offline.

Inline CSS and JS only, and a Content-Security-Policy that forbids every network request, so the
page cannot load or send anything. Findings are grouped by image and layer, with status badges,
each layer's build step and a timeline of the image's layers; checkboxes filter by severity and
status. Every text is HTML-escaped (it comes from the image). Secrets are redacted unless the
report was made with ``--show-secrets``.
"""

from __future__ import annotations

from collections import Counter
from html import escape as _html

from layerleak import __version__
from layerleak.models import Finding, ImageResult, ScanReport, Severity, SourceKind, Status
from layerleak.report.escape import escape
from layerleak.report.interface import Renderer, RenderOptions
from layerleak.report.table import GROUP_TITLES, GROUPS, fate, human_size, step_text, summary_lines, where

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "connect-src 'none'; form-action 'none'; base-uri 'none'")

STYLE = """
:root{--bg:#fff;--fg:#1d1d1f;--muted:#666;--line:#ddd;--critical:#7a0019;--high:#d1242f;
--medium:#b36b00;--low:#1f6feb;--info:#6e7781;--present:#d1242f;--deleted:#8250df;--overwritten:#8250df;
--config:#0a7d5a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:#f6f8fa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 6px}h3{font-size:14px;margin:16px 0 6px}
main{padding:0 24px 24px}.muted{color:var(--muted)}
code,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
.summary{margin:8px 0 0;font-weight:600}.rotate{color:var(--high);font-weight:600}
.filters{margin-top:10px;display:flex;gap:18px;flex-wrap:wrap}
.filters label{margin-right:8px;white-space:nowrap}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11.5px;font-weight:700;color:#fff;
text-transform:uppercase;letter-spacing:.02em}
.sev-critical{background:var(--critical)}.sev-high{background:var(--high)}.sev-medium{background:var(--medium)}
.sev-low{background:var(--low)}.sev-info{background:var(--info)}
.st-present{background:var(--present)}.st-deleted{background:var(--deleted)}
.st-overwritten{background:var(--overwritten)}.st-config,.st-history{background:var(--config)}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{font-size:12px;color:var(--muted);font-weight:600}
.timeline{display:flex;flex-direction:column;gap:2px;margin:6px 0 10px;border-left:3px solid var(--line);
padding-left:10px}.tl{display:flex;gap:10px;align-items:baseline}.tl .idx{width:56px;font-weight:700}
.tl .dot{width:10px;height:10px;border-radius:50%;background:var(--line);display:inline-block}
.tl.hit .dot{background:var(--high)}.step{color:var(--muted)}.error{color:var(--high)}
.secret{background:#fff8c5;padding:0 3px;border-radius:3px}.badge{white-space:nowrap}
.tl>span{flex-shrink:0;white-space:nowrap}.tl>.step{flex-shrink:1;white-space:normal}tr.hidden,section.hidden{display:none}
"""

SCRIPT = """
(function(){
  function apply(){
    var on={};
    document.querySelectorAll('input[data-filter]').forEach(function(box){
      on[box.getAttribute('data-filter')+':'+box.value]=box.checked;});
    var shown=0;
    document.querySelectorAll('tr.finding').forEach(function(row){
      var ok=on['severity:'+row.getAttribute('data-severity')]!==false&&
             on['status:'+row.getAttribute('data-status')]!==false;
      row.classList.toggle('hidden',!ok); if(ok){shown++;}});
    document.querySelectorAll('section.group').forEach(function(sec){
      sec.classList.toggle('hidden',!sec.querySelector('tr.finding:not(.hidden)'));});
    var count=document.getElementById('shown'); if(count){count.textContent=String(shown);}
  }
  // A view can be shared as a link: report.html#severity=critical,high&status=deleted
  var wanted={};
  location.hash.replace(/^#/,'').split('&').forEach(function(part){
    var kv=part.split('='); if(kv.length===2&&kv[1]){wanted[kv[0]]=kv[1].split(',');}});
  document.querySelectorAll('input[data-filter]').forEach(function(box){
    var list=wanted[box.getAttribute('data-filter')];
    if(list){box.checked=list.indexOf(box.value)>=0;}
    box.addEventListener('change',apply);});
  apply();
})();
"""

_SEVERITIES = [str(s) for s in sorted(Severity, reverse=True)]
_STATUSES = ["present", "deleted", "overwritten", "config", "history"]


def _e(text: object) -> str:
    """HTML-escaped, control characters shown as text (``\\x1b``): image text is hostile."""
    return _html(escape(str(text)), quote=True)


def status_of(f: Finding) -> str:
    loc = f.location
    if loc.status is not None:
        return str(loc.status)
    return {SourceKind.CONFIG: "config", SourceKind.ANNOTATION: "annotation",
            SourceKind.ATTESTATION: "attestation"}.get(loc.source, "history")


def _finding_row(f: Finding, shown: bool) -> str:
    sev, status = str(f.severity), status_of(f)
    value = f.secret if shown and f.secret is not None else f.redacted
    badge = fate(f) or status
    extra = ""
    if f.other_locations:
        also = ", ".join(f"layer {x.layer_index}" for x in f.other_locations)
        extra += f'<div class="muted">also in {_e(also)}</div>'
    if f.location.source is SourceKind.HISTORY and f.location.created_by:
        extra += f'<div class="step mono">{_e(step_text(f.location.created_by))}</div>'
    if str(f.confidence) != "high":
        why = _e(", " + f.reason) if f.reason else ""
        extra += f'<div class="muted">{_e(f.confidence)} confidence{why}</div>'
    return (
        f'<tr class="finding" data-severity="{_e(sev)}" data-status="{_e(status)}">'
        f'<td><span class="badge sev-{_e(sev)}">{_e(sev)}</span></td>'
        f'<td><span class="badge st-{_e(status)}">{_e(badge)}</span></td>'
        f'<td><div>{_e(f.title)} <span class="muted mono">{_e(f.rule_id)}</span></div>'
        f'<div class="mono">{_e(where(f))}</div>{extra}</td>'
        f'<td class="mono"><span class="secret">{_e(value.splitlines()[0] if value else "")}</span>'
        f'<div class="muted">{_e(f.fingerprint[:16])}</div></td></tr>'
    )


def _table(findings: list[Finding], shown: bool) -> str:
    rows = "".join(_finding_row(f, shown) for f in findings)
    return ("<table><thead><tr><th>Severity</th><th>Status</th><th>Finding</th><th>Secret</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _timeline(image: ImageResult) -> str:
    per_layer: dict[int, Counter[str]] = {}
    for f in image.findings:
        for loc in (f.location, *f.other_locations):
            if loc.layer_index is not None:
                per_layer.setdefault(loc.layer_index, Counter())[str(loc.status or Status.PRESENT)] += 1
    items = []
    for layer in image.layers:
        counts = per_layer.get(layer.index, Counter())
        badges = "".join(f'<span class="badge st-{_e(k)}">{counts[k]} {_e(k)}</span> ' for k in
                         ("present", "deleted", "overwritten") if counts.get(k))
        step = _e(step_text(layer.created_by)) if layer.created_by else "(no history)"
        items.append(
            f'<div class="tl{" hit" if counts else ""}"><span class="dot"></span>'
            f'<span class="idx">layer {layer.index}</span>'
            f'<span class="mono muted">{_e(layer.digest[:19])}</span>'
            f'<span class="muted">{_e(human_size(layer.bytes_scanned))}</span>{badges}'
            f'<span class="step mono">{step}</span></div>'
        )
    return f'<div class="timeline">{"".join(items)}</div>'


def _image(image: ImageResult, shown: bool) -> str:
    name = image.image if image.image is not None else "(layers of no known image)"
    meta = " · ".join(_e(m) for m in (image.image_id, image.platform) if m)
    parts = [f"<h2>{_e(name)}</h2>",
             f'<div class="muted mono">{meta} · {len(image.layers)} layers · '
             f"{_e(human_size(image.bytes_scanned))} scanned · {len(image.findings)} findings"
             + (f" · {image.baselined} baselined" if image.baselined else "")
             + (f" · {image.ignored} ignored" if image.ignored else "")
             + (f" · {image.hidden_findings} below --min-confidence" if image.hidden_findings else "")
             + "</div>"]
    for err in image.errors:
        at = f"layer {err.layer_index}: " if err.layer_index is not None else ""
        mark = "error" if err.fatal else "warning"
        parts.append(f'<div class="error">{mark}: {_e(at)}{_e(err.message)}</div>')
    parts.append("<h3>Layers</h3>" + _timeline(image))
    groups: dict[tuple[int, int], list[Finding]] = {}
    for f in image.findings:
        order = GROUPS[f.location.source]
        groups.setdefault((order, f.location.layer_index if f.location.layer_index is not None else -1),
                          []).append(f)
    for (order, index), found in sorted(groups.items()):
        if order == 0:
            layer = image.layers[index]
            made = _e(step_text(layer.created_by)) if layer.created_by else ""
            step = f' <span class="step mono">{made}</span>' if made else ""
            title = f'Layer {index} <span class="muted mono">{_e(layer.digest[:19])}</span>{step}'
        else:
            title = GROUP_TITLES[order]
        parts.append(f'<section class="group"><h3>{title}</h3>{_table(found, shown)}</section>')
    return f'<section class="image">{"".join(parts)}</section>'


def _filters() -> str:
    sev = "".join(f'<label><input type="checkbox" data-filter="severity" value="{s}" checked> {s}</label>'
                  for s in _SEVERITIES)
    st = "".join(f'<label><input type="checkbox" data-filter="status" value="{s}" checked> {s}</label>'
                 for s in _STATUSES)
    return (f'<div class="filters"><div><b>Severity</b> {sev}</div><div><b>Status</b> {st}</div>'
            '<div><span id="shown"></span> shown</div></div>')


def render_html(report: ScanReport) -> str:
    shown = report.secrets_shown
    summary = summary_lines(report)
    body = []
    for target in report.targets:
        if target.error:
            body.append(f'<section class="image"><h2>{_e(target.target)}</h2>'
                        f'<div class="error">{_e(target.error)}</div></section>')
        body.extend(_image(image, shown) for image in target.images)
    head_lines = "".join(
        f'<div class="{"summary" if i == 0 else ("rotate" if line.startswith("Rotate") else "muted")}">'
        f"{_e(line)}</div>" for i, line in enumerate(summary)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>layerleak report</title><style>{STYLE}</style></head><body>"
        f'<header><h1>layerleak report</h1><div class="muted mono">layerleak {_e(__version__)} · ruleset '
        f'{_e(report.ruleset)}{" · SECRETS SHOWN" if shown else ""}</div>{head_lines}{_filters()}</header>'
        f'<main>{"".join(body)}</main><script>{SCRIPT}</script></body></html>\n'
    )


class HtmlRenderer(Renderer):
    name = "html"
    extension = "html"
    media_type = "text/html"

    def render(self, report: ScanReport, options: RenderOptions) -> str:
        return render_html(report)
