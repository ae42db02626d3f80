"""Decoders: turn content whose secrets are not plain bytes into text the engine can read.

- UTF-16 text (Windows configs): transcoded to UTF-8 on the fly; lines keep their numbers.
- Compiled Python (.pyc): the string constants are pulled out of the marshal data, one per line,
  because the bytes around them (type codes, lengths) often glue onto a token and break the
  word boundaries rules rely on. ``line`` is then the ordinal of the string, as in
  ``strings FILE | grep -n``.
- base64 values in text (a Kubernetes Secret's ``data:``, a docker ``config.json`` ``auth``):
  each value that decodes to printable text is put back into its line in place of the encoded
  form, and that line is scanned again; a value inside a decoded value is decoded too (a
  ``.dockerconfigjson`` holds ``auth``). A match is reported at the line of the encoded value.

Every decoded view is marked in the finding's ``inner_path``: ``[utf-16]``, ``[strings]``,
``[base64]``. Other binaries (ELF, .class, databases) are scanned as raw bytes.
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import io
import re
from collections.abc import Callable, Iterator
from typing import IO, cast

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

MIN_B64 = 16  # encoded characters: 12 decoded bytes, shorter values hold no secret worth it
MAX_B64 = 64 * 1024  # longer runs are data (images, archives), not a value
MAX_B64_DEPTH = 2  # a base64 value inside a decoded base64 value, and no deeper
CONTEXT = 256  # bytes of the surrounding line kept on each side of a decoded value
MAX_PYC = 8 * MIB  # larger "pyc" files are scanned as raw bytes
MIN_PYC_STRING = 8

# A base64 (or base64url) value of ASCII text: at least 16 characters, where each 4-character
# group starts in A-Z or a-f (a byte below 0x80 has its top 6 bits below 32). That one property
# turns away nearly every long identifier before Python sees it. The run must start at a
# boundary; its end is checked in Python (RE2 has no lookahead, and consuming the next character
# would hide a value that follows after a single separator).
_B64_RUN = re2.compile(
    rb"(?:^|[^A-Za-z0-9+/_-])("
    rb"(?:[A-Za-f][A-Za-z0-9+/]{3}){4,}(?:[A-Za-f][A-Za-z0-9+/]{1,2})?={0,2}"
    rb"|(?:[A-Za-f][A-Za-z0-9_-]{3}){4,}(?:[A-Za-f][A-Za-z0-9_-]{1,2})?={0,2}"
    rb")"
)
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=")
# 1 for a byte a run is made of (its start must follow any other byte, "=" included), else 0
_RUN_BYTES = bytes(1 if chr(c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-" else 0
                   for c in range(256))


def _without_long_runs(text: bytes) -> bytes:
    """``text`` with every stretch of run bytes longer than ``MAX_B64`` blanked out. Such a
    stretch holds no value :func:`_runs` keeps (a value must start at the stretch's start and be
    at most ``MAX_B64`` long, ending where the stretch does), and RE2 matches one with its capture
    group at a few MB/s: a 1 GB line of ``AAAA`` would take minutes (issue 14, floods)."""
    if len(text) <= MAX_B64:
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


def _runs(text: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, decoded) of each base64 value of text in ``text``."""
    for m in _B64_RUN.finditer(_without_long_runs(text)):
        start, end = m.span(1)
        if end - start > MAX_B64 or (end < len(text) and text[end] in _B64_ALPHABET):
            continue
        decoded = decode_base64(m.group(1))
        if decoded is not None:
            yield start, end, decoded
_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"

Hit = tuple[str | None, Match]  # (marker of the decoded view or None, match)


