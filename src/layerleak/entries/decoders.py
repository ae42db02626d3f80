"""Decoders: turn content whose secrets are not plain bytes into text the engine can read.

Two tables, each one interface, tried in order:

:data:`VIEWS`: how a whole file is read, picked by its first bytes (the first that applies wins):

- ``[utf-16]`` UTF-16 text (Windows configs): transcoded to UTF-8 on the fly; lines keep their
  numbers.
- ``[strings]`` compiled Python (.pyc): the string constants are pulled out of the marshal data,
  one per line, because the bytes around them (type codes, lengths) often glue onto a token and
  break the word boundaries rules rely on. ``line`` is then the ordinal of the string, as in
  ``strings FILE | grep -n``.
- other binaries (ELF, .class, databases): scanned as raw bytes, with no value decoder.
- text: as it is.

:data:`DECODERS`: encoded *values* inside text. Each is a regex for one encoded run and a decode
function; a run that decodes to printable text is put back into its line in place of the encoded
form, and that line is scanned again. A match is reported at the line of the encoded value, with
the decoder's marker in ``inner_path``:

- ``[base64]`` base64 and base64url (a Kubernetes Secret's ``data:``, a docker ``auth``);
- ``[hex]`` hex of text, at least 12 bytes;
- ``[percent]`` percent-encoding (a URL query, a form body) with at least 2 escapes;
- ``[json-escape]`` a double-quoted JSON or JavaScript string with backslash escapes (``\\n``,
  ``\\u002b``): decoded as JSON decodes it.

Limits: a decoded value is examined by every decoder again, to a depth of :data:`MAX_DEPTH`
(``[base64]!/[base64]`` is double base64; a percent-encoded value inside base64 is
``[base64]!/[percent]``), and no deeper; at most ``Limits.max_decoded`` values are decoded per
file (base64 ones counted too), then a note says the rest were not; an encoded run longer than
:data:`MAX_RUN` is data (an image, an archive), not a value.

Cost: the decoders without a gate (base64, hex) share one RE2 pass over the text, one
alternative each. Percent and JSON-escape runs are only looked for in a block that holds their
gate byte (``%``, a backslash), found by ``bytes.find``. The escape decoders see text that is
mostly readable already: a match they find that the plain scan also found (same rule, same line)
is not reported twice.
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, cast
from urllib.parse import unquote_to_bytes

import numpy as np
import numpy.typing as npt
import re2

from layerleak.detect.classify import HEAD, is_binary, pyc_header, text_encoding
from layerleak.detect.engine import CHUNK_SIZE, Engine
from layerleak.entries.limits import MIB, Budget
from layerleak.entries.streams import Prefixed, Reader, read_up_to
from layerleak.models import Match

UTF16 = "[utf-16]"
STRINGS = "[strings]"
BASE64 = "[base64]"
HEX = "[hex]"
PERCENT = "[percent]"
JSON_ESCAPE = "[json-escape]"

MIN_B64 = 16  # encoded characters: 12 decoded bytes, shorter values hold no secret worth it
MIN_DECODED = 12  # bytes a decoded value must have (every decoder)
MAX_RUN = 64 * 1024  # longer runs are data (images, archives), not a value
MAX_B64 = MAX_RUN
MAX_JSON_STRING = 4096  # a longer JSON string is a whole embedded file (a source map's sources)
MAX_DEPTH = 2  # a value inside a decoded value, and no deeper
MAX_B64_DEPTH = MAX_DEPTH
CONTEXT = 256  # bytes of the surrounding line kept on each side of a decoded value
MAX_PYC = 8 * MIB  # larger "pyc" files are scanned as raw bytes
MIN_PYC_STRING = 8

# 1 for a byte a run is made of (its start must follow any other byte, "=" included), else 0
_RUN_BYTES = bytes(1 if chr(c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-" else 0
                   for c in range(256))


def _without_long_runs(text: bytes) -> bytes:
    """``text`` with every stretch of run bytes longer than ``MAX_B64`` blanked out. Such a
    stretch holds no value :func:`_runs` keeps (a value must start at the stretch's start and be
    at most ``MAX_B64`` long, ending where the stretch does), and RE2 matches one with its capture
    group at a few MB/s: a 1 GB line of ``AAAA`` would take minutes (issue 14, floods)."""
    if len(text) <= MAX_B64 or not _may_hold_long_run(text):
        return text
    mask = np.frombuffer(text.translate(_RUN_BYTES), dtype=np.uint8)
    bounds = np.concatenate(([-1], np.flatnonzero(mask == 0), [len(text)]))
    long = np.flatnonzero(np.diff(bounds) - 1 > MAX_B64)
    if not len(long):
        return text
    out = bytearray(text)
    for i in long:
        start, end = int(bounds[i]) + 1, int(bounds[i + 1])
        out[start:end] = bytes(end - start)
    return bytes(out)


_SAMPLE = MAX_B64 // 2
_NON_RUN = re.compile(rb"[^A-Za-z0-9+/_-]")


def _may_hold_long_run(text: bytes) -> bool:
    """False when ``text`` has no stretch of run bytes longer than ``MAX_B64``, found without
    reading every byte: such a stretch covers a whole interval between two consecutive multiples
    of ``_SAMPLE``, so both ends of one are run bytes and nothing between them is another byte.
    Only the intervals whose ends are run bytes are searched, up to their first other byte."""
    ends = text[::_SAMPLE].translate(_RUN_BYTES)
    search = _NON_RUN.search
    for i in range(len(ends) - 1):
        if ends[i] and ends[i + 1] and search(text, i * _SAMPLE, (i + 1) * _SAMPLE + 1) is None:
            return True
    return False


_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"

Hit = tuple[str | None, Match]  # (marker of the decoded view or None, match)


def _printable(decoded: bytes) -> bool:
    """At least MIN_DECODED bytes, and at most 1 in 20 of them outside printable ASCII."""
    return len(decoded) >= MIN_DECODED and len(decoded.translate(None, _PRINTABLE)) <= len(decoded) // 20


# --- the value decoders -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoder:
    """One encoding of values inside text.

    ``pattern`` is an RE2 pattern with exactly one group, the encoded run (what comes before the
    group is its left boundary); a run followed by a byte of ``tail`` is part of something longer
    and skipped (RE2 has no lookahead). ``decode`` gives the decoded bytes, or None when the run
    is not this encoding of text. A decoder with a ``gate`` is only run over a block holding it.
    ``transparent``: the encoded form is mostly readable, so what the plain scan found on the same
    line is not reported again."""

    marker: str
    pattern: bytes
    decode: Callable[[bytes], bytes | None]
    tail: frozenset[int] = frozenset()
    gate: bytes | None = None
    transparent: bool = False
    min_run: int = 0  # shorter runs are not decoded
    max_run: int = MAX_RUN  # nor longer ones
    quoted: bool = False  # the group is the whole match but its first and last byte (a quote)


def decode_base64(run: bytes) -> bytes | None:
    """The decoded bytes when ``run`` is base64 (standard or URL-safe) of printable text."""
    body = run.rstrip(b"=")
    if len(body) % 4 == 1:
        return None
    urlsafe = b"-" in body or b"_" in body
    if urlsafe:
        if b"+" in body or b"/" in body:
            return None  # two alphabets mixed: a path or an identifier, not base64
        body = body.replace(b"-", b"+").replace(b"_", b"/")
    try:
        decoded = binascii.a2b_base64(body + b"=" * (-len(body) % 4), strict_mode=True)
    except binascii.Error:
        return None
    if len(decoded) < MIN_B64 * 3 // 4 or not _printable(decoded):
        return None
    return decoded


def decode_hex(run: bytes) -> bytes | None:
    if len(run) % 2:
        return None
    decoded = binascii.unhexlify(run)
    return decoded if _printable(decoded) else None


def decode_percent(run: bytes) -> bytes | None:
    decoded = unquote_to_bytes(run)
    return decoded if decoded != run and _printable(decoded) else None


def decode_json_string(run: bytes) -> bytes | None:
    """The content of a JSON string literal (without its quotes), as JSON reads it."""
    try:
        text = json.loads(b'"' + run + b'"')
    except ValueError:
        return None
    if not isinstance(text, str):
        return None
    decoded = text.encode("utf-8", "surrogatepass")
    return decoded if decoded != run and _printable(decoded) else None


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=")
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

DECODERS: tuple[Decoder, ...] = (
    # A base64 (or base64url) value of ASCII text: at least 16 characters, where each 4-character
    # group starts in A-Z or a-f (a byte below 0x80 has its top 6 bits below 32). That one
    # property turns away nearly every long identifier before Python sees it.
    Decoder(
        BASE64,
        rb"(?:^|[^A-Za-z0-9+/_-])("
        rb"(?:[A-Za-f][A-Za-z0-9+/]{3}){4,}(?:[A-Za-f][A-Za-z0-9+/]{1,2})?={0,2}"
        rb"|(?:[A-Za-f][A-Za-z0-9_-]{3}){4,}(?:[A-Za-f][A-Za-z0-9_-]{1,2})?={0,2}"
        rb")",
        decode_base64,
        tail=_B64_ALPHABET,
    ),
    # Hex of text: every byte pair is printable ASCII (2x-7x) or a tab, newline or CR. A SHA
    # digest fails within a few pairs.
    Decoder(
        HEX,
        rb"(?:^|[^A-Za-z0-9+/_-])((?:[2-7][0-9A-Fa-f]|0[9AaDd]){12,})",
        decode_hex,
        tail=_ALNUM,
    ),
    Decoder(
        PERCENT,
        rb"(?:^|[\s\"'<>`(])([^\s\"'<>`%()]*(?:%[0-9A-Fa-f]{2}[^\s\"'<>`%()]*){2,})",
        decode_percent,
        gate=b"%",
        transparent=True,
    ),
    Decoder(
        JSON_ESCAPE,
        rb'"((?:[^"\\\r\n]|\\[^\r\n])*\\(?:u[0-9A-Fa-f]{4}|[nrt/])[A-Za-z0-9](?:[^"\\\r\n]|\\[^\r\n])*)"',
        decode_json_string,
        gate=b"\\",
        transparent=True,
        min_run=16,
        max_run=MAX_JSON_STRING,
        quoted=True,
    ),
)


@dataclass(frozen=True, slots=True)
class _Pass:
    """One RE2 pass over a text: the decoders it serves, in group order, and its gate.
    ``quoted``: the regex has no group; the run is the match without its first and last byte.
    ``search``: google-re2's own search call of the regex (None: this version has none)."""

    regex: object
    decoders: tuple[Decoder, ...]
    gate: bytes | None
    quoted: bool = False
    search: Callable[[object, bytes, int, int], Sequence[tuple[int, int]]] | None = None


