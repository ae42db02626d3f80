"""Translate gitleaks-format rule files (``[[rules]]``) into our rules.

What each gitleaks field becomes is documented in docs/gitleaks.md. In short: the regex keeps its
meaning (gitleaks uses Go's regexp, which is RE2 syntax) and gains a ``secret`` group chosen the
way gitleaks chooses the secret; keywords, entropy, path and allowlists map one to one; fields
that make no sense for an image (commits) are dropped exactly where gitleaks would never match
them; fields we cannot honour (composite rules, extending another file) are a RuleError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from layerleak.detect.rules import (
    MAX_WINDOW,
    SECRET_GROUP,
    Allowlist,
    Rule,
    compile_checked,
)
from layerleak.errors import RuleError
from layerleak.models import Confidence, Severity

# gitleaks runs a rule's regex over the whole file once a keyword is in it; we run it within this
# many bytes of each keyword hit (the largest window our engine allows).
WINDOW = MAX_WINDOW

_TOP_FIELDS = {"title", "description", "minVersion", "extend", "rules", "allowlist", "allowlists"}
_EXTEND_FIELDS = {"useDefault", "disabledRules", "path", "url"}
_RULE_FIELDS = {
    "id", "description", "regex", "secretGroup", "entropy", "keywords", "path", "tags",
    "allowlist", "allowlists", "required", "skipReport",
}
_ALLOW_FIELDS = {"description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords"}
_TARGETS = {"": "secret", "secret": "secret", "match": "match", "line": "line"}


@dataclass(frozen=True, slots=True)
class _Group:
    """One capturing group's opening token in a regex: ``text[start:end]`` is ``(`` or ``(?P<n>``."""

    start: int
    end: int
    name: str | None


def translate_gitleaks(doc: dict[str, Any], origin: str) -> list[Rule]:
    """Rules for every ``[[rules]]`` table of a parsed gitleaks config."""
    _no_unknown(doc, _TOP_FIELDS, origin, "top level")
    _check_extend(doc.get("extend"), origin)
    tables = doc.get("rules")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RuleError(f"{origin}: expected [[rules]] tables")
    ids = [t.get("id") for t in tables]
    global_lists, targeted = _global_allowlists(doc, origin, {i for i in ids if isinstance(i, str)})
    rules: list[Rule] = []
    for table in tables:
        rule = _rule(table, origin, global_lists)
        if rule is not None:
            extra = targeted.get(rule.id, ())
            if extra:
                rule = _with_allowlists(rule, extra)
            rules.append(rule)
    return rules


def _rule(table: dict[str, Any], origin: str, global_lists: tuple[Allowlist, ...]) -> Rule | None:
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleError(f"{origin}: a [[rules]] table has no id")
    where = f"{rule_id} ({origin})"
    _no_unknown(table, _RULE_FIELDS, origin, f"rule {rule_id}")
    if table.get("required"):
        raise RuleError(f"rule {where}: composite rules ([[rules.required]]) are not supported")
    if table.get("skipReport") is True:
        return None  # gitleaks never reports such a rule on its own, and we have no composites
    regex = table.get("regex")
    if regex is None or regex == "":
        return _presence_rule(table, rule_id, where, origin, global_lists)
    if not isinstance(regex, str):
        raise RuleError(f"rule {where}: regex must be a string")
    group = table.get("secretGroup", 0)
    if not isinstance(group, int) or isinstance(group, bool) or group < 0:
        raise RuleError(f"rule {where}: secretGroup must be a non-negative integer")
    ours, secret_groups = secret_regex(regex, group, where)
    entropy = table.get("entropy", 0)
    if not isinstance(entropy, int | float) or isinstance(entropy, bool) or entropy < 0:
        raise RuleError(f"rule {where}: entropy must be a non-negative number")
    path = table.get("path")
    if path is not None and not isinstance(path, str):
        raise RuleError(f"rule {where}: path must be a string regex")
    own = _tables(table.get("allowlists"), table.get("allowlist"), where)
    allowlists = tuple(
        a for t in own if (a := _allowlist(t, where)) is not None
    ) + global_lists
    description = table.get("description")
    return Rule(
        id=rule_id,
        title=description if isinstance(description, str) and description else rule_id,
        severity=Severity.MEDIUM,
        keywords=_keywords(table.get("keywords"), where),
        regex=ours,
        confidence=Confidence.HIGH,
        # gitleaks drops a secret whose entropy is <= the threshold; we drop < min_entropy.
        min_entropy=math.nextafter(float(entropy), math.inf) if entropy else None,
        window=WINDOW,
        path_regex=_path(path, where) if path else None,
        allowlists=allowlists,
        secret_groups=secret_groups,
        origin=origin,
        imported=True,
    )


