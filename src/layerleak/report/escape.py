"""Text from an image, made safe to print on a terminal.

Everything an image carries (file names, labels, history, tags, and error messages that quote
them) is attacker-controlled. Printed raw, an ESC byte starts a CSI or OSC sequence that can
recolour, move the cursor, retitle the window, or write to the clipboard (OSC 52). :func:`escape`
shows every control character as text instead: ``\\x1b`` for ESC, ``\\n`` for a newline, and
``\\udcXX`` (an undecodable byte kept by ``surrogateescape``) as ``\\xXX``. Printable text,
including non-ASCII letters, is left alone. The JSON report needs none of this: JSON escapes
control characters by itself.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (U+0080-U+009F: 0x9b is a one-byte CSI on some terminals),
# lone surrogates (undecodable bytes), and the Unicode line/paragraph separators and bidi
# overrides, which reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _one(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character shown as an escape; tabs and newlines too, so one
    value is always one line."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_one, text)
