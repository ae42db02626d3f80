"""Decoders and the classifier: tables of (input, expected), and decoded views scanned for real."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import py_compile
import random
import re
import sysconfig
import tarfile
import warnings
import zipfile
from pathlib import Path

import plant
import pytest
import zstandard

from layerleak.detect import classify
from layerleak.detect.engine import CHUNK_SIZE, Engine
from layerleak.detect.rules import load_rules
from layerleak.entries.decoders import (
    MIN_PYC_STRING,
    _pyc_strings_marked,
    decode_base64,
    pyc_strings,
    scan_leaf,
)
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
    onto it (a raw scan missed it before prefixed tokens matched packed values). The decoder cuts
    each constant out on its own line."""
    token = plant.slack_bot_token()
    assert len(token) == ord("8")
    src = tmp_path / "m.py"
    src.write_text(f'"""Doc."""\nDEBUG = False\nA = "{token}"\nB = 1\n')
    out = tmp_path / "m.pyc"
    py_compile.compile(str(src), cfile=str(out), doraise=True)
    data = out.read_bytes()
    at = data.index(token.encode())
    assert data[at - 1 : at] == b"8"
    # Distinct prefixes now match packed against the byte before them (signatures: no \b on the
    # left), so even the raw bytes give the token whole; the decoder must still cut it out.
    assert [m.secret for m in engine.scan(data) if m.rule_id == "slack-bot-token"] == [token]
    header = classify.pyc_header(data[: classify.HEAD])
    assert header == 16
    strings = pyc_strings(data, header)
    assert token.encode() in strings
    hits, _ = _leaf(engine, data)
    assert ("[strings]", "slack-bot-token", token, strings.index(token.encode()) + 1) in hits


# --- pyc_strings against the plain walk it replaced --------------------------------------------

_REF_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"
_REF_RECORD = re.compile(
    rb"[zZ\xfa\xda][\x08-\xff]|[aAuts\xe1\xc1\xf5\xf4\xf3][\x00-\xff]{3}\x00", re.DOTALL
)


def _reference_pyc_strings(data: bytes, header: int) -> list[bytes]:
    """The original pyc_strings: one regex search per candidate record, each checked in Python."""
    out: list[bytes] = []
    n, pos = len(data), header
    while (m := _REF_RECORD.search(data, pos)) is not None and (i := m.start()) < n - 1:
        if data[i] & 0x7F in (ord("z"), ord("Z")):
            size, start = data[i + 1], i + 2
        else:
            size, start = int.from_bytes(data[i + 1 : i + 5], "little"), i + 5
        value = data[start : start + size]
        if size >= MIN_PYC_STRING and len(value) == size and _reference_is_text(value):
            out.append(value.replace(b"\n", b" "))
            pos = start + size
        else:
            pos = i + 1
    return out


def _reference_is_text(value: bytes) -> bool:
    if value.isascii():
        return not value.translate(None, _REF_PRINTABLE)
    try:
        return value.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


def _assert_same_strings(data: bytes, header: int, segments: tuple[int, ...] = ()) -> None:
    expected = _reference_pyc_strings(data, header)
    assert pyc_strings(data, header) == expected
    assert _pyc_strings_marked(data, header) == expected  # also below the size pyc_strings uses it at
    for segment in segments:
        assert _pyc_strings_marked(data, header, segment) == expected, segment


