"""The value decoders' pass over text: ``_runs`` finds exactly what each pass's ``finditer`` over
the whole text finds (``_runs_by_finditer``, the way it was done before), on generated and
adversarial text; and ``_ValueTap`` numbers lines the same however a file arrives."""

from __future__ import annotations

import base64
import dataclasses
import io
import random
import urllib.parse

import plant
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerleak.detect.engine import CHUNK_SIZE, Engine
from layerleak.detect.rules import load_rules
from layerleak.entries import decoders
from layerleak.entries.decoders import _GAP, _PASSES, MAX_RUN, _gated, _runs, _runs_by_finditer, scan_leaf
from layerleak.entries.limits import Budget

Found = list[tuple[int, int, bytes, str]]


def _ours(text: bytes, passes: tuple[decoders._Pass, ...] = _PASSES) -> Found:
    return [(s, e, d, dec.marker) for s, e, d, dec in _runs(text, passes)]


def _reference(text: bytes) -> Found:
    return [(s, e, d, dec.marker) for s, e, d, dec in _runs_by_finditer(text)]


_FALLBACK = tuple(dataclasses.replace(one, search=None) for one in _PASSES)  # google-re2 without its raw call


def _assert_same(text: bytes) -> Found:
    """_runs equals the reference on ``text`` (with and without RE2's raw call), and on each
    decoded value (what ``decoded_matches`` looks into again). Returns the reference's runs."""
    expected = _reference(text)
    assert _ours(text) == expected, text
    assert _ours(text, _FALLBACK) == expected, text
    for _, _, decoded, _ in expected:
        assert _ours(decoded) == _reference(decoded), decoded
    return expected


def _assert_ranges_hold_every_match(text: bytes) -> None:
    """The claim _gated rests on: every match of a gated pass over the whole text lies inside
    one of its ranges."""
    searched = decoders._without_long_runs(text)
    for one in _PASSES:
        if one.gate is None:
            continue
        ranges = _gated(searched, one.gate)
        assert all(a < b <= c < d for (a, b), (c, d) in zip(ranges, ranges[1:], strict=False))
        for m in one.regex.finditer(searched):  # type: ignore[attr-defined]
            assert any(lo <= m.start() and m.end() <= hi for lo, hi in ranges), (text, m.span())


# --- generated text ---------------------------------------------------------------------------

_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=6, max_size=48).map(str.encode)
_RUN_BYTES = b"ABCDEFabcdefXYZxyz0123456789+/_-"


