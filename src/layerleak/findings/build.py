"""One image's findings, from its layers' scans, its config and its history.

Each file-borne match gets its status (present, deleted, overwritten) from the layers above it in
*this* image's stack, so a layer shared by two images is scanned once and judged for each. Config
and history texts are scanned here. Secrets are redacted unless the user asked for them, every
history step shown is scrubbed of every secret found, and the same secret in the same file across
layers becomes one finding (:mod:`~layerleak.findings.dedup`).
"""

from __future__ import annotations

import dataclasses

from layerleak.detect import knownkeys, validity
from layerleak.detect.engine import Engine
from layerleak.entries import provenance
from layerleak.entries.config import ConfigText, config_texts
from layerleak.findings.dedup import dedup
from layerleak.findings.redact import decoded_views, scrub, scrub_build_args
from layerleak.layers.history import layer_steps
from layerleak.layers.scanned import LayerScan
from layerleak.layers.status import file_status
from layerleak.models import (
    Confidence,
    Finding,
    GitOrigin,
    ImageResult,
    LayerSummary,
    Location,
    Related,
    ScanIssue,
    SourceKind,
    Status,
)
from layerleak.sources.interface import ImageDesc, ImageText, LayerRef
from layerleak.store.sealed import AnyMatch, fingerprint_of, plaintexts, redacted_of, secret_of


def assemble(
    target: str,
    image: ImageDesc,
    scans: dict[str, LayerScan],
    engine: Engine,
    show_secrets: bool,
) -> ImageResult:
    issues = [ScanIssue(message=p, fatal=False) for p in image.problems]
    issues.extend(ScanIssue(message=e) for e in image.errors)
    steps = layer_steps(image.config, len(image.layers))
    stack: list[LayerScan | None] = []
    for layer in image.layers:
        scan = scans.get(layer.key)
        if scan is not None and scan.error is None:
            issues.extend(
                ScanIssue(message=m, layer_index=layer.index, layer_digest=layer.digest)
                for m in integrity(layer, scan)
            )
        if scan is None:
            issues.append(
                ScanIssue(
                    message="layer blob is missing from the image",
                    layer_index=layer.index,
                    layer_digest=layer.digest,
                )
            )
        elif scan.error:
            issues.append(
                ScanIssue(message=scan.error, layer_index=layer.index, layer_digest=layer.digest)
            )
        if scan is not None:
            issues.extend(
                ScanIssue(
                    message=m, layer_index=layer.index, layer_digest=layer.digest, path=p, fatal=False
                )
                for p, m in scan.notes
            )
        stack.append(scan)

    raw: list[tuple[AnyMatch, Location]] = []
    key_ids: dict[int, str] = {}  # position in raw -> a private key's fingerprint (entries/pubkeys.py)
    for layer, scan in zip(image.layers, stack, strict=True):
        if scan is None:
            continue
        for hit in scan.hits:
            if hit.key_id is not None:
                key_ids[len(raw)] = hit.key_id
            status, removed = file_status(hit.path, layer.index, stack)
            raw.append(
                (
                    hit.match,
                    Location(
                        source=SourceKind.LAYER,
                        layer_index=layer.index,
                        layer_digest=layer.digest,
                        created_by=steps[layer.index],
                        path=hit.path,
                        inner_path=hit.inner_path,
                        line=hit.match.line,
                        status=status,
                        removed_in_layer=removed,
                        git=GitOrigin(*hit.git) if hit.git else None,
                    ),
                )
            )
    texts: list[ConfigText | ImageText] = [*config_texts(image.config), *image.texts]  # + annotations ...
    for item in texts:
        for config_match in engine.scan(item.text.encode("utf-8", "surrogateescape")):
            raw.append(
                (
                    config_match,
                    Location(
                        source=item.source,
                        key=item.key,
                        created_by=item.text if item.source is SourceKind.HISTORY else None,
                        line=None,
                    ),
                )
            )

    # A cached layer's matches are sealed: their plaintext is found again in the step texts.
    step_texts = list(dict.fromkeys([*steps, *(loc.created_by for _, loc in raw)]))  # each text once
    secrets = plaintexts((m for m, _ in raw), [*step_texts, *decoded_views(step_texts)])
    scrubbed = _Scrubber(secrets)
    vendor = provenance.vendored(
        (layer.index, scan.packages, scan.digests)
        for layer, scan in zip(image.layers, stack, strict=True)
        if scan is not None
    )
    public = related_places(image, stack, set(key_ids.values()))
    findings = []
    for n, (match, loc) in enumerate(raw):
        rule = engine.rule(match.rule_id)
        if not show_secrets:
            loc = _scrubbed(loc, scrubbed)
        findings.append(
            Finding(
                rule_id=rule.id,
                title=rule.title,
                severity=rule.severity,
                confidence=Confidence.LOW if (loc.layer_index, loc.path) in vendor else match.confidence,
                target=target,
                image=image.name,
                image_id=image.image_id,
                location=loc,
                fingerprint=fingerprint_of(match),
                redacted=redacted_of(match),
                secret=secret_of(match) if show_secrets else None,
                reason=_reason(match.reason, (loc.layer_index, loc.path) in vendor),
                related=public.get(key_ids[n], ()) if n in key_ids else (),
                validity=match.validity,
            )
        )
    findings = dedup(findings)
    findings.sort(key=_order)
    if any(_checked_key(f) for f in findings) and knownkeys.blocklist_missing():
        issues.append(ScanIssue(message=knownkeys.MISSING, fatal=False, notice=True))
    summaries = []
    for layer, scan in zip(image.layers, stack, strict=True):
        step = steps[layer.index]
        summaries.append(
            LayerSummary(
                index=layer.index,
                digest=layer.digest,
                blob_digest=layer.blob_digest,
                media_type=layer.media_type,
                created_by=step if show_secrets else scrubbed(step),
                bytes_scanned=scan.bytes_read if scan else 0,
                files_scanned=scan.files_scanned if scan else 0,
            )
        )
    return ImageResult(
        target=target,
        image=image.name,
        image_id=image.image_id,
        platform=image.platform,
        layers=tuple(summaries),
        bytes_scanned=sum(s.bytes_scanned for s in summaries),
        # an error or warning quotes what a parser met: a secret of this image never shows there
        errors=tuple(issues if show_secrets else (_scrubbed_issue(i, scrubbed.secrets) for i in issues)),
        findings=tuple(findings),
    )