def _presence_rule(
    table: dict[str, Any], rule_id: str, where: str, origin: str, global_lists: tuple[Allowlist, ...]
) -> Rule:
    """A path-only rule: gitleaks reports every file whose path matches; so do we, with the path
    as the finding's secret (docs/gitleaks.md)."""
    path = table.get("path")
    if not isinstance(path, str) or not path:
        raise RuleError(f"rule {where}: a rule needs a regex or a path")
    own = _tables(table.get("allowlists"), table.get("allowlist"), where)
    description = table.get("description")
    return Rule(
        id=rule_id,
        title=description if isinstance(description, str) and description else rule_id,
        severity=Severity.MEDIUM,
        keywords=(),
        regex="",
        confidence=Confidence.HIGH,
        path_regex=_path(path, where),
        allowlists=tuple(a for t in own if (a := _allowlist(t, where)) is not None) + global_lists,
        origin=origin,
        imported=True,
        presence=True,
    )


# --- the regex and its secret group -------------------------------------------------------------


def secret_regex(regex: str, secret_group: int, where: str) -> tuple[str, tuple[int, ...]]:
    """Our regex for a gitleaks regex, and the numbered groups tried before ``secret``.

    gitleaks' secret is group ``secretGroup`` when it is set; else the first non-empty capture
    group; else the whole match. The first case renames that group to ``secret``; the others wrap
    the whole regex in ``(?P<secret>...)`` (the fallback) and list the original groups, now
    numbered one higher, for the engine to try first.
    """
    compiled = compile_checked(regex, where)
    groups = capture_groups(regex)
    if len(groups) != compiled.groups:  # a syntax corner the scanner below does not know
        raise RuleError(f"rule {where}: cannot locate the regex's capture groups")
    if secret_group > len(groups):
        raise RuleError(
            f"rule {where}: secretGroup {secret_group} but the regex has {len(groups)} group(s)"
        )
    # A group already named "secret" would clash with ours: make every named group plain. This
    # keeps the numbering, which is all gitleaks uses.
    pieces: list[str] = []
    last = 0
    for number, g in enumerate(groups, start=1):
        pieces.append(regex[last : g.start])
        pieces.append(f"(?P<{SECRET_GROUP}>" if number == secret_group else "(")
        last = g.end
    pieces.append(regex[last:])
    body = "".join(pieces)
    tried: tuple[int, ...] = ()
    if secret_group:
        out = body
    else:
        out, tried = f"(?P<{SECRET_GROUP}>{body})", tuple(range(2, len(groups) + 2))
    compiled = compile_checked(out, where)
    if SECRET_GROUP not in compiled.groupindex:  # pragma: no cover - guarded by the count above
        raise RuleError(f"rule {where}: cannot place the secret group")
    return out, tried


def capture_groups(regex: str) -> list[_Group]:
    """The capturing groups' openings in RE2 numbering order (the order of their ``(``).

    Skips escapes (``\\(``), quoted text (``\\Q...\\E``), character classes (``[(]``, ``[]a]``,
    ``[[:alpha:]]``) and non-capturing groups and flags (``(?:``, ``(?i)``, ``(?i:``).
    """
    out: list[_Group] = []
    i, n = 0, len(regex)
    in_class = False
    while i < n:
        c = regex[i]
        if c == "\\":
            if regex.startswith("\\Q", i):
                end = regex.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif regex.startswith("[:", i):
                end = regex.find(":]", i + 2)
                if end >= 0:
                    i = end + 2
                    continue
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if regex.startswith("^", i):
                i += 1
            if regex.startswith("]", i):  # a leading ] is a literal
                i += 1
            continue
        if c == "(":
            for opener in ("(?P<", "(?<"):
                if regex.startswith(opener, i):
                    close = regex.find(">", i)
                    if close < 0:
                        return out  # invalid; compile() has already said so
                    out.append(_Group(i, close + 1, regex[i + len(opener) : close]))
                    i = close + 1
                    break
            else:
                if regex.startswith("(?", i):
                    i += 2
                else:
                    out.append(_Group(i, i + 1, None))
                    i += 1
            continue
        i += 1
    return out


# --- keywords, paths, allowlists ----------------------------------------------------------------


