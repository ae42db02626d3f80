"""``.layerleak.toml``: a project's ignore entries, rule choices and default options.

Found in the working directory, or named with ``--config PATH``::

    [scan]                      # defaults for `layerleak scan` options, by their long names
    fail-on = "high"
    baseline = "layerleak-baseline.json"   # paths are relative to this file

    [rules]
    disable = ["generic-password"]          # rule ids or globs
    enable = []                             # turns back on what `disable` turned off

    [[ignore]]
    path = "/usr/share/doc/*"               # and/or fingerprint, rule, image (globs)
    reason = "vendor examples, not keys"    # required
    expires = 2027-01-31                    # optional: after it, the entry stops applying

Every key is checked: an unknown one is an error naming the file and the key (a typo must not
silently turn an ignore into a no-op). The ``[scan]`` keys are checked by the CLI against its
options (:func:`layerleak.cli.scan`), so a new option is configurable with no change here.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerleak.errors import UsageError
from layerleak.findings.suppress import IgnoreEntry

CONFIG_NAME = ".layerleak.toml"
_TOP = {"scan", "rules", "ignore"}
_RULES = {"enable", "disable"}
_IGNORE = {"fingerprint", "rule", "path", "image", "reason", "expires"}


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None = None
    scan: Mapping[str, Any] = field(default_factory=dict)  # option long name -> value, as written
    enable_rules: tuple[str, ...] = ()
    disable_rules: tuple[str, ...] = ()
    ignores: tuple[IgnoreEntry, ...] = ()


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """``--config PATH`` (which must exist), else ``.layerleak.toml`` in the working directory."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--config {explicit}: no such file")
        return explicit
    candidate = (cwd or Path.cwd()) / CONFIG_NAME
    return candidate if candidate.is_file() else None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise UsageError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")


def _ignore(entry: Any, path: Path, number: int) -> IgnoreEntry:
    where = f"{path}: [[ignore]] #{number}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where} is not a table")
    _unknown(entry, _IGNORE, where)
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"{where}: 'reason' is required (why this finding is not a leak)")
    criteria = {k: entry.get(k) for k in ("fingerprint", "rule", "path", "image")}
    for key, value in criteria.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(f"{where}: {key!r} must be a non-empty string")
    if all(v is None for v in criteria.values()):
        raise UsageError(f"{where}: name at least one of fingerprint, rule, path, image")
    expires = entry.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise UsageError(f"{where}: 'expires' must be a date like 2027-01-31") from None
    elif isinstance(expires, dt.datetime):
        expires = expires.date()
    elif expires is not None and not isinstance(expires, dt.date):
        raise UsageError(f"{where}: 'expires' must be a date like 2027-01-31")
    return IgnoreEntry(
        reason=reason.strip(), expires=expires, origin=f"{path} [[ignore]] #{number}", **criteria,
    )


def load_settings(path: Path | None) -> Settings:
    """The settings in ``path`` (None: no file, the defaults). Raises UsageError naming the file."""
    if path is None:
        return Settings()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    _unknown(doc, _TOP, str(path))
    scan = doc.get("scan", {})
    if not isinstance(scan, dict):
        raise UsageError(f"{path}: [scan] must be a table")
    rules = doc.get("rules", {})
    if not isinstance(rules, dict):
        raise UsageError(f"{path}: [rules] must be a table")
    _unknown(rules, _RULES, f"{path}: [rules]")
    ignores = doc.get("ignore", [])
    if not isinstance(ignores, list):
        raise UsageError(f"{path}: 'ignore' must be [[ignore]] tables")
    return Settings(
        path=path,
        scan=scan,
        enable_rules=_strings(rules.get("enable", []), f"{path}: [rules] enable"),
        disable_rules=_strings(rules.get("disable", []), f"{path}: [rules] disable"),
        ignores=tuple(_ignore(e, path, i) for i, e in enumerate(ignores, 1)),
    )
