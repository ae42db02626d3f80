"""Rules as data: load and validate TOML rule files, and hash a ruleset.

Our own format (``[[rule]]`` tables) is documented in docs/rules.md. Files in gitleaks' format
(``[[rules]]`` tables) are translated by :mod:`layerleak.detect.gitleaks`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import re2

from layerleak.errors import RuleError
from layerleak.models import Confidence, Severity

DEFAULT_WINDOW = 256
MAX_WINDOW = 16384
SECRET_GROUP = "secret"


@dataclass(frozen=True, slots=True)
class Examples:
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    path: str | None = None  # the file the examples are scanned as, for rules with a ``path``


@dataclass(frozen=True, slots=True)
class Allowlist:
    """A gitleaks-style allowlist: a finding is dropped when any of its checks passes (all of
    them with ``require_all``, gitleaks' ``condition = "AND"``)."""

    regexes: tuple[str, ...] = ()
    target: str = "secret"  # what ``regexes`` test: "secret", "match" (whole match) or "line"
    stopwords: tuple[str, ...] = ()  # lowercase; a check passes when one is in the secret
    paths: tuple[str, ...] = ()  # file path regexes
    require_all: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule. ``regex`` is RE2 syntax (linear time) with a ``secret`` group."""

    id: str
    title: str
    severity: Severity
    keywords: tuple[str, ...]
    regex: str
    confidence: Confidence = Confidence.HIGH
    min_entropy: float | None = None
    min_length: int = 0
    window: int = DEFAULT_WINDOW
    # Literals one of which every match holds: a window holding none of them is not searched.
    requires: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()
    path_regex: str | None = None
    generic: bool = False
    examples: Examples = Examples()
    origin: str = "builtin"
    # From gitleaks files (layerleak.detect.gitleaks). No keywords there means "every chunk".
    allowlists: tuple[Allowlist, ...] = ()
    secret_groups: tuple[int, ...] = ()  # tried before ``secret``: the first non-empty one wins
    # Translated from another scanner's file (gitleaks): a built-in rule's match of the same bytes
    # is the one reported, and an id that clashes with a built-in one is namespaced.
    imported: bool = False
    # A file-presence rule (gitleaks' path-only rules): every file whose path matches
    # ``path_regex`` is one finding, its "secret" the path; the regex is not used.
    presence: bool = False
    # Who issues the credential, for docs and tests; empty means the first part of the id.
    provider: str = ""
    # For people, not for matching (reports: SARIF rule help, ``rules show``): what the secret is
    # and how to revoke it; the title stands in for a missing description.
    description: str | None = None
    references: tuple[str, ...] = ()  # URLs: the provider's token format and revocation docs
    # Ids of rules whose match of the same bytes gives way to this rule's: two providers whose
    # keys share a shape (Clerk's and Stripe's "sk_live_") are told apart by the rule that also
    # checks the context (a Clerk setting name), and one secret stays one finding.
    supersedes: tuple[str, ...] = ()


def _strs(value: Any, what: str, rule_id: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"rule {rule_id}: {what} must be a list of strings")
    return tuple(value)


def compile_checked(pattern: str, rule_id: str, what: str = "regex") -> Any:
    try:
        return re2.compile(pattern, _QUIET)
    except Exception as exc:  # re2.error is not a stable public name across versions
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RuleError(f"rule {rule_id}: {what} is not valid RE2 syntax: {detail}") from None


_QUIET = re2.Options()
_QUIET.log_errors = False  # the RuleError says it once; RE2 would also log to stderr
_LATIN1 = re2.Options()
_LATIN1.log_errors = False
_LATIN1.encoding = re2.Options.Encoding.LATIN1

# Escapes of a byte at or above 0x80, or of a Unicode class: RE2 folds case differently for these
# in Latin-1 mode (it does not fold é and É there), so a case-insensitive pattern with them is
# run on decoded text instead. The full high range (both cases in it) folds the same either way.
_HIGH_ESCAPE = re.compile(r"\\x(?:[89a-fA-F][0-9a-fA-F]|\{)|\\[pP]")
_HIGH_RANGE = re.compile(r"\\x[78][0-9a-fA-F]-\\xff")


def compile_latin1(pattern: str, rule_id: str) -> Any | None:
    """``pattern`` as an RE2 regex over Latin-1 bytes that matches a buffer exactly where the
    text regex matches the buffer decoded as Latin-1 (what the engine scans), or None when that
    is not certain: a pattern with characters beyond ASCII, or case-insensitive with escapes of
    high bytes or Unicode classes. Invalid syntax raises RuleError, as compile_checked does."""
    if not pattern.isascii():
        return None
    flags = "".join(re.findall(r"\(\?([a-zA-Z-]+)[:)]", pattern))
    if "i" in flags and _HIGH_ESCAPE.search(_HIGH_RANGE.sub("", pattern)):
        return None
    compile_checked(pattern, rule_id)  # the same syntax errors, worded the same way
    try:
        return re2.compile(pattern.encode("ascii"), _LATIN1)
    except Exception:  # noqa: BLE001 - valid as text but not as Latin-1 (``\x{100}``): run as text
        return None


_ANY = re2.Options()
_ANY.log_errors = False
_ANY.encoding = re2.Options.Encoding.LATIN1
_ANY.never_capture = True  # only "is there a match?": no submatch work, duplicate group names allowed
_ANY.max_mem = 64 << 20  # the DFA of several long generic regexes at once


def compile_any_latin1(patterns: Sequence[str]) -> Any | None:
    """One Latin-1 bytes regex that matches wherever any of ``patterns`` does, and possibly
    elsewhere: the alternation of each with its long bounded repeats relaxed
    (:func:`layerleak.detect.literals.relaxed`; flags set inside one stay inside it). None when
    one of them is not run as Latin-1 bytes or not relaxed, or RE2 will not compile the whole."""
    from layerleak.detect.literals import relaxed

    if any(compile_latin1(p, "any") is None for p in patterns):
        return None
    loose = [relaxed(p) for p in patterns]
    if any(p is None for p in loose):
        return None
    try:
        return re2.compile("|".join(f"(?:{p})" for p in loose).encode("ascii"), _ANY)
    except Exception:  # noqa: BLE001 - too big for RE2: the engine runs each rule alone
        return None


def rule_from_table(table: dict[str, Any], origin: str, *, compile_regexes: bool = True) -> Rule:
    """Validate one ``[[rule]]`` table. Raises RuleError with the rule id and the problem.

    Without ``compile_regexes`` (the built-in rules, which tests/detect/test_signatures.py
    compiles and checks) the regexes are compiled only when the engine first needs them."""
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(f"{origin}: a rule has no id")
    known = {
        "id", "title", "severity", "keywords", "regex", "confidence", "entropy", "min_length",
        "window", "allowlist", "path", "generic", "examples", "description", "references",
        "requires", "provider", "supersedes",
    }
    unknown = set(table) - known
    if unknown:
        raise RuleError(f"rule {rule_id}: unknown field(s) {', '.join(sorted(unknown))}")
    regex = table.get("regex")
    if not isinstance(regex, str):
        raise RuleError(f"rule {rule_id}: regex is required")
    if compile_regexes and SECRET_GROUP not in compile_checked(regex, rule_id).groupindex:
        raise RuleError(f"rule {rule_id}: regex needs a named group (?P<secret>...)")
    keywords = tuple(k.lower() for k in _strs(table.get("keywords"), "keywords", rule_id))
    if not keywords:
        raise RuleError(f"rule {rule_id}: at least one keyword is required")
    if any(len(k) < 3 for k in keywords):
        raise RuleError(f"rule {rule_id}: keywords must be at least 3 characters")
    allowlist = _strs(table.get("allowlist"), "allowlist", rule_id)
    for pattern in allowlist if compile_regexes else ():
        compile_checked(pattern, rule_id, "allowlist entry")
    path_regex = table.get("path")
    if path_regex is not None:
        if not isinstance(path_regex, str):
            raise RuleError(f"rule {rule_id}: path must be a string regex")
        if compile_regexes:
            compile_checked(path_regex, rule_id, "path")
    window = table.get("window", DEFAULT_WINDOW)
    if not isinstance(window, int) or not 16 <= window <= MAX_WINDOW:
        raise RuleError(f"rule {rule_id}: window must be an integer in 16..{MAX_WINDOW}")
    requires = _strs(table.get("requires"), "requires", rule_id)
    if any(not r or not r.isascii() for r in requires):
        raise RuleError(f"rule {rule_id}: requires must be non-empty ASCII strings")
    entropy = table.get("entropy")
    if entropy is not None and not isinstance(entropy, int | float):
        raise RuleError(f"rule {rule_id}: entropy must be a number")
    examples_table = table.get("examples", {})
    if not isinstance(examples_table, dict):
        raise RuleError(f"rule {rule_id}: examples must be a table")
    try:
        severity = Severity.parse(str(table.get("severity", "medium")))
        confidence = Confidence.parse(str(table.get("confidence", "high")))
    except ValueError as exc:
        raise RuleError(f"rule {rule_id}: {exc}") from None
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        raise RuleError(f"rule {rule_id}: description must be a string")
    return Rule(
        id=rule_id,
        title=str(table.get("title", rule_id)),
        severity=severity,
        keywords=keywords,
        regex=regex,
        confidence=confidence,
        min_entropy=float(entropy) if entropy is not None else None,
        min_length=int(table.get("min_length", 0)),
        window=window,
        requires=requires,
        allowlist=allowlist,
        path_regex=path_regex,
        generic=bool(table.get("generic", False)),
        provider=str(table.get("provider", "")),
        examples=Examples(
            positive=_strs(examples_table.get("positive"), "examples.positive", rule_id),
            negative=_strs(examples_table.get("negative"), "examples.negative", rule_id),
            path=_example_path(examples_table.get("path"), path_regex if compile_regexes else None,
                               rule_id),
        ),
        origin=origin,
        description=" ".join(description.split()) if description else None,
        references=_references(table.get("references"), rule_id),
        supersedes=_strs(table.get("supersedes"), "supersedes", rule_id),
    )


def _references(value: Any, rule_id: str) -> tuple[str, ...]:
    refs = _strs(value, "references", rule_id)
    if any(not r.startswith("https://") or any(c.isspace() for c in r) for r in refs):
        raise RuleError(f"rule {rule_id}: references must be https:// URLs")
    return refs


def _example_path(value: Any, path_regex: str | None, rule_id: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or (path_regex and not compile_checked(path_regex, rule_id, "path")
                                      .search(value)):
        raise RuleError(f"rule {rule_id}: examples.path must be a path the rule's path regex matches")
    return value


def parse_rules_text(text: str, origin: str, *, compile_regexes: bool = True) -> list[Rule]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from None
    return rules_from_doc(doc, origin, compile_regexes=compile_regexes)


def rules_from_doc(doc: dict[str, Any], origin: str, *, compile_regexes: bool = True) -> list[Rule]:
    """The rules of one parsed rule file (ours, or gitleaks' format)."""
    if "rules" in doc and "rule" not in doc:
        from layerleak.detect.gitleaks import translate_gitleaks

        return translate_gitleaks(doc, origin)
    tables = doc.get("rule", [])
    if not isinstance(tables, list):
        raise RuleError(f"{origin}: expected [[rule]] tables")
    return [rule_from_table(t, origin, compile_regexes=compile_regexes) for t in tables]


def builtin_rule_files() -> list[tuple[str, str]]:
    """(name, text) of every built-in rule file, sorted by name."""
    root = importlib.resources.files("layerleak.signatures")
    files = sorted((p for p in root.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def _builtin_docs(files: list[tuple[str, str]], cache_dir: Path | None) -> list[dict[str, Any]]:
    """The parsed built-in rule files. TOML is parsed in Python (a third of a warm rescan's
    start-up), so with ``cache_dir`` the parsed tables are kept there as JSON, under a digest of
    the files' text: any change to them (a new version) misses, and an unreadable or foreign
    file is parsed again. The cache holds rules only, no secret and nothing from an image."""
    digest = hashlib.sha256("\0".join(f"{n}\0{t}" for n, t in files).encode()).hexdigest()[:32]
    path = cache_dir / f"rules-{digest}.json" if cache_dir is not None else None
    if path is not None:
        try:
            docs = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(docs, list) and len(docs) == len(files) and all(isinstance(d, dict) for d in docs):
                return docs
        except (OSError, ValueError):
            pass
    docs = []
    for name, text in files:
        try:
            docs.append(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise RuleError(f"signatures/{name}: not valid TOML: {exc}") from None
    if path is not None:
        # Scans never use examples (they are for the tests, and `rules show` parses afresh): the
        # cache leaves them out, so nothing that looks like a credential is written there.
        docs = [_without_examples(d) for d in docs]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob("rules-*.json"):
                old.unlink(missing_ok=True)  # one version's rules at a time
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_text(json.dumps(docs), encoding="utf-8")
            os.replace(partial, path)
        except (OSError, TypeError, ValueError):
            pass  # a read-only cache directory, or a value JSON cannot hold: parse next time
    return docs


def _without_examples(doc: dict[str, Any]) -> dict[str, Any]:
    tables = doc.get("rule")
    if not isinstance(tables, list):
        return doc
    return {**doc, "rule": [{k: v for k, v in t.items() if k != "examples"} if isinstance(t, dict) else t
                            for t in tables]}


def load_rules(
    extra: Iterable[Path] = (),
    builtin: bool = True,
    warn: Callable[[str], None] | None = None,
    cache_dir: Path | None = None,
) -> list[Rule]:
    """Built-in rules plus the user's (a file or a directory of .toml files).

    An id defined twice is an error, except for imported (gitleaks) rules, which are loaded as
    gitleaks would load them: one whose id a built-in rule already has is renamed
    ``gitleaks:<id>``, and a later rule of the same file with an id already used there replaces
    the earlier one. ``warn`` is told of each rename and replacement. ``cache_dir``: where the
    parsed built-in files may be kept (the layer cache's directory; None: parse every time)."""
    rules: list[Rule] = []
    if builtin:
        texts = builtin_rule_files()
        for (name, _), doc in zip(texts, _builtin_docs(texts, cache_dir), strict=True):
            rules.extend(rules_from_doc(doc, f"signatures/{name}", compile_regexes=False))
    for path in extra:
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        if not files:
            raise RuleError(f"{path}: no .toml rule files found")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise RuleError(f"{file}: cannot read rule file ({exc.strerror})") from None
            rules.extend(parse_rules_text(text, str(file)))
    builtin_ids = {r.id for r in rules if r.origin.startswith("signatures/")}
    renamed: dict[str, list[str]] = {}
    out: dict[str, Rule] = {}
    for rule in rules:
        if rule.imported and rule.id in builtin_ids:
            renamed.setdefault(rule.origin, []).append(rule.id)
            rule = replace(rule, id=f"{IMPORTED_PREFIX}{rule.id}")
        earlier = out.get(rule.id)
        if earlier is not None:
            if not (rule.imported and earlier.imported and earlier.origin == rule.origin):
                raise RuleError(f"rule {rule.id} is defined twice ({earlier.origin} and {rule.origin})")
            if warn is not None:
                warn(f"rule {rule.id} is defined twice in {rule.origin}: the later one is used")
            del out[rule.id]  # the later definition takes the earlier one's place at the end
        out[rule.id] = rule
    for rule in out.values():
        unknown = [i for i in rule.supersedes if i not in out or i == rule.id]
        if unknown:
            raise RuleError(f"rule {rule.id}: supersedes unknown rule(s) {', '.join(unknown)}")
    for origin, ids in renamed.items():
        if warn is not None:
            warn(
                f"{origin}: {len(ids)} rule(s) have the id of a built-in rule and are loaded as "
                f"{IMPORTED_PREFIX}<id>: {', '.join(ids)}"
            )
    return list(out.values())


IMPORTED_PREFIX = "gitleaks:"


def ruleset_hash(rules: Sequence[Rule]) -> str:
    """A short stable hash of everything that changes what the rules find."""
    h = hashlib.sha256()
    for r in sorted(rules, key=lambda r: r.id):
        parts = (
            r.id, str(r.severity), str(r.confidence), "|".join(r.keywords), r.regex,
            repr(r.min_entropy), str(r.min_length), str(r.window), "|".join(r.allowlist),
            "|".join(r.requires),
            r.path_regex or "", str(r.generic),
        )
        h.update("\x1f".join(parts).encode())
        if r.allowlists or r.secret_groups:  # only gitleaks rules: built-in hashes stay as they were
            h.update(f"\x1f{r.allowlists!r}\x1f{r.secret_groups!r}".encode())
        if r.imported or r.presence:
            h.update(f"\x1f{r.imported}\x1f{r.presence}".encode())
        if r.supersedes:  # only rules that declare it: other hashes stay as they were
            h.update(f"\x1fsupersedes={'|'.join(r.supersedes)}".encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]
