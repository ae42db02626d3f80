"""Turning rules off and on (``--disable-rule``, ``--enable-rule``, ``[rules]`` of .layerleak.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from layerleak.detect.rules import Rule
from layerleak.errors import UsageError


def _matching(rules: Sequence[Rule], pattern: str, what: str) -> set[str]:
    found = {r.id for r in rules if fnmatchcase(r.id, pattern)}
    if not found:
        raise UsageError(f"{what} {pattern}: no rule has this id (see `layerleak rules`)")
    return found


def select_rules(
    rules: Sequence[Rule],
    disable: Sequence[str] = (),
    enable: Sequence[str] = (),
    *,
    config_disable: Sequence[str] = (),
    config_enable: Sequence[str] = (),
) -> list[Rule]:
    """The rules left on. The command line beats the config file: a rule the config disables is
    turned back on by ``--enable-rule``; ids may be globs (``generic-*``). An id that names no rule
    is an error, so a typo does not leave a rule running unnoticed."""
    off: set[str] = set()
    for pattern in config_disable:
        off |= _matching(rules, pattern, "[rules] disable")
    for pattern in config_enable:
        off -= _matching(rules, pattern, "[rules] enable")
    for pattern in disable:
        off |= _matching(rules, pattern, "--disable-rule")
    for pattern in enable:
        off -= _matching(rules, pattern, "--enable-rule")
    kept = [r for r in rules if r.id not in off]
    if not kept:
        raise UsageError("every rule is disabled: nothing would be found")
    return kept
