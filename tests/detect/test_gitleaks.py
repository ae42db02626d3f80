"""gitleaks-format rule files: every field we translate, checked through real scans.

The rules below are our own, written in gitleaks' format for a made-up vendor ("acme"); secrets are
drawn at test time from an alphabet that cannot spell a placeholder word.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import handmade
import plant
import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.entropy import shannon_entropy
from layerleak.detect.gitleaks import capture_groups, secret_regex
from layerleak.detect.rules import load_rules, parse_rules_text
from layerleak.errors import RuleError

if TYPE_CHECKING:
    from conftest import Layerleak

_ALPHABET = "bcdfghjkmnpqrstvwz23456789"  # no vowels, no x, no 0/1: never a placeholder word
_RNG = random.Random(20240229)


def fake(n: int) -> str:
    return "".join(_RNG.choice(_ALPHABET) for _ in range(n))


KEY = "acme_" + fake(24)
FAKE_KEY = "acme_fake" + fake(20)  # stopword "fake"
TEST_KEY = "acme_" + fake(20) + "TEST"  # allowlist regex on the secret
SESSION = fake(32)
TOKEN = "tok" + fake(20)
ORDER = "zq" + fake(12)

GITLEAKS_TOML = r"""
title = "acme rules in gitleaks format"

[extend]
useDefault = true           # gitleaks' own defaults: our built-in rules stand in for them
disabledRules = ["some-default-rule"]

[allowlist]
description = "global: applies to every rule of this file"
regexes = ['''^GLOBALLY_ALLOWED''']

[[rules]]
id = "acme-api-key"
description = "Acme API key"
regex = '''(?i)(acme[_-]?(?:api[_-]?)?key)\s*[:=]\s*["']?(acme_[a-z0-9]{24}[A-Z]{0,4})["']?'''
secretGroup = 2
entropy = 3.0
keywords = ["ACME"]
tags = ["acme", "key"]
    [[rules.allowlists]]
    description = "test keys end in TEST"
    regexes = ['''TEST$''']
    [[rules.allowlists]]
    stopwords = ["FAKE"]

[[rules]]
id = "acme-session"
description = "Acme session cookie, only in nginx configs"
regex = '''acme_session=([a-z0-9]{32})'''
keywords = ["acme_session="]
path = '''^etc/nginx/.*\.conf$'''

[[rules]]
id = "acme-token"
regex = '''(?i:bearer|token)\s+(tok[a-z0-9]{20})|x-acme-token:\s*(tok[a-z0-9]{20})'''
keywords = ["bearer", "token"]
    [rules.allowlist]
    regexTarget = "line"
    regexes = ['''#\s*example''']

[[rules]]
id = "acme-token-match"
regex = '''acmetok\(([a-z0-9]{8})\)'''
keywords = ["acmetok("]
    [[rules.allowlists]]
    regexTarget = "match"
    regexes = ['''^acmetok\(0''']
    [[rules.allowlists]]
    condition = "AND"
    paths = ['''(?:^|/)fixtures/''']
    stopwords = ["zz"]
    [[rules.allowlists]]
    commits = ["0123abcd"]      # never true in an image: this allowlist is dropped

[[rules]]
id = "acme-order"
description = "no keywords: runs on every file"
regex = '''\bzq[a-z0-9]{12}\b'''
"""


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gitleaks") / "acme.toml"
    path.write_text(GITLEAKS_TOML)
    return path


@pytest.fixture(scope="module")
def engine(rule_file: Path) -> Engine:
    return Engine(load_rules([rule_file]))


def found(engine: Engine, text: str, path: str | None = "/app/settings.ini") -> list[tuple[str, str]]:
    """(rule, secret) of the acme rules' matches (built-in rules may match the same text)."""
    return [(m.rule_id, m.secret) for m in engine.scan(text.encode(), path) if m.rule_id.startswith("acme")]


