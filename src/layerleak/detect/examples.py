"""Expand the templates used by rule examples into concrete test strings.

Rule files must never hold a live-looking credential (push protection would flag it, and a reader
could not tell a real leak from a fixture). Positive examples are therefore written as templates
whose random parts are filled in at test time::

    {{CLASS:N}}     N random characters of CLASS (see CLASSES), e.g. {{upper2-7:16}}
    {{pem:TYPE}}    a fake PEM block "-----BEGIN TYPE-----" ... "-----END TYPE-----"
                    with 20 random base64 lines of 64 characters
    {{pem:TYPE:L}}  the same with L body lines
    {{begin:TYPE}}  the armor line "-----BEGIN TYPE-----" ({{end:TYPE}} likewise), so that rule
                    files hold no literal private-key header

Random parts are redrawn when they would put a placeholder word (``none``, ``todo``, ...) into the
result that the template's literal text does not already contain: the engine's false-positive
filters drop such secrets, and an example must not fail by chance.
"""

from __future__ import annotations

import random
import re
import string

CLASSES: dict[str, str] = {
    "alnum": string.ascii_letters + string.digits,
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "digit": string.digits,
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "upper2-7": string.ascii_uppercase + "234567",
    "lower2-7": string.ascii_lowercase + "234567",
    "crockford": "0123456789ABCDEFGHJKMNPQRSTVWXYZ",  # ULIDs (Crockford base32)
    "upperdigit": string.ascii_uppercase + string.digits,
    "lowerdigit": string.ascii_lowercase + string.digits,
    "b64": string.ascii_letters + string.digits + "+/",
    "b64url": string.ascii_letters + string.digits + "_-",
}

PEM_LINES = 20
ARMOR = ("begin", "end")  # {{begin:LABEL}} / {{end:LABEL}}: a PEM armor line, nothing random
PEM_WIDTH = 64
_MAX_DRAWS = 1000

_TEMPLATE = re.compile(r"\{\{([A-Za-z0-9-]+):([^{}]+)\}\}")

# Words that the engine's placeholder filter rejects inside a secret (case-insensitively) and that
# random characters could spell by accident. Words of seven letters or more are too unlikely to
# need a guard.
_ACCIDENTAL_WORDS = (
    "xxxx", "todo", "none", "null", "your_", "your-", "dummy", "fixme", "sample", "insert",
    "foobar", "secret", "change",
)  # fmt: skip


class TemplateError(ValueError):
    """An example template names an unknown class or a bad length."""


def armor(edge: str, label: str) -> str:
    """A PEM armor line, ``armor("BEGIN", "PRIVATE KEY")``: built here so that no tracked file
    holds a literal private-key header that secret scanners (ours included) would flag."""
    return f"-----{edge} {label}-----"


def _field(kind: str, arg: str, rng: random.Random) -> str:
    if kind in ARMOR:
        return armor(kind.upper(), arg)
    if kind == "pem":
        label, _, lines_text = arg.partition(":")
        lines = _count(lines_text, kind) if lines_text else PEM_LINES
        b64 = CLASSES["b64"]
        body = ["".join(rng.choice(b64) for _ in range(PEM_WIDTH)) for _ in range(lines)]
        return "\n".join([armor("BEGIN", label), *body, armor("END", label)])
    alphabet = CLASSES.get(kind)
    if alphabet is None:
        known = ", ".join([*CLASSES, "pem", *ARMOR])
        raise TemplateError(f"unknown template class {kind!r} (expected one of {known})")
    return "".join(rng.choice(alphabet) for _ in range(_count(arg, kind)))


def _count(text: str, kind: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise TemplateError(f"template {{{{{kind}:{text}}}}} needs a positive length")
    return int(text)


def _words(text: str) -> set[str]:
    lowered = text.lower()
    return {w for w in _ACCIDENTAL_WORDS if w in lowered}


def expand(template: str, rng: random.Random) -> str:
    """Fill every ``{{...}}`` field of ``template`` with random characters drawn from ``rng``."""
    literal_words = _words(_TEMPLATE.sub(" ", template))
    for _ in range(_MAX_DRAWS):
        result = _TEMPLATE.sub(lambda m: _field(m.group(1), m.group(2), rng), template)
        if _words(result) <= literal_words:
            return result
    raise TemplateError(f"could not expand {template!r} without spelling a placeholder word")


def has_template(text: str) -> bool:
    """True when ``text`` holds at least one random field (armor lines are not random)."""
    return any(m.group(1) not in ARMOR for m in _TEMPLATE.finditer(text))