@pytest.fixture(scope="module")
def stdlib_pycs(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """About 250 stdlib modules of the running Python, compiled now."""
    root = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    out_dir = tmp_path_factory.mktemp("pyc")
    pycs = []
    for k, src in enumerate(sources[:: max(1, len(sources) // 250)]):
        out = out_dir / f"{k}.pyc"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in old test modules
                py_compile.compile(str(src), cfile=str(out), doraise=True)
        except py_compile.PyCompileError:
            continue  # lib2to3 test data and the like: not Python 3
        pycs.append(out.read_bytes())
    assert len(pycs) > 200
    return pycs


def test_pyc_strings_match_the_plain_walk_on_stdlib_modules(stdlib_pycs: list[bytes]) -> None:
    sizes = []
    for data in stdlib_pycs:
        header = classify.pyc_header(data[: classify.HEAD])
        assert header is not None
        _assert_same_strings(data, header, segments=(4096,) if len(data) > 20_000 else ())
        sizes.append(len(data))
    assert min(sizes) < 1024 < max(sizes)  # both ways of walking were taken


def test_pyc_strings_match_the_plain_walk_across_a_segment_boundary(stdlib_pycs: list[bytes]) -> None:
    """Over 1 MiB: records on both sides of (and across) the default segment boundaries."""
    rng = random.Random(7)
    parts = [b"\0" * 16]
    while sum(map(len, parts)) < (1 << 20) + 300_000:
        parts.append(rng.choice(stdlib_pycs)[16:])
        parts.append(_adversarial(rng, rng.randrange(0, 300)))
    data = b"".join(parts)
    _assert_same_strings(data, 16)
    _assert_same_strings(data[: (1 << 20) + 5], 16)  # a record cut by the end of the data


_TEXT_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/=+'\"{}"
_UNICODE = ["é", "Ünïcödé", "日本語", "\U0001f600", "\u00a0", "\u2028", "\u200b", "ß" * 9, "Ω\n", "ü\t"]
_BAD_UTF8 = [b"\xff", b"\x80", b"\xc0\xaf", b"\xe6\x97", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3"]
_SHORT_CODES = b"zZ\xfa\xda"
_LONG_CODES = b"aAuts\xe1\xc1\xf5\xf4\xf3"


def _content(rng: random.Random, size: int) -> bytes:
    """``size`` bytes of one kind: printable text, text with \\n \\t \\r, UTF-8, broken UTF-8,
    control bytes, random bytes."""
    kind = rng.randrange(7)
    if kind <= 1:
        out = bytes(rng.choice(_TEXT_BYTES) for _ in range(size))
        if kind == 1 and size:
            at = rng.randrange(size)
            out = out[:at] + rng.choice([b"\n", b"\t", b"\r", b"\r\n"]) + out[at + 1 :]
    elif kind == 2:
        out = b""
        while len(out) < size:
            out += rng.choice(_UNICODE).encode() + bytes(rng.choice(_TEXT_BYTES) for _ in range(3))
    elif kind == 3:
        out = bytes(rng.choice(_TEXT_BYTES) for _ in range(size))
        at = rng.randrange(size + 1)
        out = out[:at] + rng.choice(_BAD_UTF8) + out[at:]
    elif kind == 4:
        out = bytes(rng.choice(_TEXT_BYTES + bytes([0, 1, 7, 8, 11, 12, 27, 31, 127])) for _ in range(size))
    else:
        out = rng.randbytes(size)
    return out[: size + rng.choice([0, 0, 0, 1, 3])]  # now and then the content runs long


def _record(rng: random.Random) -> bytes:
    """A string record, often a broken one: short content, a wrong length, a length past the end."""
    size = rng.choice([0, 1, 7, 8, 9, 10, 13, 31, 32, 64, 127, 128, 200, 255, 300, 1000])
    content = _content(rng, size)
    if rng.random() < 0.2:
        content = content[: rng.randrange(len(content) + 1)]
    if rng.random() < 0.5:
        return bytes([rng.choice(_SHORT_CODES), min(size, 255)]) + content
    length = size if rng.random() < 0.8 else rng.choice([1 << 20, 1 << 24, (1 << 32) - 1, size + (1 << 24)])
    return bytes([rng.choice(_LONG_CODES)]) + length.to_bytes(4, "little") + content


def _adversarial(rng: random.Random, size: int) -> bytes:
    parts: list[bytes] = []
    while sum(map(len, parts)) < size:
        pick = rng.randrange(6)
        if pick <= 2:
            parts.append(_record(rng))
        elif pick == 3:
            parts.append(_content(rng, rng.randrange(40)))
        elif pick == 4:
            parts.append(rng.choice([b"\0", b"\xe3", b")", b"r", b"N", b"\xe9\x01\x00\x00\x00"]))
        else:
            parts.append(rng.choice(_SHORT_CODES + _LONG_CODES).to_bytes(1, "little") * rng.randrange(1, 5))
    data = b"".join(parts)
    if rng.random() < 0.3:  # a record cut short by the end of the data
        data += _record(rng)[: rng.randrange(1, 6)]
    return data


def test_pyc_strings_match_the_plain_walk_on_adversarial_bytes() -> None:
    rng = random.Random(20240611)
    for _ in range(400):
        data = _adversarial(rng, rng.choice([0, 5, 20, 100, 500, 1023, 1024, 3000, 20_000]))
        header = rng.choice([0, 0, 8, 12, 16, len(data), len(data) + 5])
        segments = (1, 13) if len(data) < 200 else (61,) if len(data) < 3000 else (997,)
        _assert_same_strings(data, header, segments)


def test_pyc_strings_match_the_plain_walk_on_random_bytes() -> None:
    rng = random.Random(99)
    alphabets = [bytes(range(256)), _TEXT_BYTES + _SHORT_CODES + _LONG_CODES + b"\0\x08\n\x80\xc3\xa9"]
    for _ in range(200):
        alphabet = rng.choice(alphabets)
        data = bytes(rng.choice(alphabet) for _ in range(rng.choice([10, 100, 1500, 6000])))
        _assert_same_strings(data, rng.choice([0, 16]), segments=(64,))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"z",
        b"z\x08",
        b"z\x08abcdefg",  # one byte short
        b"z\x08abcdefgh",  # fits exactly
        b"Z\x09abcdefgh",
        b"t\x08\x00\x00",  # the length's high byte is missing
        b"t\x08\x00\x00\x00abcdefgh",
        b"t\x08\x00\x00\x01abcdefgh",  # a length of 16 MiB or more: not a record
        b"t\xff\xff\xff\x00" + b"a" * 100,  # a length past the end
        b"\xf4\x09\x00\x00\x00abcdefgh\n",
        b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        b"z\x0bline\none\ttwo",  # ASCII: \n and \t are text, and \n comes out as a space
        b"z\x0c\xc3\xa9t\xc3\xa9\nabcde",  # not ASCII: str.isprintable() rejects \n
        b"z\x0b\xc3\xa9t\xc3\xa9 abcde",
        b"z\x0a\xc3\xa9t\xc3\xa9 abc\xc3",  # broken UTF-8
        b"z\x0a\x01bcdefghijk" + b"z\x08abcdefgh",  # a control byte: the next record is taken
        b"z\x10abz\x08cdefghijklmn",  # a record inside a record is not taken on its own
        b"z\x20abz\x08cdefghijklmn\x00",  # ... unless the outer one fails
        b"a\x08\x00\x00\x00abcdefg\x7f" + b"z\x09abcdefghi",
        b"s" + (70_000).to_bytes(4, "little") + b"long text " * 7_000,  # all three length bytes
    ],
)
def test_pyc_strings_match_the_plain_walk_at_the_edges(body: bytes) -> None:
    for pad in (b"", b"\x00" * 16, b"\xe3" * 1100):  # 1100: over the size where numpy takes over
        for at, data in ((len(pad), pad + body), (0, body + pad)):
            for header in (0, 1, 16, len(pad)):
                if len(data) < 100:
                    segments: tuple[int, ...] = (1, 2, 3, 16)
                else:  # segment boundaries in and around the body
                    segments = tuple(s for d in (-2, 0, 1, 5, 11) if (s := at + d - header) >= 5)
                _assert_same_strings(data, header, segments)


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


# --- the value decoders beyond base64 -----------------------------------------------------------


def _markers(hits: list[tuple[str | None, str, str, int]], rule: str, secret: str) -> list[str | None]:
    return [marker for marker, r, s, _ in hits if r == rule and s == secret]


def test_the_decoders_are_one_ordered_table() -> None:
    from layerleak.entries import decoders

    assert [d.marker for d in decoders.DECODERS] == ["[base64]", "[hex]", "[percent]", "[json-escape]"]
    assert [v.__name__ for v in decoders.VIEWS] == ["_utf16_view", "_pyc_view", "_binary_view", "_text_view"]


def test_hex_of_text(engine: Engine) -> None:
    token = plant.github_pat_classic()
    hits, _ = _leaf(engine, b"x = 1\nblob: " + f"token={token}".encode().hex().encode() + b"\n")
    assert _markers(hits, "github-pat-classic", token) == ["[hex]"]
    assert hits[0][3] == 2


@pytest.mark.parametrize("digest", ["ab" * 32, "0123456789abcdef" * 4, "DEADBEEF" * 8])
def test_hex_digests_are_not_decoded(digest: str) -> None:
    from layerleak.entries.decoders import _runs

    assert list(_runs(f"sha256: {digest}\n".encode())) == []


def test_percent_encoded_url_credentials(engine: Engine) -> None:
    password = plant.generic_password()
    encoded = f"https%3A%2F%2Fdeploy%3A{password}%40db.internal%2Fapp".encode()
    hits, _ = _leaf(engine, b"GET /login?next=" + encoded + b" HTTP/1.1\n")
    assert "[percent]" in [marker for marker, _, secret, _ in hits if secret == password]


def test_percent_encoded_placeholder_is_no_finding(engine: Engine) -> None:
    """``password=${VAR}`` URL-encoded is a template, not a secret, once decoded as well."""
    hits, _ = _leaf(engine, b"url: https://h/x?q=password%3D%24%7BDB_PASSWORD%7D%26user%3Dadmin\n")
    assert hits == []


def test_json_escape_inside_a_token(engine: Engine) -> None:
    token = plant.github_pat_classic()
    escaped = token[:8] + "".join(f"\\u{ord(c):04x}" for c in token[8:12]) + token[12:]
    hits, _ = _leaf(engine, b'{"build": {"token": "' + escaped.encode() + b'"}}\n')
    assert _markers(hits, "github-pat-classic", token) == ["[json-escape]"]


def test_json_escape_does_not_report_what_the_plain_scan_found(engine: Engine) -> None:
    token = plant.github_pat_classic()
    key = plant.rsa_private_key_pem()
    doc = {"env": f"A=1\nGITHUB_TOKEN={token}\nB=2", "key": key}
    hits, _ = _leaf(engine, (json.dumps(doc) + "\n").encode())
    assert _markers(hits, "github-pat-classic", token) == [None]
    assert [marker for marker, rule, _, _ in hits if rule == "private-key"] == [None]


def test_percent_inside_base64(engine: Engine) -> None:
    password = plant.generic_password()
    inner = f"dsn=postgres%3A%2F%2Fapp%3A{password}%40db%3A5432%2Fprod"
    hits, _ = _leaf(engine, b"data:\n  url: " + _b64(inner.encode()) + b"\n")
    assert "[base64]!/[percent]" in [marker for marker, _, secret, _ in hits if secret == password]


def test_depth_is_bounded(engine: Engine) -> None:
    token = plant.github_pat_classic()
    value = f"t={token}".encode()
    for _ in range(3):  # three levels of base64: one deeper than MAX_DEPTH
        value = b"v: " + _b64(value)
    hits, _ = _leaf(engine, value + b"\n")
    assert _markers(hits, "github-pat-classic", token) == []
    hits, _ = _leaf(engine, b"v: " + _b64(b"v: " + _b64(f"t={token}".encode())) + b"\n")
    assert _markers(hits, "github-pat-classic", token) == ["[base64]!/[base64]"]


def _grouped_passes() -> tuple[object, ...]:
    """The decoder passes as they were before quoted decoders lost their group: every pattern
    compiled as written, the run read from its group."""
    import dataclasses

    from layerleak.entries.decoders import DECODERS, _passes

    return _passes([dataclasses.replace(d, quoted=False) for d in DECODERS])


def _js_samples() -> list[bytes]:
    rng = random.Random(15)
    pieces = [b'"', b'\\"', b"\\n", b"\\u0041", b"\\u00e9x", b"\\t", b"\\/", b"\\\\", b"a", b"Z9", b"\n",
              b"\r", b" ", b"%41", b"token=", b"x" * 40, b"\\nA", b"\\", b"'", b"\x00", b"\xe9"]
    samples = [
        b'var s = "line one\\nline two with enough text", t = "\\u0041\\u0042CDEFGHIJKLMNOPQRS";',
        b'{"a": "x\\"y\\nzzzzzzzzzzzzzzzzzzzz", "b": "\\\\nnot an escape but long enough text"}',
        b'"' + b"\\n" + b"q" * 5000 + b'"' + b' "\\nshort"',  # too long, then too short
        b'"\\nAAAAAAAAAAAAAAAAAAAAAAAAAAA\r"unterminated \\n line "ok\\tvalue value value"',
    ]
    for _ in range(300):
        samples.append(b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 120))))
    return samples