@st.composite
def _piece(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 13))
    if kind == 0:  # base64 or base64url of text, padded or not
        value = draw(_TEXT)
        run = base64.urlsafe_b64encode(value) if draw(st.booleans()) else base64.b64encode(value)
        return run if draw(st.booleans()) else run.rstrip(b"=")
    if kind == 1:  # hex of text, either case
        run = draw(_TEXT).hex().encode()
        return run.upper() if draw(st.booleans()) else run
    if kind == 2:  # percent-encoded text
        return urllib.parse.quote(draw(_TEXT).decode(), safe=draw(st.sampled_from(["", "/", "=&"]))).encode()
    if kind == 3:  # a JSON string with escapes
        body = draw(_TEXT).decode()
        escaped = "".join(
            f"\\u{ord(c):04x}" if draw(st.booleans()) else c.replace("\\", "\\\\").replace('"', '\\"')
            for c in body
        )
        return b'"' + escaped.encode() + draw(st.sampled_from([b'"', b"", b"\\n", b'\\"']))
    if kind == 4:  # a run of run bytes around the lengths that matter: 16 (base64) and 24 (hex)
        size = draw(st.sampled_from([1, 3, 4, 15, 16, 17, 20, 23, 24, 25, 32, 33]))
        return bytes(draw(st.lists(st.sampled_from(_RUN_BYTES), min_size=size, max_size=size)))
    if kind == 5:  # hex digits of a given length
        size = draw(st.sampled_from([22, 23, 24, 25, 26, 48]))
        return bytes(draw(st.lists(st.sampled_from(b"0123456789abcdefABCDEF"), min_size=size, max_size=size)))
    if kind == 6:  # one separator, padding or gate byte
        return draw(st.sampled_from([
            b" ", b"\n", b"\r\n", b"\t", b"=", b"==", b'"', b"'", b"%", b"\\", b"(", b")",
            b"<", b">", b"`", b".", b":", b",", b"\x00", b"%4", b"%41", b"\\u00", b"\\n",
        ]))
    if kind == 7:  # high bytes: UTF-8 characters, and bytes that are no UTF-8 at all
        return draw(st.sampled_from([
            b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xe9",
            b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80",
        ]))
    if kind == 8:  # lines without a gate byte, short of and past the gap between searched ranges
        return b"x = 1\n" * draw(st.sampled_from([1, 10, _GAP // 6 - 1, _GAP // 6 + 1]))
    if kind == 9:  # one long line without a gate byte
        return b"word " * draw(st.sampled_from([10, _GAP // 5, _GAP // 5 + 2]))
    if kind == 10:  # base64 of base64 of text, and of percent-encoded text
        inner = base64.b64encode(draw(_TEXT)) + b" %41%42%43 " + draw(_TEXT)
        return base64.b64encode(inner)
    if kind == 11:  # "key=value" as configs hold them
        return draw(st.sampled_from([b"auth: ", b"token=", b"X-Api-Key: ", b'"password": ', b"?q="]))
    return draw(st.binary(max_size=12))


_TEXTS = st.lists(_piece(), max_size=40).map(b"".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_runs_are_those_finditer_finds(text: bytes) -> None:
    _assert_same(text)
    _assert_ranges_hold_every_match(text)


def test_the_generated_texts_exercise_every_decoder() -> None:
    """The property above is not vacuous: texts like the ones it draws do hold runs of every
    decoder, and gated ranges that are more than one."""
    rng = random.Random(15)
    markers: set[str] = set()
    several = 0
    for _ in range(300):
        text = _random_text(rng)
        markers |= {marker for *_, marker in _assert_same(text)}
        several += len(_gated(text, b"%")) > 1
    assert markers == {"[base64]", "[hex]", "[percent]", "[json-escape]"}
    assert several > 10


def _random_text(rng: random.Random) -> bytes:
    token = plant.github_pat_classic().encode()
    parts = [
        b"auth: " + base64.b64encode(b"ci:" + token),
        b" " + base64.urlsafe_b64encode(b"user:" + token + b"?>>"),
        b" blob=" + (b"token=" + token).hex().encode(),
        b" next=" + urllib.parse.quote("https://u:" + token.decode() + "@h/x").encode(),
        b' {"t": "\\u0041' + token + b'\\n"}',
        b"\n", b"x = 1\n" * (_GAP // 6 + 1), b"%", b"\\", b"==", b"\xc3\xa9", b"\r\n",
        bytes(rng.choice(_RUN_BYTES) for _ in range(rng.choice([15, 16, 17, 24]))),
    ]
    return b"".join(rng.choice(parts) for _ in range(rng.randint(0, 30)))


# --- adversarial text -------------------------------------------------------------------------

_B64 = base64.b64encode(b"deployer:hunter2-but-longer")
_HEX = b"token=not-a-real-one".hex().encode()
_PCT = b"https%3A%2F%2Fdeploy%3Apw%40db.internal%2Fapp"
_JSON = b'"line one\\nline two with text \\u0041BC"'


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\n",
        _B64,  # at offset 0, to the very end
        _HEX,
        _PCT,
        _JSON,
        b"%",
        b"\\",
        _B64 + _B64,  # padding between two runs: the second starts inside the first match
        _B64.rstrip(b"=") + b"=" + _B64,
        _B64 + b" " + _B64 + b"\n" + _B64,  # one byte apart
        _HEX + b" " + _HEX + b"." + _HEX,
        _B64[:8] + b"." + _B64[8:],  # a byte that cannot precede a run, in the middle of one
        _B64[:8] + b"\xc3\xa9" + _B64[8:],
        b"\xc3\xa9" + _B64,  # a run after a two-byte character: the match starts two bytes before it
        b"\xe9" + _B64,  # after a byte that is not UTF-8: no match there
        b"\xe2\x82\xac" + _B64 + b"\xf0\x9f\x98\x80" + _HEX,
        b"A" * 15 + b" " + b"A" * 16 + b" " + b"A" * 17 + b" " + b"0" * 23,
        b"41" * 11 + b" " + b"41" * 12 + b" " + b"41" * 13 + b"." + b"41" * 12 + b"4",
        b"x" * (MAX_RUN + 1) + b" " + _B64,  # a run too long to be a value, blanked, then a value
        b"A" * MAX_RUN + b" " + _B64,  # as long as a value may be
        _B64 + b"A" * (3 * MAX_RUN) + b"\n" + _PCT,
        b"q=" + _PCT + b"\n" + b"x = 1\n" * 1000 + b"r=" + _PCT,  # two ranges
        b"q=" + _PCT + b"\n" + b"x = 1\n" * 100 + b"r=" + _PCT,  # one range
        b"%" + b"y" * (4 * _GAP) + b"%" + b"\n" + _PCT,  # gates far apart on one line: one range
        b"\n" * 3 + _PCT + b"\n" * 3,
        _PCT + b"\r\n" + _JSON + b"\r\n" + _JSON,
        b'"\\nAAAAAAAAAAAAAAAAAAAAAA\n"unterminated \\n line "ok\\tvalue value value"',
        b"%41%42" * 30_000 + b"\n" + b"%41" * 40_000,  # percent runs too long for a value
        b"\\n" * 3000 + b'"' + b"\\u0041" * 1000 + b'"',
        base64.b64encode(b"inner " + _B64 + b" and " + _PCT),  # decoded values hold runs too
    ],
)
def test_runs_are_those_finditer_finds_on_adversarial_text(text: bytes) -> None:
    _assert_same(text)
    _assert_ranges_hold_every_match(text)


def test_the_adversarial_runs_are_found() -> None:
    """A few of the cases above, with what they hold: the comparison is not between two empty lists."""
    assert [m for *_, m in _reference(_B64 + b" " + _HEX + b" q=" + _PCT + b" " + _JSON)] == [
        "[base64]", "[hex]", "[percent]", "[json-escape]"]
    assert [s for s, *_ in _reference(b"\xc3\xa9" + _B64)] == [2]
    assert _reference(b"\xe9" + _B64) == []


def test_ranges_are_whole_lines_with_the_gate() -> None:
    text = b"a\nb%c\nd\n" + b"e\n" * _GAP + b"%f"
    first = text.index(b"\nb%")
    assert _gated(text, b"%") == [(first, text.index(b"\nd")), (text.rindex(b"\n"), len(text))]
    assert _gated(b"%x\ny\n%", b"%") == [(0, 6)]  # closer than _GAP: one range
    assert _gated(b"no gate\n", b"%") == []


# --- line numbers of decoded values -----------------------------------------------------------


class _Pieces:
    """A reader that hands out what it holds a few random bytes at a time."""

    def __init__(self, data: bytes, rng: random.Random, most: int) -> None:
        self.data, self.pos, self.rng, self.most = data, 0, rng, most

    def read(self, n: int = -1, /) -> bytes:
        size = self.rng.randint(1, self.most)
        if n is not None and n >= 0:
            size = min(size, n)
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules(()))


def _hits(engine: Engine, first: bytes, rest: object) -> list[tuple[str | None, str, str, int]]:
    budget = Budget()
    return sorted(
        (marker, m.rule_id, m.secret, m.line)
        for marker, m in scan_leaf(engine, "/f", first, rest, budget)  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("ending", [b"\n", b"", b"tail without newline " * 10])
def test_decoded_values_keep_their_line_however_the_file_arrives(engine: Engine, ending: bytes) -> None:
    rng = random.Random(len(ending))
    lines: list[bytes] = []
    expected = []
    for i in range(400):
        if i % 37 == 5:
            token = plant.github_pat_classic()
            lines.append(b"auth: " + base64.b64encode(f"ci:{token}".encode()))
            expected.append(("[base64]", token, i + 1))
        else:
            lines.append(b"x = %d" % i)
    if ending.strip():  # a value in the last line, which has no newline
        token = plant.github_pat_classic()
        lines.append(ending + base64.b64encode(f"ci:{token}".encode()))
        expected.append(("[base64]", token, len(lines)))
        ending = b""
    data = b"\n".join(lines) + ending
    whole = _hits(engine, data, io.BytesIO(b""))
    decoded = sorted((marker, secret, line) for marker, _, secret, line in whole if marker)
    assert decoded == sorted(expected)
    for most in (7, 300, 5000):
        assert _hits(engine, data[:100], _Pieces(data[100:], rng, most)) == whole


def test_a_value_after_a_block_too_long_to_hold_keeps_its_line(engine: Engine) -> None:
    token = plant.github_pat_classic()
    data = b"y" * (MAX_RUN + 10) + b"\n" * 3 + b"auth: " + base64.b64encode(f"ci:{token}".encode()) + b"\n"
    hits = _hits(engine, data[:CHUNK_SIZE], io.BytesIO(data[CHUNK_SIZE:]))
    assert ("[base64]", "github-pat-classic", token, 4) in hits
    assert _hits(engine, data[:10], _Pieces(data[10:], random.Random(1), 999)) == hits