def _ungrouped(pattern: bytes) -> bytes:
    """A quoted decoder's pattern (one byte, then its group, then one byte) without the group.
    RE2 finds the same matches either way, but filling in a group costs it ten times the search
    itself (a JSON string pass over minified JavaScript: 0.76 s with it, 0.08 s without)."""
    if not (pattern[1:2] == b"(" and pattern[2:3] != b"?" and pattern[-2:-1] == b")"):
        raise ValueError(f"not a quoted decoder pattern: {pattern[:20]!r}")
    return pattern[:1] + b"(?:" + pattern[2:]


_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def _raw_search(regex: object) -> Callable[[object, bytes, int, int], Sequence[tuple[int, int]]] | None:
    """google-re2's own search call of ``regex``: the spans of every group, no Match object."""
    raw = getattr(regex, "_regexp", None)
    if _UNANCHORED is None or raw is None or not hasattr(raw, "Match"):
        return None
    return cast(Callable[[object, bytes, int, int], Sequence[tuple[int, int]]], raw.Match)


def _passes(decoders: Sequence[Decoder]) -> tuple[_Pass, ...]:
    """The ungated decoders joined into one alternation (one pass), each gated one on its own."""
    for d in decoders:
        if not d.quoted and re2.compile(d.pattern).groups != 1:
            raise ValueError(f"a decoder pattern has one group, the run: {d.pattern[:20]!r}")
    free = tuple(d for d in decoders if d.gate is None)
    out = []
    if free:
        regex = re2.compile(b"|".join(b"(?:" + d.pattern + b")" for d in free))
        out.append(_Pass(regex, free, None, search=_raw_search(regex)))
    for d in decoders:
        if d.gate is not None:
            regex = re2.compile(_ungrouped(d.pattern) if d.quoted else d.pattern)
            out.append(_Pass(regex, (d,), d.gate, d.quoted, _raw_search(regex)))
    return tuple(out)