def _keywords(value: Any, where: str) -> tuple[str, ...]:
    """gitleaks keywords are case-insensitive substrings; none means "run on every file"."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise RuleError(f"rule {where}: keywords must be a list of strings")
    return tuple(dict.fromkeys(k.lower() for k in value if k))


def _path(path: str, where: str) -> str:
    """Image paths are absolute (``/app/.env``); gitleaks' are relative (``app/.env``). A regex
    anchored at the start is let past the leading slash."""
    if path.startswith("^") and not path.startswith("^/"):
        path = "^/?" + path[1:]
    compile_checked(path, where, "path")
    return path


def _strs_field(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"rule {where}: allowlist {key} must be a list of strings")
    return tuple(value)


def _allowlist(table: dict[str, Any], where: str, fields: set[str] = _ALLOW_FIELDS) -> Allowlist | None:
    """One allowlist, or None when it can never allow anything in an image."""
    _no_unknown(table, fields, where, "allowlist")
    condition = str(table.get("condition", "OR")).strip().upper()
    if condition not in {"OR", "||", "AND", "&&"}:
        raise RuleError(f"rule {where}: allowlist condition must be OR or AND, not {condition!r}")
    require_all = condition in {"AND", "&&"}
    target = _TARGETS.get(str(table.get("regexTarget", "")))
    if target is None:
        raise RuleError(f"rule {where}: allowlist regexTarget must be secret, match or line")
    commits = _strs_field(table, "commits", where)
    regexes = _strs_field(table, "regexes", where)
    stopwords = tuple(dict.fromkeys(w.lower() for w in _strs_field(table, "stopwords", where) if w))
    paths = tuple(_path(p, where) for p in _strs_field(table, "paths", where))
    for pattern in regexes:
        compile_checked(pattern, where, "allowlist regex")
    if not (commits or regexes or stopwords or paths):
        raise RuleError(f"rule {where}: an allowlist needs commits, paths, regexes or stopwords")
    # An image has no commits: a commit check never passes. Under AND the allowlist can then
    # never allow; under OR the other checks decide alone.
    if commits and (require_all or not (regexes or stopwords or paths)):
        return None
    return Allowlist(
        regexes=regexes, target=target, stopwords=stopwords, paths=paths, require_all=require_all
    )


def _tables(many: Any, one: Any, where: str) -> list[dict[str, Any]]:
    """``[[rules.allowlists]]`` tables plus the legacy ``[rules.allowlist]`` table."""
    tables: list[Any] = []
    if many is not None:
        tables.extend(many if isinstance(many, list) else [many])
    if one is not None:
        tables.append(one)
    if not all(isinstance(t, dict) for t in tables):
        raise RuleError(f"rule {where}: allowlists must be tables")
    return tables


def _global_allowlists(
    doc: dict[str, Any], origin: str, ids: set[str]
) -> tuple[tuple[Allowlist, ...], dict[str, tuple[Allowlist, ...]]]:
    """The file's global allowlists: (for every rule of the file, by targeted rule id)."""
    everyone: list[Allowlist] = []
    targeted: dict[str, tuple[Allowlist, ...]] = {}
    where = f"[allowlists] ({origin})"
    for table in _tables(doc.get("allowlists"), doc.get("allowlist"), where):
        targets = _strs_field(table, "targetRules", where)
        allowlist = _allowlist(table, where, _ALLOW_FIELDS | {"targetRules"})
        for rule_id in targets:
            if rule_id not in ids:
                raise RuleError(f"{origin}: allowlist targets rule {rule_id}, not defined in this file")
        if allowlist is None:
            continue
        if targets:
            for rule_id in targets:
                targeted[rule_id] = (*targeted.get(rule_id, ()), allowlist)
        else:
            everyone.append(allowlist)
    return tuple(everyone), targeted


def _with_allowlists(rule: Rule, extra: Iterable[Allowlist]) -> Rule:
    return replace(rule, allowlists=(*rule.allowlists, *extra))


def _check_extend(extend: Any, origin: str) -> None:
    """``useDefault`` and ``disabledRules`` name gitleaks' own default rules, which we never load
    (our built-in rules play their part): both are accepted and change nothing. Extending
    another file is not supported."""
    if extend is None:
        return
    if not isinstance(extend, dict):
        raise RuleError(f"{origin}: [extend] must be a table")
    _no_unknown(extend, _EXTEND_FIELDS, origin, "[extend]")
    if extend.get("path") or extend.get("url"):
        raise RuleError(f"{origin}: [extend] path/url is not supported; pass each file with --rules")


def _no_unknown(table: dict[str, Any], known: set[str], origin: str, what: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise RuleError(f"{origin}: {what}: unknown gitleaks field(s) {', '.join(sorted(unknown))}")
