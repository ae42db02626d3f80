"""Platforms (``OS/ARCH[/VARIANT]``), normalised the way containerd's ``platforms`` package does.

Image indexes and configs spell the same platform in several ways: ``linux/arm64`` and
``linux/arm64/v8`` are one platform (v8 is arm64's default variant), as are ``linux/amd64`` and
``linux/amd64/v1``, ``linux/arm`` and ``linux/arm/v7``; ``aarch64``, ``x86_64``, ``armhf`` and
``armel`` are the uname / Debian names for ``arm64``, ``amd64``, ``arm/v7`` and ``arm/v6``.
Matching compares the normalised forms. A wanted platform without a variant matches every
variant of its OS and architecture (``--platform linux/arm`` scans arm/v6 and arm/v7 alike); with
a variant, only that variant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from layerleak.errors import TargetError, UsageError
from layerleak.sources.interface import ImageDesc

# The variant an architecture has when none is written (the OCI image spec and containerd agree).
DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1", "arm": "v7"}
_ARCH_ALIASES = {
    "aarch64": ("arm64", None),
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "i386": ("386", None),
    "i686": ("386", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
}
_OS_ALIASES = {"macos": "darwin"}
_PART = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class Platform:
    """A normalised platform: the variant is always explicit for arm, arm64 and amd64."""

    os: str
    arch: str
    variant: str | None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)


def _variant(arch: str, variant: str | None, fill_default: bool) -> str | None:
    if arch == "386":
        return None
    if variant:
        variant = variant.lower()
        if arch in ("arm64", "arm") and variant[0].isdigit():
            variant = "v" + variant  # "8" -> "v8"
        if arch == "arm64" and variant in ("v8.0", "v9.0"):
            variant = variant[:2]
        return variant
    return DEFAULT_VARIANT.get(arch) if fill_default else None


def normalize(os_: str, arch: str, variant: str | None = None, *, fill_default: bool = True) -> Platform:
    """The canonical form; ``fill_default`` writes the default variant out (an image's platform)."""
    os_, arch = os_.lower(), arch.lower()
    os_ = _OS_ALIASES.get(os_, os_)
    alias = _ARCH_ALIASES.get(arch)
    if alias is not None:
        arch, implied = alias
        variant = variant or implied
    return Platform(os_, arch, _variant(arch, variant, fill_default))


def parse(text: str) -> Platform:
    """A platform as a user writes it, ``OS/ARCH[/VARIANT]``; the variant stays None (any variant)
    unless written (or implied, as by ``armhf``)."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(_PART.fullmatch(p) for p in parts):
        raise UsageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT], e.g. linux/amd64")
    return normalize(*parts, fill_default=False)


def of_image(text: str | None) -> Platform | None:
    """A platform as an image describes it (``platform_of`` in layout.py); None if unreadable."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        return None
    return normalize(*parts)


def matches(actual: str | None, wanted: str | None) -> bool:
    """Does an image's platform (as the image spells it) satisfy the user's ``--platform``?"""
    if wanted is None:
        return True
    have = of_image(actual)
    if have is None:
        return False
    want = parse(wanted)
    return (have.os, have.arch) == (want.os, want.arch) and want.variant in (None, have.variant)


def listing(platforms: Iterable[str | None]) -> str:
    """``linux/amd64, linux/arm64/v8`` (each once, in the image's order) or ``none``."""
    seen = list(dict.fromkeys(p or "unknown" for p in platforms))
    return ", ".join(seen) if seen else "none"


def no_platform_message(target: str, wanted: str, have: Sequence[str | None]) -> str:
    return f"{target}: no image for platform {wanted} (the image has: {listing(have)})"


def select(images: Sequence[ImageDesc], wanted: str | None, target: str) -> list[ImageDesc]:
    """The images of ``wanted``'s platform; none is an error that lists what the image has."""
    if wanted is None:
        return list(images)
    chosen = [i for i in images if matches(i.platform, wanted)]
    if not chosen:
        raise TargetError(no_platform_message(target, wanted, [i.platform for i in images]))
    return chosen