def scan_leaf(engine: Engine, path: str, first: bytes, rest: Reader, budget: Budget) -> Iterator[Hit]:
    """Every match in one file's content, decoding it first when it needs decoding."""
    head = first[:HEAD]
    encoding = text_encoding(head)
    if encoding is not None:
        stream: Reader = _Transcoded(Prefixed(first, rest), encoding)
        yield from _with_base64(engine, path, stream, budget, UTF16)
        return
    header = pyc_header(head)
    if header is not None:
        first, complete = read_up_to(first, rest, MAX_PYC)
        if complete:
            joined = b"\n".join(pyc_strings(first, header))
            yield from _with_base64(engine, path, io.BytesIO(joined), budget, STRINGS)
            return
    if is_binary(head):
        for m in engine.scan_stream(cast(IO[bytes], Prefixed(first, rest)), path):
            yield None, m
        return
    yield from _with_base64(engine, path, Prefixed(first, rest), budget, None)


def _with_base64(
    engine: Engine, path: str, stream: Reader, budget: Budget, marker: str | None
) -> Iterator[Hit]:
    tap = _Base64Tap(stream, engine, path, budget)
    for m in engine.scan_stream(cast(IO[bytes], tap), path):
        yield marker, m
    tap.finish()
    for inner, m in tap.found:
        yield (f"{marker}!/{inner}" if marker else inner), m


# --- base64 -----------------------------------------------------------------------------------


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
    if len(decoded) < MIN_B64 * 3 // 4 or len(decoded.translate(None, _PRINTABLE)) > len(decoded) // 20:
        return None
    return decoded


class _Base64Tap:
    """Passes a text stream through unchanged, decoding the base64 values it sees on the way.

    Whole lines are examined (a partial last line is held until its end arrives, up to
    ``MAX_B64``), so a value split between two reads is still decoded.
    """

    def __init__(self, inner: Reader, engine: Engine, path: str, budget: Budget) -> None:
        self.inner = inner
        self.engine = engine
        self.path = path
        self.budget = budget
        self.carry = b""
        self.line = 1  # line number of carry[0]
        self.found: list[Hit] = []
        self.done = False

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
            if cut == 0 and len(buf) <= MAX_B64:
                self.carry = buf
                return
            block, self.carry = (buf[:cut], buf[cut:]) if cut else (buf, b"")
        else:
            block, self.carry, self.done = buf, b"", True
        self._block(block)
        self.line += block.count(b"\n")

    def _block(self, block: bytes) -> None:
        line, pos = self.line, 0
        for start, end, decoded in _runs(block):
            line += block.count(b"\n", pos, start)
            pos = start
            if not self._spend():
                return
            lo = max(block.rfind(b"\n", 0, start) + 1, start - CONTEXT)
            hi = block.find(b"\n", end)
            hi = min(len(block) if hi < 0 else hi, end + CONTEXT)
            for inner, hit in decoded_matches(
                self.engine, self.path, block[lo:start], decoded, block[end:hi], 1, self._spend
            ):
                self.found.append((inner, _at_line(hit, line)))

    def _spend(self) -> bool:
        budget = self.budget
        budget.decoded += 1
        if budget.decoded > budget.limits.max_decoded:
            budget.note(f"more than {budget.limits.max_decoded} base64 values; the rest were not decoded")
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
    spend: Callable[[], bool],
) -> Iterator[Hit]:
    """Matches in ``decoded`` read in its line (``before`` + decoded + ``after``), then in the
    base64 values inside it. Matches wholly in the context were found in the line itself."""
    text = before + decoded + after
    lo, hi = len(before), len(before) + len(decoded)
    for m in engine.scan(text, path):
        if lo <= m.offset < hi:
            yield BASE64, m
    if depth >= MAX_B64_DEPTH:
        return
    for start, end, inner in _runs(decoded):
        if not spend():
            return
        line_lo = max(decoded.rfind(b"\n", 0, start) + 1, start - CONTEXT)
        line_hi = decoded.find(b"\n", end)
        line_hi = min(len(decoded) if line_hi < 0 else line_hi, end + CONTEXT)
        for marker, m in decoded_matches(
            engine, path, decoded[line_lo:start], inner, decoded[end:line_hi], depth + 1, spend
        ):
            yield f"{BASE64}!/{marker}", m


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