def _checked_key(finding: Finding) -> bool:
    """Was this finding a private key that badkeys looked at (detect/knownkeys.py)?"""
    return finding.validity is not None and any(k == "fingerprint" for k, _ in finding.validity.detail)


def _reason(reason: str | None, vendor: bool) -> str | None:
    """A vendor file's finding says ``vendor``, unless its key is a known public one (more precise)."""
    return provenance.VENDOR if vendor and reason != validity.KNOWN_PUBLIC_REASON else reason


def related_places(
    image: ImageDesc, stack: list[LayerScan | None], wanted: set[str]
) -> dict[str, tuple[Related, ...]]:
    """Key fingerprint -> the certificates and public keys in this image's layers that carry it,
    for the private keys found (``wanted``)."""
    out: dict[str, list[Related]] = {}
    if not wanted:
        return {}
    for layer, scan in zip(image.layers, stack, strict=True):
        keys = scan.public_keys if scan is not None else {}
        for fp in wanted & set(keys):
            for path, kind, detail in keys[fp]:
                out.setdefault(fp, []).append(Related(kind, fp, layer.index, path, detail))
    return {fp: tuple(dict.fromkeys(places)) for fp, places in out.items()}


def integrity(layer: LayerRef, scan: LayerScan) -> list[str]:
    """What is wrong with a layer's bytes: not the diff_id the config lists for it, or not the
    blob digest the manifest names. Only sha256 claims are checked (what the walk hashes)."""
    problems = []
    claimed = layer.diff_id
    if claimed and claimed.startswith("sha256:") and scan.diff_id and scan.diff_id != claimed:
        problems.append(
            f"layer content does not match its diff_id: the config says {claimed}, "
            f"the content is {scan.diff_id}"
        )
    blob = layer.blob_digest
    if blob and blob.startswith("sha256:") and scan.blob_sha256 and scan.blob_sha256 != blob:
        problems.append(f"layer blob does not match its digest: expected {blob}, it is {scan.blob_sha256}")
    return problems


class _Scrubber:
    """scrub + scrub_build_args, once per distinct text: a layer's step is shared by all of its
    findings, so 100,000 secrets in one file cost one pass over the step, not 100,000."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.memo: dict[str, str | None] = {}

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        done = self.memo.get(text)
        if done is None and text not in self.memo:
            done = self.memo[text] = scrub_build_args(scrub(text, self.secrets))
        return done


def _scrubbed_issue(issue: ScanIssue, secrets: list[str]) -> ScanIssue:
    message = scrub(issue.message, secrets)
    if message is None or message == issue.message:
        return issue
    return dataclasses.replace(issue, message=message)


def _scrubbed(loc: Location, scrubbed: _Scrubber) -> Location:
    if loc.created_by is None:
        return loc
    return dataclasses.replace(loc, created_by=scrubbed(loc.created_by))


_SOURCE_ORDER = {
    SourceKind.LAYER: 0,
    SourceKind.CONFIG: 1,
    SourceKind.HISTORY: 2,
    SourceKind.ANNOTATION: 3,
    SourceKind.ATTESTATION: 4,
}
_STATUS_ORDER = {Status.PRESENT: 0, Status.DELETED: 1, Status.OVERWRITTEN: 2, None: 3}


def _order(f: Finding) -> tuple[int, int, int, str, int, str]:
    loc = f.location
    step = -1  # history entries in build order: history[9] before history[10]
    if loc.source is SourceKind.HISTORY and loc.key and loc.key.startswith("history["):
        digits = loc.key[len("history[") :].split("]", 1)[0]
        step = int(digits) if digits.isdigit() else -1
    return (
        _SOURCE_ORDER[loc.source],
        loc.layer_index if loc.layer_index is not None else -1,
        step,
        loc.path or loc.key or "",
        loc.line or 0,
        f.rule_id,
    )