_PASSES = _passes(DECODERS)

Run = tuple[int, int, bytes, Decoder]  # (start, end, decoded, decoder)


def _runs(text: bytes, passes: tuple[_Pass, ...] = _PASSES) -> Iterator[Run]:
    """(start, end, decoded, decoder) of each encoded value of text in ``text``, by start.

    Exactly what :func:`_runs_by_finditer` gives (each pass's ``finditer`` over the whole text),
    for less: a gated pass searches only the lines that hold its gate byte (:func:`_gated`), and
    every pass reads RE2's spans without a Match object (:func:`_matches`)."""
    found: list[Run] = []
    searched = _without_long_runs(text)
    n = len(text)
    for one in passes:
        windows = ((0, n),) if one.gate is None else _gated(searched, one.gate)
        for lo, hi in windows:
            for spans in _matches(one, searched, lo, hi):
                if one.quoted:
                    decoder = one.decoders[0]
                    start, end = spans[0][0] + 1, spans[0][1] - 1
                else:
                    group = 1
                    while spans[group][0] < 0:  # one alternative took part: its group
                        group += 1
                    decoder = one.decoders[group - 1]
                    start, end = spans[group]
                if not decoder.min_run <= end - start <= decoder.max_run:
                    continue
                if end < n and text[end] in decoder.tail:
                    continue
                decoded = decoder.decode(searched[start:end])
                if decoded is not None:
                    found.append((start, end, decoded, decoder))
    if len(passes) > 1:
        found.sort(key=lambda r: r[0])
    return iter(found)