def test_a_quoted_decoder_without_its_group_finds_exactly_the_same_runs() -> None:
    """The JSON-string pass runs its regex without a capture group (ten times faster in RE2);
    the runs, their offsets and their decoded values are those of the grouped regex."""
    from layerleak.entries.decoders import _runs

    grouped = _grouped_passes()
    found = 0
    for text in _js_samples():
        expected = [(s, e, d, dec.marker) for s, e, d, dec in _runs(text, grouped)]  # type: ignore[arg-type]
        assert [(s, e, d, dec.marker) for s, e, d, dec in _runs(text)] == expected, text
        found += sum(1 for *_, marker in expected if marker == "[json-escape]")
    assert found > 20  # the samples do exercise the JSON-string decoder


def test_a_pattern_that_is_not_quoted_is_refused() -> None:
    from layerleak.entries.decoders import _ungrouped

    with pytest.raises(ValueError):
        _ungrouped(rb"(?:^|\s)(abc)")
    assert _ungrouped(rb'"(a+)"') == rb'"(?:a+)"'


def _blanked_every_way(text: bytes) -> bytes:
    """_without_long_runs without its sampling shortcut: every byte examined."""
    import numpy as np

    from layerleak.entries.decoders import _RUN_BYTES, MAX_B64

    mask = np.frombuffer(text.translate(_RUN_BYTES), dtype=np.uint8)
    bounds = np.concatenate(([-1], np.flatnonzero(mask == 0), [len(text)]))
    out = bytearray(text)
    for i in np.flatnonzero(np.diff(bounds) - 1 > MAX_B64):
        start, end = int(bounds[i]) + 1, int(bounds[i + 1])
        out[start:end] = bytes(end - start)
    return bytes(out)


