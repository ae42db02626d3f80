"""BuildKit attestations: the in-toto statements an image index carries next to its images.

The storage format (BuildKit's ``docs/attestations/attestation-storage.md``): an image index lists,
after its runnable manifests, *attestation manifests*: descriptors annotated
``vnd.docker.reference.type: attestation-manifest`` (any other value: ignored), with
``vnd.docker.reference.digest`` naming the image manifest they describe and platform
``unknown/unknown``. Each attestation manifest is an OCI image manifest whose config is to be
ignored and whose layers are attestation blobs; a layer of media type
``application/vnd.in-toto+json`` (the only one defined; unknown ones are ignored) holds one in-toto
statement (``_type``, ``subject``, ``predicateType``, ``predicate``).

What leaks there: SLSA provenance built with ``mode=max`` records the build's parameters, among
them every ``--build-arg`` (v0.2 ``predicate.invocation.parameters.args``, v1
``predicate.buildDefinition.externalParameters.request.args``, as ``build-arg:NAME``), the
``env`` of each build step in ``buildConfig``; SBOMs name download locations and files.

Every string in the statement's ``predicate`` becomes one :class:`ImageText` with
``source: "attestation"`` and ``key`` ``"<predicateType> <path>"``, for example
``https://slsa.dev/provenance/v0.2 predicate.invocation.parameters.args.build-arg:TOKEN``, scanned
as ``NAME=value`` (``TOKEN=...``; the ``build-arg:`` prefix dropped) so that assignment rules read
it as the build did; an element of a list is scanned as it is (``env`` entries already read
``NAME=value``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from layerleak.errors import LayerleakError
from layerleak.models import SourceKind
from layerleak.sources.interface import ImageDesc, ImageText

REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
IN_TOTO = "application/vnd.in-toto+json"
PREDICATE_TYPE = "in-toto.io/predicate-type"

MAX_MANIFESTS = 64  # attestation manifests read per index
MAX_STATEMENTS = 64  # in-toto layers read per attestation manifest
MAX_STRINGS = 200_000  # strings taken from one statement
MIN_LENGTH = 6  # shorter strings cannot hold a secret worth a rule
_PREFIXES = ("build-arg:", "label:", "context:", "secret:")

Fetch = Callable[[str], bytes]


def is_attestation(desc: Any) -> bool:
    annotations = desc.get("annotations") if isinstance(desc, dict) else None
    return isinstance(annotations, dict) and annotations.get(REFERENCE_TYPE) == ATTESTATION_MANIFEST


def attach(images: list[ImageDesc], index: dict[str, Any], manifest: Fetch, blob: Fetch) -> list[ImageDesc]:
    """``images`` with the texts of the attestation manifests ``index`` lists for them. An
    attestation for an image not among ``images`` (another platform) is not read."""
    wanted = {i.manifest_digest for i in images if i.manifest_digest}
    texts: dict[str, list[ImageText]] = {}
    problems: dict[str, list[str]] = {}
    descs = [d for d in index.get("manifests") or [] if is_attestation(d)]
    for desc in descs[:MAX_MANIFESTS]:
        subject = desc["annotations"].get(REFERENCE_DIGEST)
        digest = desc.get("digest")
        if subject not in wanted or not isinstance(digest, str):
            continue
        said = problems.setdefault(subject, [])
        try:
            found = list(statement_texts(manifest(digest), blob, said))
        except LayerleakError as exc:
            said.append(f"attestation manifest {digest[:19]}: not read ({exc})")
            continue
        texts.setdefault(subject, []).extend(found)
    if len(descs) > MAX_MANIFESTS:
        for subject in wanted:
            problems.setdefault(subject, []).append(
                f"more than {MAX_MANIFESTS} attestation manifests in one index; the rest were not read"
            )
    out = []
    for image in images:
        key = image.manifest_digest or ""
        if key in texts or key in problems:
            image = dataclasses.replace(
                image,
                texts=(*image.texts, *texts.get(key, ())),
                problems=(*image.problems, *problems.get(key, ())),
            )
        out.append(image)
    return out


def statement_texts(manifest_body: bytes, blob: Fetch, problems: list[str]) -> Iterator[ImageText]:
    """The texts of every in-toto statement of one attestation manifest; a statement that cannot
    be read is a line in ``problems`` (the others are still read)."""
    from layerleak.sources.layout import verify_digest  # layout imports this module

    doc = _json(manifest_body, "attestation manifest")
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list):
        return
    for layer in layers[:MAX_STATEMENTS]:
        if not isinstance(layer, dict) or layer.get("mediaType") != IN_TOTO:
            continue  # unknown media types are ignored, as the format says
        digest = layer.get("digest")
        if not isinstance(digest, str):
            continue
        what = f"attestation {digest[:19]}"
        try:
            body = blob(digest)
            statement = _json(body, what)
        except LayerleakError as exc:
            problems.append(f"{what}: not read ({exc.message})")
            continue
        mismatch = verify_digest(body, digest, what)
        if mismatch:
            problems.append(mismatch + " (scanned all the same)")
        if isinstance(statement, dict):
            yield from predicate_texts(statement)


def predicate_texts(statement: dict[str, Any]) -> Iterator[ImageText]:
    """One text per string of the statement's predicate (in document order)."""
    kind = statement.get("predicateType")
    kind = kind if isinstance(kind, str) else "unknown-predicate"
    count = 0
    for path, name, value in _strings(statement.get("predicate"), "predicate", None):
        if len(value) < MIN_LENGTH:
            continue
        count += 1
        if count > MAX_STRINGS:
            return
        text = value if name is None else f"{_bare(name)}={value}"
        yield ImageText(SourceKind.ATTESTATION, f"{kind} {path}", text)


def _strings(value: Any, path: str, name: str | None) -> Iterator[tuple[str, str | None, str]]:
    """(path, the key that holds it or None in a list, value) of every string under ``value``,
    iteratively (a statement may nest deep)."""
    stack: list[tuple[Any, str, str | None]] = [(value, path, name)]
    while stack:
        item, where, key = stack.pop()
        if isinstance(item, str):
            yield where, key, item
        elif isinstance(item, dict):
            stack.extend((v, f"{where}.{k}", str(k)) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]", None) for i, v in reversed(list(enumerate(item))))


def _bare(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _json(body: bytes, what: str) -> Any:
    """Parsed within the image limits (size, nesting: layout.load_json), else LayerleakError."""
    from layerleak.sources.layout import load_json  # layout imports this module

    return load_json(body, what)