def _matches(one: _Pass, text: bytes, lo: int, hi: int) -> Iterator[Sequence[tuple[int, int]]]:
    """The spans of every group of each match of ``one.regex.finditer(text, lo, hi)``: with
    google-re2's own search call, that finditer's loop without its Match objects."""
    search = one.search
    if search is None:
        for m in one.regex.finditer(text, lo, hi):  # type: ignore[attr-defined]
            yield [m.span(g) for g in range(len(one.decoders) + 1 if not one.quoted else 1)]
        return
    pos = lo
    while True:
        spans = search(_UNANCHORED, text, pos, hi)
        if spans[0][0] < 0:
            return
        yield spans
        if pos == hi:
            return
        pos = pos + 1 if pos == spans[0][1] else spans[0][1]  # an empty match: one byte on, as finditer


_GAP = 1024  # lines with a gate byte closer than this are searched in one call (RE2 reads ~500 MB/s)


def _gated(text: bytes, gate: bytes) -> list[tuple[int, int]]:
    """The ``[lo, hi)`` ranges of ``text`` a gated pass searches: whole lines that hold ``gate``,
    each range from the newline before its first line (or 0) to the end of its last line (a
    newline, or the end of the text); lines closer than ``_GAP`` share a range.

    Why that finds what ``finditer`` over the whole text finds: no gated decoder's match holds a
    newline but as its first byte (the left boundary of ``[percent]``), and each holds its gate
    byte. So every match lies in one line with the gate byte plus the newline before it, inside
    one range; a match never ends past a range's end, which is a newline or the end of the text;
    and since a match never reaches the next range, each range is searched from its start as the
    whole text is searched after the previous match (``^`` holds at offset 0 only: RE2's context
    is the whole text)."""
    out: list[tuple[int, int]] = []
    find, rfind, n = text.find, text.rfind, len(text)
    at = find(gate)
    while at >= 0:
        lo = max(rfind(b"\n", 0, at), 0)
        while True:
            hi = find(b"\n", at)
            if hi < 0:
                out.append((lo, n))
                return out
            at = find(gate, hi)
            if at < 0 or at - hi > _GAP:
                break
        out.append((lo, hi))
    return out


def _runs_by_finditer(text: bytes, passes: tuple[_Pass, ...] = _PASSES) -> Iterator[Run]:
    """:func:`_runs` as it was: every pass's regex run with ``finditer`` over the whole text.
    The reference the tests and ``bench/decoders_replay.py`` compare :func:`_runs` with."""
    found: list[Run] = []
    searched = _without_long_runs(text)
    for one in passes:
        if one.gate is not None and text.find(one.gate) < 0:
            continue
        for m in one.regex.finditer(searched):  # type: ignore[attr-defined]
            if one.quoted:
                decoder = one.decoders[0]
                start, end = m.start() + 1, m.end() - 1
            else:
                group = m.lastindex
                decoder = one.decoders[group - 1]
                start, end = m.span(group)
            if not decoder.min_run <= end - start <= decoder.max_run:
                continue
            if end < len(text) and text[end] in decoder.tail:
                continue
            decoded = decoder.decode(searched[start:end])
            if decoded is not None:
                found.append((start, end, decoded, decoder))
    if len(passes) > 1:
        found.sort(key=lambda r: r[0])
    return iter(found)