@pytest.mark.parametrize("seed", range(12))
def test_long_runs_are_blanked_exactly_with_the_sampling_shortcut(seed: int) -> None:
    """A stretch of run bytes just over MAX_B64, at any offset from the sample points, is still
    blanked; one of exactly MAX_B64 is not; text without one is returned as it is."""
    from layerleak.entries.decoders import MAX_B64, _without_long_runs

    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(1, 6)):
        parts.append(bytes(rng.choice(b" \n.:,=\"") for _ in range(rng.randint(0, 3))))
        sizes = [MAX_B64 - 1, MAX_B64, MAX_B64 + 1, MAX_B64 + 2, 2 * MAX_B64, rng.randint(1, 9000)]
        length = rng.choice(sizes)
        parts.append(bytes(rng.choice(b"AQZaz09+/_-") for _ in range(length)))
    text = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, MAX_B64))) + b"".join(parts)
    expected = _blanked_every_way(text)
    assert _without_long_runs(text) == expected
    if seed == 0:
        assert _without_long_runs(b"\n" + b"A" * (MAX_B64 + 1)) == b"\n" + bytes(MAX_B64 + 1)
        assert _without_long_runs(b"\n" + b"A" * MAX_B64 + b"\n" * 9) == b"\n" + b"A" * MAX_B64 + b"\n" * 9
