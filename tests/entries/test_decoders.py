"""Decoders and the classifier: tables of (input, expected), and decoded views scanned for real."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import py_compile
import tarfile
import zipfile
from pathlib import Path

import plant
import pytest
import zstandard

from layerleak.detect import classify
from layerleak.detect.engine import CHUNK_SIZE, Engine
from layerleak.detect.rules import load_rules
from layerleak.entries.decoders import decode_base64, pyc_strings, scan_leaf
from layerleak.entries.limits import Budget, Limits


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules(()))


def _b64(data: bytes, urlsafe: bool = False) -> bytes:
    return base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)


@pytest.mark.parametrize(
    ("run", "decoded"),
    [
        (_b64(b"deployer:hunter2-but-longer"), b"deployer:hunter2-but-longer"),
        (_b64(b"deployer:hunter2-but-longer").rstrip(b"="), b"deployer:hunter2-but-longer"),
        (_b64(b'{"a": "b?>>>~~~"}', urlsafe=True), b'{"a": "b?>>>~~~"}'),
        (_b64(bytes(range(256))[:48]), None),  # binary
        (_b64(b"short:pw"), None),  # fewer than 12 bytes
        (b"usr/lib/x86_64-linux-gnu/libc.so", None),  # two alphabets: a path
        (b"abcdefghijklmnopqrstu", None),  # 21 characters: not a base64 length
        (b"ThisIsJustAnIdentifierName", None),  # decodes to bytes that are not text
    ],
)
def test_decode_base64(run: bytes, decoded: bytes | None) -> None:
    assert decode_base64(run) == decoded


def _utf16_no_bom(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


@pytest.mark.parametrize(
    ("head", "encoding"),
    [
        (b"\xff\xfe" + "[a]\r\nkey=value\r\n".encode("utf-16-le"), "utf-16-le"),
        (b"\xfe\xff" + "[a]\r\nkey=value\r\n".encode("utf-16-be"), "utf-16-be"),
        ("<?xml version='1.0'?>\r\n<config/>".encode("utf-16-le"), "utf-16-le"),
        ("<?xml version='1.0'?>\r\n<config/>".encode("utf-16-be"), "utf-16-be"),
        (b"\xff\xfe\x00\x00" + "utf-32 text".encode("utf-32-le"), None),
        (b"plain ascii text, long enough to be sampled by the classifier\n", None),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56, None),
    ],
)
def test_text_encoding(head: bytes, encoding: str | None) -> None:
    assert classify.text_encoding(head) == encoding


def _tar(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("x")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(b"x"), classify.GZIP),
        (bz2.compress(b"x"), classify.BZIP2),
        (lzma.compress(b"x"), classify.XZ),
        (zstandard.ZstdCompressor().compress(b"x"), classify.ZSTD),
        (_zip(b"x"), classify.ZIP),
        (_tar(b"x"), classify.TAR),
        (b"BZh is how this text file starts\n", None),
        (b"PK is also a fine start for a text file\n", None),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 32, None),
    ],
)
def test_container_kind(data: bytes, kind: str | None) -> None:
    assert classify.container_kind(data[: classify.HEAD]) == kind


def _leaf(
    engine: Engine, data: bytes, limits: Limits | None = None
) -> tuple[list[tuple[str | None, str, str, int]], list[str]]:
    budget = Budget(limits=limits or Limits())
    stream = io.BytesIO(data)
    first = stream.read(CHUNK_SIZE)
    hits = [
        (marker, m.rule_id, m.secret, m.line) for marker, m in scan_leaf(engine, "/f", first, stream, budget)
    ]
    return hits, budget.notes


def test_utf16_be_without_bom_keeps_line_numbers(engine: Engine) -> None:
    token = plant.github_pat_classic()
    text = "line one\r\nline two\r\n" * 20 + f"token = {token}\r\n"
    hits, _ = _leaf(engine, text.encode("utf-16-be"))
    assert ("[utf-16]", "github-pat-classic", token, 41) in hits


def test_base64_split_across_the_chunk_boundary(engine: Engine) -> None:
    token = plant.github_pat_classic()
    value = _b64(f"ci:{token}".encode())
    filler = b"x = 1\n"
    lines = (CHUNK_SIZE - 10) // len(filler)
    data = filler * lines + b"auth: " + value + b"\nend\n"
    assert len(filler) * lines < CHUNK_SIZE < len(filler) * lines + 6 + len(value)
    hits, _ = _leaf(engine, data)
    assert ("[base64]", "github-pat-classic", token, lines + 1) in hits


def test_base64_inside_base64(engine: Engine) -> None:
    token = plant.github_pat_classic()
    inner = _b64(f"u:{token}".encode()).decode()
    outer = _b64(f'{{"auths": {{"r": {{"auth": "{inner}"}}}}}}'.encode())
    hits, _ = _leaf(engine, b"kind: Secret\ndata:\n  .dockerconfigjson: " + outer + b"\n")
    assert ("[base64]!/[base64]", "github-pat-classic", token, 3) in hits


def test_decoded_value_limit_is_noted(engine: Engine) -> None:
    values = b"".join(b"v: " + _b64(f"value number {i:04}".encode()) + b"\n" for i in range(30))
    _, notes = _leaf(engine, values, Limits(max_decoded=10))
    assert notes == ["more than 10 base64 values; the rest were not decoded"]


def test_pyc_strings_come_out_whole(engine: Engine, tmp_path: Path) -> None:
    """A 56-character Slack token is marshalled as ``z8xoxb-...``: its length byte ('8') glues
    onto it and breaks the rule's word boundary, so a raw scan misses it. The decoder cuts each
    constant out on its own line."""
    token = plant.slack_bot_token()
    assert len(token) == ord("8")
    src = tmp_path / "m.py"
    src.write_text(f'"""Doc."""\nDEBUG = False\nA = "{token}"\nB = 1\n')
    out = tmp_path / "m.pyc"
    py_compile.compile(str(src), cfile=str(out), doraise=True)
    data = out.read_bytes()
    at = data.index(token.encode())
    assert data[at - 1 : at] == b"8"
    assert [m for m in engine.scan(data) if m.rule_id == "slack-bot-token"] == []
    header = classify.pyc_header(data[: classify.HEAD])
    assert header == 16
    strings = pyc_strings(data, header)
    assert token.encode() in strings
    hits, _ = _leaf(engine, data)
    assert ("[strings]", "slack-bot-token", token, strings.index(token.encode()) + 1) in hits


def test_pyc_header_rejects_text(engine: Engine) -> None:
    assert classify.pyc_header(b"ab\r\ncd" + b"\0" * 40) is None


def test_base64_values_side_by_side_are_both_decoded(engine: Engine) -> None:
    a, b = plant.github_pat_classic(), plant.github_pat_classic()
    line = b"auths: " + _b64(f"x:{a}".encode()) + b" " + _b64(f"y:{b}".encode()) + b"\n"
    hits, _ = _leaf(engine, line)
    found = {
        secret for marker, rule, secret, _ in hits if marker == "[base64]" and rule == "github-pat-classic"
    }
    assert found == {a, b}


def test_identifiers_are_not_decoded(engine: Engine) -> None:
    text = b"def assertRaisesRegexFromTheLongestNamedHelperFunction(self): pass\n" * 100
    budget = Budget()
    assert list(scan_leaf(engine, "/m.py", text, io.BytesIO(b""), budget)) == []
    assert budget.decoded == 0