# --- the whole-file views ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    """A file as a view reads it: the stream, its marker, and whether values are decoded in it."""

    stream: Reader
    marker: str | None
    values: bool = True


View = Callable[[bytes, bytes, Reader], "Opened | None"]  # (head, first, rest) -> view or None


def _utf16_view(head: bytes, first: bytes, rest: Reader) -> Opened | None:
    encoding = text_encoding(head)
    if encoding is None:
        return None
    return Opened(_Transcoded(Prefixed(first, rest), encoding), UTF16)


def _pyc_view(head: bytes, first: bytes, rest: Reader) -> Opened | None:
    header = pyc_header(head)
    if header is None:
        return None
    data, complete = read_up_to(first, rest, MAX_PYC)
    if not complete:
        return Opened(Prefixed(data, rest), None, values=False)  # too large: raw bytes
    return Opened(io.BytesIO(b"\n".join(pyc_strings(data, header))), STRINGS)


def _binary_view(head: bytes, first: bytes, rest: Reader) -> Opened | None:
    return Opened(Prefixed(first, rest), None, values=False) if is_binary(head) else None


def _text_view(head: bytes, first: bytes, rest: Reader) -> Opened | None:
    return Opened(Prefixed(first, rest), None)


VIEWS: tuple[View, ...] = (_utf16_view, _pyc_view, _binary_view, _text_view)


def scan_leaf(engine: Engine, path: str, first: bytes, rest: Reader, budget: Budget) -> Iterator[Hit]:
    """Every match in one file's content, read through the first view that applies to it."""
    head = first[:HEAD]
    opened = next(o for view in VIEWS if (o := view(head, first, rest)) is not None)
    if not opened.values:
        for m in engine.scan_stream(cast(IO[bytes], opened.stream), path):
            yield opened.marker, m
        return
    yield from _with_values(engine, path, opened.stream, budget, opened.marker)


def _with_values(
    engine: Engine, path: str, stream: Reader, budget: Budget, marker: str | None
) -> Iterator[Hit]:
    tap = _ValueTap(stream, engine, path, budget)
    plain: set[tuple[str, int]] = set()
    for m in engine.scan_stream(cast(IO[bytes], tap), path):
        plain.add((m.rule_id, m.line))
        yield marker, m
    tap.finish()
    for inner, m, transparent in tap.found:
        if transparent and (m.rule_id, m.line) in plain:
            continue  # the plain scan read this one already
        yield (f"{marker}!/{inner}" if marker else inner), m


# --- decoding values in a stream --------------------------------------------------------------


class _ValueTap:
    """Passes a text stream through unchanged, decoding the encoded values it sees on the way.

    Whole lines are examined (a partial last line is held until its end arrives, up to
    ``MAX_RUN``), so a value split between two reads is still decoded.
    """

    def __init__(self, inner: Reader, engine: Engine, path: str, budget: Budget) -> None:
        self.inner = inner
        self.engine = engine
        self.path = path
        self.budget = budget
        self.carry = b""
        self.line = 1  # line number of uncounted[0] (of carry[0] when nothing is uncounted)
        self.uncounted = b""  # the last block examined, its newlines counted when a later block needs them
        self.found: list[tuple[str | None, Match, bool]] = []  # (marker, match, found by a transparent one)
        self.done = False
        self.kinds: set[str] = set()

    def read(self, n: int = -1, /) -> bytes:
        data = self.inner.read(n)
        self._feed(data)
        return data

    def finish(self) -> None:
        """Examine what is still held (the engine stops reading at the end of the stream)."""
        self._feed(b"")

    def _feed(self, data: bytes) -> None:
        if self.done:
            return
        buf = self.carry + data if self.carry else data
        if data:
            cut = buf.rfind(b"\n") + 1
            if cut == 0 and len(buf) <= MAX_RUN:
                self.carry = buf
                return
            block, self.carry = (buf[:cut], buf[cut:]) if cut else (buf, b"")
        else:
            block, self.carry, self.done = buf, b"", True
        if not block:
            return
        self._block(block)
        if self.done:
            return  # no later block: nothing needs its line numbers (a file read whole is not counted)
        self._count()
        self.uncounted = block

    def _count(self) -> None:
        if self.uncounted:
            self.line += self.uncounted.count(b"\n")
            self.uncounted = b""

    def _block(self, block: bytes) -> None:
        line, pos = 0, 0
        for start, end, decoded, decoder in _runs(block):
            if not line:
                self._count()
                line = self.line
            line += block.count(b"\n", pos, start)
            pos = start
            if not self._spend(decoder):
                return
            lo = max(block.rfind(b"\n", 0, start) + 1, start - CONTEXT)
            hi = block.find(b"\n", end)
            hi = min(len(block) if hi < 0 else hi, end + CONTEXT)
            for inner, hit in decoded_matches(
                self.engine, self.path, block[lo:start], decoded, block[end:hi], 1, self._spend, decoder
            ):
                self.found.append((inner, _at_line(hit, line), decoder.transparent))

    def _spend(self, decoder: Decoder) -> bool:
        budget = self.budget
        budget.decoded += 1
        self.kinds.add(decoder.marker)
        if budget.decoded > budget.limits.max_decoded:
            noun = "base64" if self.kinds == {BASE64} else "encoded"
            budget.note(f"more than {budget.limits.max_decoded} {noun} values; the rest were not decoded")
            self.done = True
            return False
        return True


