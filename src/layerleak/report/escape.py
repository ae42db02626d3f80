"""Text from an image, made safe to print on a terminal.

File names, labels, history steps and tags are attacker-controlled: printed raw, an ESC byte
starts a CSI or OSC sequence that can recolour, move the cursor or retitle the window.
:func:`escape` shows every control character as text (``\\x1b``), so one value is one line.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), lone surrogates
# (undecodable bytes kept by surrogateescape), line/paragraph separators and bidi overrides.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _one(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` text."""
    return text if _UNSAFE.search(text) is None else _UNSAFE.sub(_one, text)