def test_rules_load_next_to_the_builtin_ones(rule_file: Path) -> None:
    rules = {r.id: r for r in load_rules([rule_file])}
    assert {"acme-api-key", "acme-session", "acme-token", "acme-order"} <= set(rules)
    assert "aws-access-key-id" in rules  # built-ins are still there
    assert rules["acme-api-key"].title == "Acme API key"
    assert rules["acme-api-key"].keywords == ("acme",)  # lower-cased, like gitleaks
    assert rules["acme-order"].keywords == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # secretGroup = 2: the key itself, not the name before it; keywords are case-insensitive.
        (f"ACME_API_KEY = '{KEY}'", [("acme-api-key", KEY)]),
        (f"acme-key: {KEY}", [("acme-api-key", KEY)]),
        # allowlist regex (target: the secret)
        (f"acme_key={TEST_KEY}", []),
        # stopwords: case-insensitive substrings of the secret
        (f"acme_key={FAKE_KEY}", []),
        # the file's global [allowlist] applies to its rules
        (f"GLOBALLY_ALLOWED acme_key={KEY}", [("acme-api-key", KEY)]),
    ],
)
def test_secret_group_allowlists_entropy(engine: Engine, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(engine, text) == expected


def test_entropy_threshold_is_gitleaks_strictly_greater(engine: Engine) -> None:
    low, high = "acme_" + "bcd" * 8, "acme_" + "bcdfghjkmnpq" * 2
    assert shannon_entropy(low) < 3.0 < shannon_entropy(high)
    assert found(engine, f"acme_key={low}") == []
    assert found(engine, f"acme_key={high}") == [("acme-api-key", high)]
    # gitleaks drops entropy <= threshold: exactly 3.0 bits (8 symbols, equally often) is dropped
    rules = parse_rules_text("[[rules]]\nid='e'\nregex='''v=([a-h]{8})'''\nentropy=3.0\n", "e.toml")
    assert shannon_entropy("abcdefgh") == 3.0
    assert Engine(rules).scan(b"v=abcdefgh") == []


def test_global_allowlist_uses_the_secret_by_default(engine: Engine, rule_file: Path) -> None:
    # "^GLOBALLY_ALLOWED" tests the secret, so a secret that starts with it is dropped...
    doc = GITLEAKS_TOML.replace("'''^GLOBALLY_ALLOWED'''", f"'''^{KEY[:10]}'''")
    rules = parse_rules_text(doc, "inline.toml")
    local = Engine(rules)
    assert found(local, f"acme_key={KEY}") == []
    # ...and the unchanged file keeps it (the line holding the word is not what is tested).
    assert ("acme-api-key", KEY) in found(engine, f"GLOBALLY_ALLOWED acme_key={KEY}")


def test_first_non_empty_group_is_the_secret(engine: Engine) -> None:
    # No secretGroup: gitleaks takes the first capture group that matched something.
    assert found(engine, f"Authorization: Bearer {TOKEN}") == [("acme-token", TOKEN)]
    assert found(engine, f"x-acme-token: {TOKEN}") == [("acme-token", TOKEN)]


def test_line_target_allowlist(engine: Engine) -> None:
    assert found(engine, f"curl -H 'token {TOKEN}'  # example\n") == []
    assert found(engine, f"# example\ncurl -H 'token {TOKEN}'\n") == [("acme-token", TOKEN)]


def test_match_target_and_and_condition(engine: Engine) -> None:
    secret = fake(6) + "zz"
    # regexTarget = "match": the whole match "acmetok(0...)" is tested, not the secret
    assert found(engine, "acmetok(0" + fake(7) + ")") == []
    assert found(engine, f"acmetok({secret})") == [("acme-token-match", secret)]
    # condition = AND: the path AND the stopword must both hold
    assert found(engine, f"acmetok({secret})", "/src/fixtures/a.txt") == []
    plain = fake(8).replace("z", "b")
    assert found(engine, f"acmetok({plain})", "/src/fixtures/a.txt") == [("acme-token-match", plain)]


def test_commit_only_allowlist_is_dropped(rule_file: Path) -> None:
    (rule,) = [r for r in load_rules([rule_file]) if r.id == "acme-token-match"]
    assert len(rule.allowlists) == 2 + 1  # two of its own (commits dropped) plus the global one


def test_path_restricts_the_rule(engine: Engine) -> None:
    line = f"set $c acme_session={SESSION};"
    assert found(engine, line, "/etc/nginx/conf.d/site.conf") == [("acme-session", SESSION)]
    assert found(engine, line, "/etc/apache2/site.conf") == []
    assert found(engine, line, None) == []  # no path (image config): a path rule cannot apply


def test_rule_without_keywords_runs_everywhere(engine: Engine) -> None:
    assert found(engine, f"order id {ORDER} shipped") == [("acme-order", ORDER)]
    # also where no keyword of any rule occurs
    assert found(engine, ORDER, None) == [("acme-order", ORDER)]


@pytest.mark.parametrize(
    ("regex", "group", "expected"),
    [
        (r"abc", 0, (r"(?P<secret>abc)", ())),
        (r"a(b)c", 1, (r"a(?P<secret>b)c", ())),
        (r"(a)(b)", 0, (r"(?P<secret>(a)(b))", (2, 3))),
        # escapes, classes, quoting and non-capturing groups are not groups
        (r"\((x)[(]\Q(\E(?:y)(?i:z)(?P<n>w)", 2, (r"\((x)[(]\Q(\E(?:y)(?i:z)(?P<secret>w)", ())),
        (r"[]()](a)[^]](b)[[:alpha:](](c)", 3, (r"[]()](a)[^]](b)[[:alpha:](](?P<secret>c)", ())),
        # nested: numbering follows the opening parentheses
        (r"((a)(b(c)))", 4, (r"((a)(b(?P<secret>c)))", ())),
        # a group the user named "secret" is made plain: ours is the one gitleaks would report
        (r"(?P<secret>k)=(v)", 2, (r"(k)=(?P<secret>v)", ())),
    ],
)
def test_secret_regex(regex: str, group: int, expected: tuple[str, tuple[int, ...]]) -> None:
    assert secret_regex(regex, group, "t") == expected


def test_capture_group_count_matches_re2() -> None:
    import re2

    for pattern in [r"(a)|(b)", r"(?i)(?:x(y))", r"[\](](z)", r"\\(q)", r"(?<n>a)(?s:.)"]:
        assert len(capture_groups(pattern)) == re2.compile(pattern).groups, pattern


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Go's regexp is RE2: what needs backtracking is refused, naming the rule and the file
        ("[[rules]]\nid = 'br'\nregex = '''(a)\\1'''\n", "rule br (FILE): regex is not valid RE2"),
        ("[[rules]]\nid = 'la'\nregex = '''a(?=b)'''\n", "rule la (FILE): regex is not valid RE2"),
        ("[[rules]]\nid = 'g'\nregex = '''(a)'''\nsecretGroup = 2\n", "secretGroup 2 but the regex has 1"),
        ("[[rules]]\nid = 'p'\ndescription = 'no regex'\n", "rule p (FILE): a rule needs a regex or a path"),
        ("[[rules]]\nid = 'r'\nregex = 'a'\n[[rules.required]]\nid = 'x'\n", "composite rules"),
        ("[extend]\npath = 'base.toml'\n[[rules]]\nid = 'e'\nregex = 'a'\n", "[extend] path/url"),
        ("[[rules]]\nid = 'u'\nregex = 'a'\nseverity = 'high'\n", "unknown gitleaks field(s) severity"),
        ("[[rules]]\nid = 'a'\nregex = 'a'\n[[rules.allowlists]]\ndescription = 'x'\n", "needs commits"),
        ("[[rules]]\nid = 'c'\nregex = 'a'\n[rules.allowlist]\nregexes=['b']\ncondition='XOR'\n",
         "condition must be OR or AND"),
        ("[[allowlists]]\ntargetRules = ['nope']\nregexes = ['x']\n[[rules]]\nid = 't'\nregex = 'a'\n",
         "targets rule nope"),
    ],
)
def test_bad_files_are_one_clear_rule_error(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RuleError) as caught:
        load_rules([path], builtin=False)
    assert message.replace("FILE", str(path)) in caught.value.diagnostics()