def decoded_matches(
    engine: Engine,
    path: str,
    before: bytes,
    decoded: bytes,
    after: bytes,
    depth: int,
    spend: Callable[[Decoder], bool],
    decoder: Decoder = DECODERS[0],
) -> Iterator[Hit]:
    """Matches in ``decoded`` read in its line (``before`` + decoded + ``after``), then in the
    encoded values inside it. Matches wholly in the context were found in the line itself."""
    text = before + decoded + after
    lo, hi = len(before), len(before) + len(decoded)
    for m in engine.scan(text, path):
        if lo <= m.offset < hi:
            yield decoder.marker, m
    if depth >= MAX_DEPTH:
        return
    for start, end, inner, inner_decoder in _runs(decoded):
        if not spend(inner_decoder):
            return
        line_lo = max(decoded.rfind(b"\n", 0, start) + 1, start - CONTEXT)
        line_hi = decoded.find(b"\n", end)
        line_hi = min(len(decoded) if line_hi < 0 else line_hi, end + CONTEXT)
        for marker, m in decoded_matches(
            engine, path, decoded[line_lo:start], inner, decoded[end:line_hi], depth + 1, spend,
            inner_decoder,
        ):
            yield f"{decoder.marker}!/{marker}", m


def _at_line(m: Match, line: int) -> Match:
    return dataclasses.replace(m, line=line)


# --- UTF-16 -----------------------------------------------------------------------------------


class _Transcoded:
    """A UTF-16 byte stream read as UTF-8 (undecodable units become U+FFFD)."""

    def __init__(self, inner: Reader, encoding: str) -> None:
        self.inner = inner
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def read(self, n: int = -1, /) -> bytes:
        while True:
            raw = self.inner.read(n if n > 0 else CHUNK_SIZE)
            text = self.decoder.decode(raw, final=not raw)
            if text or not raw:
                return text.lstrip("\ufeff").encode("utf-8", "replace")


# --- .pyc -------------------------------------------------------------------------------------

# marshal type codes (Python/marshal.c); the high bit (FLAG_REF) may be set on any of them
_SHORT_ASCII = (ord("z"), ord("Z"))  # 1-byte length
_LONG_TEXT = (ord("a"), ord("A"), ord("u"), ord("t"), ord("s"))  # 4-byte little-endian length


# Where a string record can start: a short ASCII type code with a length of at least
# MIN_PYC_STRING, or a long text/bytes type code with a 4-byte length under 16 MiB.
_RECORD = re.compile(
    rb"[zZ\xfa\xda][\x08-\xff]|[aAuts\xe1\xc1\xf5\xf4\xf3][\x00-\xff]{3}\x00", re.DOTALL
)
_LOOP_MAX = 1024  # smaller files are walked with _RECORD: numpy's fixed cost per call dominates them
_SEGMENT = 1 << 18  # bytes of a larger file examined per round of numpy (bounds the temporaries)
_ODD = bytes(0 if c in _PRINTABLE else 0x80 for c in range(256))  # translated isascii(): all _PRINTABLE


