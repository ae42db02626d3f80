"""Property tests: whatever bytes or JSON reach a parser, it answers or raises our own error.

hypothesis drives the same entry points as the atheris harness (targets.py): the manifest,
index and config parsers, the tar header walk, the layer walk, the nested-archive openers and the
decoders. Inputs stay small, so each example is quick; "never a hang" is covered by the hostile
suite's time limits and by hypothesis' own health checks on slow examples.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "Config",
        "Layers",
        "RepoTags",
        "LayerSources",
        "manifests",
        "digest",
        "mediaType",
        "config",
        "layers",
        "rootfs",
        "diff_ids",
        "history",
        "annotations",
        "platform",
        "size",
    ]
)
shaped = st.recursive(
    st.none() | st.integers() | st.text(max_size=70) | st.just("sha256:" + "a" * 64) | st.just("../../x"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


def _doc(value: Any) -> bytes:
    return json.dumps(value).encode()


@SETTINGS
@given(st.lists(shaped | json_values, min_size=4, max_size=4))
def test_layout_parsers_answer_any_json(docs: list[Any]) -> None:
    targets.layout(b"\x00\x00".join(_doc(d) for d in docs))


@SETTINGS
@given(st.binary(max_size=2048))
def test_layout_parsers_answer_any_bytes(data: bytes) -> None:
    targets.layout(data)


def _valid_tar(names: list[str], datas: list[bytes], fmt: int) -> bytes:
    buf = io.BytesIO()
    try:
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for name, data in zip(names, datas, strict=False):
                info = tarfile.TarInfo(name or "x")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    except ValueError:  # a name ustar cannot hold (over 100 bytes, unsplittable): pax can
        return _valid_tar(names, datas, tarfile.PAX_FORMAT)
    return buf.getvalue()


tars = st.builds(
    _valid_tar,
    st.lists(st.text(min_size=1, max_size=150), min_size=1, max_size=4),
    st.lists(st.binary(max_size=700), min_size=1, max_size=4),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)


@st.composite
def mutated_tars(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(tars))
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@SETTINGS
@given(mutated_tars())
def test_layer_walk_records_damage_never_raises(data: bytes) -> None:
    targets.layer_walk(data)


@SETTINGS
@given(mutated_tars() | st.binary(max_size=4096))
def test_tar_header_walk_answers_or_gives_up(data: bytes) -> None:
    targets.tar_index(data)


magic = st.sampled_from(
    [
        b"",
        b"PK\x03\x04",
        b"\x1f\x8b\x08",
        b"BZh9",
        b"\xfd7zXZ\x00",
        b"\x28\xb5\x2f\xfd",
        b"\xa7\x0d\x0d\x0a",
        b"\xff\xfe",
        b"\x7fELF",
    ]
)


@SETTINGS
@given(magic, st.binary(max_size=4096))
def test_nested_openers_note_damage_never_raise(head: bytes, data: bytes) -> None:
    targets.nested(head + data)


@SETTINGS
@given(mutated_tars())
def test_nested_tar_openers_never_raise(data: bytes) -> None:
    targets.nested(data)


@SETTINGS
@given(
    magic, st.binary(max_size=4096) | st.text(max_size=600).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_decoders_never_raise(head: bytes, data: bytes) -> None:
    targets.decoders(head + data)