def test_cli_lists_the_translated_rules(layerleak: Layerleak, rule_file: Path) -> None:
    run = layerleak("rules", "--rules", str(rule_file))
    assert run.returncode == 0, run.describe()
    listed = {line.split()[0] for line in run.stdout.splitlines()[:-1]}
    assert {"acme-api-key", "acme-session", "acme-token", "acme-token-match", "acme-order"} <= listed
    assert "aws-access-key-id" in listed


def test_cli_rejects_a_bad_file_in_one_line(layerleak: Layerleak, tmp_path: Path) -> None:
    path = write(tmp_path, "[[rules]]\nid = 'br'\nregex = '''(a)\\1'''\n")
    run = layerleak("rules", "--rules", str(path))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "rule br" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_cli_scan_reports_gitleaks_rule_findings(
    layerleak: Layerleak, rule_file: Path, tmp_path: Path
) -> None:
    layer = handmade.layer_tar(
        [
            handmade.directory("etc"),
            handmade.directory("etc/nginx"),
            handmade.file("etc/nginx/site.conf", f"set $c acme_session={SESSION};\n"),
            handmade.directory("app"),
            handmade.file("app/settings.ini", f"[acme]\nacme_api_key = {KEY}\nfake = {FAKE_KEY}\n"),
            handmade.file("app/orders.txt", f"first\nsecond {ORDER}\n"),
        ]
    )
    config = handmade.image_config([layer], [{"created_by": "COPY . / # buildkit"}])
    image = tmp_path / "acme.tar"
    handmade.write_docker_archive(image, [handmade.LegacyImage(["acme:latest"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{image}", "--rules", str(rule_file), "--format", "json")
    assert run.returncode == 1, run.describe()
    got = {(f["rule_id"], f["path"], f["line"]) for f in run.report["findings"] if "acme" in f["rule_id"]}
    assert got == {
        ("acme-session", "/etc/nginx/site.conf", 1),
        ("acme-api-key", "/app/settings.ini", 2),
        ("acme-order", "/app/orders.txt", 2),
    }
    assert run.report["secrets_shown"] is False
    assert KEY not in run.stdout and SESSION not in run.stdout  # redacted by default


# --- gitleaks' own default configuration, as it is ------------------------------------------------
# Its file is not ours to commit. This one has the same shape and uses every construct it uses: a
# title and minVersion, a global [allowlist] with description, paths, regexes and stopwords, rules
# with and without entropy, one secretGroup, rule allowlists with regexTarget, a path-only rule,
# and ids that are also built-in ids here. Plus what a user's copy of it may do: define an id twice.
GHO = "gho_" + plant.github_pat_classic()[4:]  # with the CRC32 GitHub tokens carry (detect/validity.py)
DEFAULT_LIKE_TOML = r"""
title = "gitleaks config"
minVersion = "v8.25.0"

[allowlist]
description = "global allow list"
paths = ['''(?:^|/)vendor/''', '''\.(?:bmp|gif|jpe?g|png|svg)$''']
regexes = ['''^\$\{[A-Z_]+\}$''']
stopwords = ["014df517-39d1-4453-b7b3-9930c563627c"]

[[rules]]
id = "github-oauth"
description = "Found a GitHub OAuth Access Token"
regex = '''gho_[0-9a-zA-Z]{36}'''
keywords = ["gho_"]

[[rules]]
id = "acme-client-secret"
description = "Acme client secret"
regex = '''(?i)[\w.-]{0,50}?acme[ \t\w.-]{0,20}[\s'"]{0,3}(?:=|:{1,3}=|:|=>)['"\s=]{0,5}([a-z0-9]{32})\b'''
secretGroup = 1
entropy = 3
keywords = ["acme"]
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''(?i)example''']

[[rules]]
id = "pkcs12-file"
description = "Found a PKCS #12 file, which commonly contain bundled private keys."
path = '''(?i)(?:^|\/)[^\/]+\.p(?:12|fx)$'''

[[rules]]
id = "acme-order"
description = "first definition: replaced by the second"
regex = '''zq[a-z0-9]{12}'''
keywords = ["zq"]

[[rules]]
id = "acme-order"
description = "Acme order number"
regex = '''\bzq[a-z0-9]{12}\b'''
keywords = ["zq"]
"""


@pytest.fixture(scope="module")
def default_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gitleaks-default") / "gitleaks.toml"
    path.write_text(DEFAULT_LIKE_TOML)
    return path


def test_a_default_like_config_loads_with_namespaced_ids(default_like: Path) -> None:
    warnings: list[str] = []
    rules = {r.id: r for r in load_rules([default_like], warn=warnings.append)}
    assert rules["github-oauth"].origin.startswith("signatures/")  # the built-in keeps its id
    assert rules["gitleaks:github-oauth"].origin == str(default_like)
    assert rules["gitleaks:github-oauth"].imported
    assert "gitleaks:acme-client-secret" not in rules and "acme-client-secret" in rules
    assert rules["acme-order"].title == "Acme order number"  # the later definition wins
    assert rules["pkcs12-file"].presence
    assert len(warnings) == 2, warnings
    assert "acme-order is defined twice" in warnings[0]
    assert "github-oauth" in warnings[1] and "gitleaks:<id>" in warnings[1]


def test_imported_ids_still_clash_across_files(default_like: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again.toml"
    copy.write_text(DEFAULT_LIKE_TOML)
    with pytest.raises(RuleError, match="defined twice"):
        load_rules([default_like, copy])


def test_a_secret_both_rulesets_match_is_one_finding(default_like: Path) -> None:
    engine = Engine(load_rules([default_like]))
    matches = engine.scan(f"GH_OAUTH={GHO}\n".encode(), "/app/.config")
    assert [(m.rule_id, m.secret) for m in matches] == [("github-oauth", GHO)]
    # the imported rule alone still finds what no built-in rule knows, with its allowlist
    secret = fake(32)
    matches = engine.scan(f"acme_secret = {secret}\n".encode(), "/app/settings.ini")
    assert ("acme-client-secret", secret) in [(m.rule_id, m.secret) for m in matches]
    example = engine.scan(f"acme_secret = {secret} # example\n".encode(), "/app/settings.ini")
    assert [m for m in example if "acme" in m.rule_id] == []


def test_a_path_only_rule_reports_the_file_once(default_like: Path) -> None:
    import io

    engine = Engine(load_rules([default_like]))
    body = bytes(range(256)) * 20_000  # more than one engine chunk: still one finding
    stream = engine.scan_stream(io.BytesIO(body), "/root/certs/client.P12")
    found = [(m.secret, m.offset, m.line) for m in stream if m.rule_id == "pkcs12-file"]
    assert found == [("/root/certs/client.P12", 0, 1)]

    def presence(path: str | None) -> list[str]:
        return [m.secret for m in engine.scan(b"x", path) if m.rule_id == "pkcs12-file"]

    assert presence("/srv/b.pfx") == ["/srv/b.pfx"]
    assert presence("/root/certs/client.p12.txt") == []
    assert presence("/app/vendor/a.pfx") == []  # the file's global allowlist (paths)
    assert presence(None) == []  # config and history text: no file


def test_cli_scan_with_a_default_like_config(
    layerleak: Layerleak, default_like: Path, tmp_path: Path
) -> None:
    layer = handmade.layer_tar(
        [
            handmade.directory("app"),
            handmade.file("app/.config", f"GH_OAUTH={GHO}\n"),
            handmade.file("app/client.pfx", "0\x82\x01\x02 not really DER\n"),
        ]
    )
    config = handmade.image_config([layer], [{"created_by": "COPY . / # buildkit"}])
    image = tmp_path / "default.tar"
    handmade.write_docker_archive(image, [handmade.LegacyImage(["d:latest"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{image}", "--rules", str(default_like), "--format", "json")
    assert run.returncode == 1, run.describe()
    got = sorted((f["rule_id"], f["path"]) for f in run.report["findings"])
    assert got == [("github-oauth", "/app/.config"), ("pkcs12-file", "/app/client.pfx")]
    assert "gitleaks:<id>" in run.stderr and "Traceback" not in run.stderr
    assert "/app/client.pfx" not in json.dumps([f.get("secret") for f in run.report["findings"]])


GITLEAKS_DEFAULT = os.environ.get("LAYERLEAK_GITLEAKS_CONFIG")


@pytest.mark.skipif(
    not GITLEAKS_DEFAULT,
    reason="set LAYERLEAK_GITLEAKS_CONFIG to a copy of gitleaks' config/gitleaks.toml to load it as it is",
)
def test_gitleaks_own_default_config_loads() -> None:
    assert GITLEAKS_DEFAULT
    warnings: list[str] = []
    rules = load_rules([Path(GITLEAKS_DEFAULT)], warn=warnings.append)
    imported = [r for r in rules if r.imported]
    assert len(imported) > 150
    assert any(r.presence for r in imported)
    assert any("gitleaks:<id>" in w for w in warnings)
    engine = Engine(rules)
    matches = engine.scan(f"GH_OAUTH={GHO}\n".encode(), "/app/.config")
    assert [m.rule_id for m in matches] == ["github-oauth"]