def pyc_strings(data: bytes, header: int) -> list[bytes]:
    """The printable str and bytes constants of a marshalled code object, in file order.

    This walks the marshal stream for string objects by their type codes instead of
    unmarshalling it (``marshal.loads`` is unsafe on untrusted data and tied to one Python
    version); a false start is rejected because its "content" is not printable.

    A record is taken at the first position where one is valid, and the walk resumes after its
    content. In a larger file numpy first marks the positions that could start a valid record (a
    superset, tested per segment), and Python checks only those; a byte-by-byte walk in Python,
    or a regex search per false start, was among the slowest parts of a whole scan.
    """
    if len(data) < _LOOP_MAX:
        return _pyc_strings_loop(data, header)
    return _pyc_strings_marked(data, header)


def _pyc_strings_marked(data: bytes, header: int, segment: int = _SEGMENT) -> list[bytes]:
    """pyc_strings, with the candidate records marked by numpy ``segment`` bytes at a time."""
    n = len(data)
    arr = np.frombuffer(data, np.uint8)
    out: list[bytes] = []
    pos = header
    last = n - 1 - MIN_PYC_STRING  # a record at or after this cannot fit
    for lo in range(header, last, segment):
        for i in _record_starts(arr, lo, min(lo + segment, last)):
            if i < pos:
                continue
            if data[i] & 0x5F == 0x5A:  # z Z and their FLAG_REF forms: a length of at least 8
                start = i + 2
                end = start + data[i + 1]
            else:
                start = i + 5
                end = start + (data[i + 1] | data[i + 2] << 8 | data[i + 3] << 16)
                if end - start < MIN_PYC_STRING:
                    continue
            if end > n:
                continue
            value = data[start:end]
            if _is_text(value):
                out.append(value.replace(b"\n", b" "))
                pos = end
    return out


def _record_starts(arr: npt.NDArray[np.uint8], lo: int, hi: int) -> list[int]:
    """Positions in [lo, hi) that may start a valid record, ``hi <= len(arr) - 9``: a type code
    with its length byte (short) or zero high length byte (long) in place, and no control byte
    but tab, newline or carriage return among the first 8 content bytes (``_is_text`` rejects
    content with one either way). Every valid record's position is among them."""
    seg = arr[lo : hi + 12]
    m = hi - lo
    ok = (seg >= 32) | ((seg | 4) == 13) | (seg == 10)  # x | 4 == 13: tab or CR
    run = ok[:-1] & ok[1:]
    run = run[:-2] & run[2:]
    run = run[:-4] & run[4:]  # run[k]: seg[k : k + 8] all ok
    low = seg & 0x5F  # folds FLAG_REF and the case bit: z Z \xfa \xda -> Z; a A \xe1 \xc1 -> A
    starts = (low[:m] == 0x5A) & (seg[1 : m + 1] >= 8) & run[2 : m + 2]
    m5 = min(m, len(seg) - 12)  # a long record's content starts 5 bytes in
    if m5 > 0:
        long_code = (low[:m5] == 0x41) | (((seg[:m5] & 0x7F) - 0x73) <= 2)  # a A; s t u (uint8 wraps)
        starts[:m5] |= long_code & (seg[4 : m5 + 4] == 0) & run[5 : m5 + 5]
    found: list[int] = (starts.nonzero()[0] + lo).tolist()
    return found


def _pyc_strings_loop(data: bytes, header: int) -> list[bytes]:
    """pyc_strings, one regex search per candidate record."""
    out: list[bytes] = []
    n, pos = len(data), header
    search = _RECORD.search
    while (m := search(data, pos)) is not None and (i := m.start()) < n - 1:
        if data[i] & 0x7F in _SHORT_ASCII:
            size, start = data[i + 1], i + 2
        else:
            size, start = int.from_bytes(data[i + 1 : i + 5], "little"), i + 5
        value = data[start : start + size]
        if size >= MIN_PYC_STRING and len(value) == size and _is_text(value):
            out.append(value.replace(b"\n", b" "))
            pos = start + size
        else:
            pos = i + 1
    return out


def _is_text(value: bytes) -> bool:
    if value.isascii():  # all _PRINTABLE: mapped, every byte stays ASCII (faster than deleting them)
        return value.translate(_ODD).isascii()
    try:
        return value.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False
