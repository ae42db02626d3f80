"""Credential files parsed for what they mean: each kind as a real file in a hand-made image layer,
scanned through the CLI; and each credential-file rule's examples through its parser."""

from __future__ import annotations

import base64
import io
import random
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import handmade
import plant
import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.examples import expand
from layerleak.detect.rules import Rule, load_rules
from layerleak.entries.credfiles import KINDS, kind_for, with_credentials

if TYPE_CHECKING:
    from conftest import Layerleak

RULES = load_rules()
ENGINE = Engine(RULES)
CREDFILE_RULES = [r for r in RULES if r.origin == "signatures/credential-files.toml"]


def _pw(n: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        text = "".join(secrets.choice(alphabet) for _ in range(n))
        if sum(c.isdigit() for c in text) >= 2 and sum(c.isupper() for c in text) >= 2:
            return text


def _parsed(path: str, text: str) -> list[tuple[str, int, str]]:
    data = text.encode()
    merged = with_credentials(path, data, ENGINE.scan(data, path), ENGINE, kind_for(path))
    return [(m.rule_id, m.line, m.secret) for m in merged]


# --- every credential-file rule's examples, through the parser ----------------------------------


@pytest.mark.parametrize("rule", CREDFILE_RULES, ids=[r.id for r in CREDFILE_RULES])
def test_parser_agrees_with_rule_examples(rule: Rule) -> None:
    assert rule.examples.path is not None
    kind = kind_for(rule.examples.path)
    assert kind is not None and rule.id in kind.rule_ids, f"{rule.examples.path} is not parsed for {rule.id}"
    rng = random.Random(f"{rule.id}/{secrets.randbits(32)}")
    for template in rule.examples.positive:
        text = expand(template, rng)
        assert rule.id in [r for r, _, _ in _parsed(rule.examples.path, text)], text
    for template in rule.examples.negative:
        text = expand(template, rng)
        assert rule.id not in [r for r, _, _ in _parsed(rule.examples.path, text)], text


def test_every_kind_has_rules_and_a_rule_path_agrees() -> None:
    ids = {r.id: r for r in RULES}
    for kind in KINDS:
        for rule_id in kind.rule_ids:
            rule = ids[rule_id]
            if rule.path_regex is not None:
                assert rule.examples.path is not None and kind.path.search(rule.examples.path)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/root/.docker/config.json", "docker-config"),
        ("/kaniko/.docker/config.json", "docker-config"),
        ("/etc/docker/daemon.json", None),
        ("/srv/app/config.json", None),
        ("/home/ci/.netrc", "netrc"),
        ("/root/.aws/credentials", "aws-credentials"),
        ("/usr/lib/python3/dist-packages/botocore/credentials.py", None),
        ("/etc/kubernetes/admin.conf", "kubeconfig"),
        ("/root/.kube/config", "kubeconfig"),
        ("/srv/app/.env", "dotenv"),
        ("/srv/app/.env.production", "dotenv"),
        ("/srv/app/prod.env", "dotenv"),
        ("/usr/lib/python3/site-packages/env/__init__.py", None),
        ("/root/.zsh_history", "shell-history"),
        ("/app/BOOT-INF/classes/application-prod.yml", "spring"),
        ("/app/application.json", None),
        ("/root/.gradle/gradle.properties", "gradle-properties"),
        ("/src/app/gradle.properties", "gradle-properties"),
        ("/root/.cargo/credentials", "cargo-credentials"),
        ("/usr/local/cargo/credentials.toml", None),
        ("/root/.gem/credentials", "gem-credentials"),
        ("/root/.config/composer/auth.json", "composer-auth"),
        ("/root/.config/containers/auth.json", "docker-config"),
        ("/root/.config/gh/hosts.yml", "gh-hosts"),
        ("/etc/hosts.yml", None),
    ],
)
def test_which_files_are_parsed(path: str, kind: str | None) -> None:
    found = kind_for(path)
    assert (found.name if found else None) == kind


def test_unparseable_file_falls_back_to_the_rules_regex() -> None:
    token = _pw(40)
    text = f"users:\n- name: ci\n  user:\n    token: {token}\n  broken: [\n"
    assert ("kubeconfig-token", 4, token) in _parsed("/root/.kube/config", text)


def test_specific_rule_wins_generic_rule_gives_way() -> None:
    key = plant.aws_secret_access_key()
    pw = _pw()
    text = f"[a]\naws_secret_access_key = {key}\n[b]\naws_secret_access_key = {pw}\n"
    assert _parsed("/root/.aws/credentials", text) == [
        ("aws-secret-access-key", 2, key),
        ("aws-credentials-secret", 4, pw),
    ]
    url = f"DATABASE_URL=postgres://app:{pw}@db.internal.test/app\n"
    assert _parsed("/srv/.env", url) == [("dotenv-secret", 1, pw)]


# --- a real image holding every kind -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    rule_id: str
    path: str
    line: int
    secret: str


def _credential_image(outdir: Path) -> tuple[Path, list[Expect], list[str]]:
    """One layer of credential files with fresh secrets; returns the archive, what must be found,
    and paths that must yield nothing (placeholders)."""
    pw = {name: _pw() for name in (
        "docker", "netrc", "pypi", "git", "aws", "kube", "pg", "env", "url", "hist1", "hist2", "zsh",
        "ash", "wp", "spring", "spring_yml", "mail", "gradle", "gradle_proxy", "cargo", "gem_host",
        "composer", "composer_bearer")}
    gem_key = secrets.token_hex(16)
    gh_enterprise = secrets.token_hex(20)
    gho = "gho_" + plant.github_pat_classic()[4:]  # the same checksummed shape as ghp_
    salt = _pw(64)
    kube_token = _pw(40)
    pem = plant.rsa_private_key_pem()
    github = plant.github_pat_classic()
    aws_key = plant.aws_secret_access_key()
    aws_id = plant.aws_access_key_id()
    docker_auth = base64.b64encode(f"ci:{pw['docker']}".encode()).decode()
    files: dict[str, str] = {
        "root/.docker/config.json": (
            '{\n  "auths": {\n    "registry.internal.test": {\n'
            f'      "auth": "{docker_auth}"\n    }}\n  }}\n}}\n'
        ),
        "root/.netrc": f"machine git.internal.test\n  login deploy\n  password {pw['netrc']}\n",
        "root/.pypirc": (
            "[distutils]\nindex-servers = internal\n\n[internal]\n"
            f"repository = https://pypi.internal.test/\nusername = ci\npassword = {pw['pypi']}\n"
        ),
        "root/.git-credentials": f"https://deploy:{pw['git']}@git.internal.test\n",
        "root/.aws/credentials": (
            f"[default]\naws_access_key_id = {aws_id}\n"
            f"aws_secret_access_key = {aws_key}\n\n[odd]\naws_secret_access_key = {pw['aws']}\n"
        ),
        "root/.kube/config": (
            "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n"
            f"    token: {kube_token}\n- name: admin\n  user:\n"
            f"    client-key-data: {base64.b64encode(pem.encode()).decode()}\n"
        ),
        "root/.pgpass": f"# host:port:db:user:password\ndb.internal.test:5432:app:app:{pw['pg']}\\:x\n",
        "srv/app/.env": (
            f"APP_ENV=production\nDB_PASSWORD={pw['env']}\n"
            f"DATABASE_URL=postgres://app:{pw['url']}@db.internal.test:5432/app\n"
            f"GITHUB_TOKEN={github}\nTOKEN_TTL=3600\n"
        ),
        "srv/app/.env.example": "DB_PASSWORD=changeme\nSECRET_KEY=${SECRET_KEY}\nAPI_TOKEN=<your-token>\n",
        "root/.bash_history": (
            f"ls -la\nexport API_TOKEN={pw['hist1']}\nmysql -u root -p{pw['hist2']} app\n"
        ),
        "root/.zsh_history": f": 1700000000:0;curl -u admin:{pw['zsh']} https://api.internal.test/\n",
        "root/.ash_history": f"cd /tmp\nsshpass -p {pw['ash']} ssh deploy@10.0.0.2\n",
        "var/www/html/wp-config.php": (
            "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\n"
            f"define( 'DB_PASSWORD', '{pw['wp']}' );\n"
            f"define( 'AUTH_KEY',         '{salt}' );\n"
            "define( 'SECURE_AUTH_KEY',  'put your unique phrase here' );\n"
        ),
        "app/config/application.properties": (
            "spring.datasource.url=jdbc:postgresql://db.internal.test:5432/app\n"
            f"spring.datasource.username=app\nspring.datasource.password={pw['spring']}\n"
            "spring.mail.password=${MAIL_PASSWORD}\n"
        ),
        "app/config/application.yml": (
            "server:\n  port: 8080\nspring:\n  datasource:\n"
            f"    password: {pw['spring_yml']}\n  mail:\n    password: \"{pw['mail']}\"\n"
        ),
    }
    files.update({
        "root/.gradle/gradle.properties": (
            "org.gradle.jvmargs=-Xmx2g\nsigning.keyId=24875D73\n"
            f"signing.password={pw['gradle']}\nossrhUsername=ci\nossrhPassword=${{OSSRH_PASSWORD}}\n"
            f"systemProp.https.proxyPassword={pw['gradle_proxy']}\n"
        ),
        "root/.cargo/credentials.toml": (
            f'[registry]\ndefault = "internal"\n\n[registries.internal]\ntoken = "{pw["cargo"]}"\n'
        ),
        "root/.gem/credentials": (
            f"---\n:rubygems_api_key: {gem_key}\n"
            f"https://gems.internal.test/private: Bearer {pw['gem_host']}\n"
        ),
        "root/.config/composer/auth.json": (
            '{\n  "http-basic": {\n    "repo.internal.test": {\n      "username": "ci",\n'
            f'      "password": "{pw["composer"]}"\n    }}\n  }},\n'
            f'  "github-oauth": {{"github.com": "{github}"}},\n'
            f'  "bearer": {{"repo.internal.test": "{pw["composer_bearer"]}"}}\n}}\n'
        ),
        "root/.config/gh/hosts.yml": (
            f"github.com:\n    user: ci\n    oauth_token: {gho}\n    git_protocol: https\n"
            f"github.internal.test:\n    users:\n        ci:\n            oauth_token: {gh_enterprise}\n"
        ),
    })
    expect = [
        Expect("gradle-properties-secret", "/root/.gradle/gradle.properties", 3, pw["gradle"]),
        Expect("gradle-properties-secret", "/root/.gradle/gradle.properties", 6, pw["gradle_proxy"]),
        Expect("cargo-credentials-token", "/root/.cargo/credentials.toml", 5, pw["cargo"]),
        Expect("gem-credentials-key", "/root/.gem/credentials", 2, gem_key),
        Expect("gem-credentials-key", "/root/.gem/credentials", 3, pw["gem_host"]),
        Expect("composer-auth-secret", "/root/.config/composer/auth.json", 5, pw["composer"]),
        Expect("github-pat-classic", "/root/.config/composer/auth.json", 8, github),
        Expect("composer-auth-secret", "/root/.config/composer/auth.json", 9, pw["composer_bearer"]),
        Expect("github-oauth", "/root/.config/gh/hosts.yml", 3, gho),
        Expect("gh-cli-oauth-token", "/root/.config/gh/hosts.yml", 8, gh_enterprise),
        Expect("docker-config-auth", "/root/.docker/config.json", 4, pw["docker"]),
        Expect("netrc-password", "/root/.netrc", 3, pw["netrc"]),
        Expect("pypirc-password", "/root/.pypirc", 7, pw["pypi"]),
        Expect("git-credentials", "/root/.git-credentials", 1, pw["git"]),
        Expect("aws-access-key-id", "/root/.aws/credentials", 2, aws_id),
        Expect("aws-secret-access-key", "/root/.aws/credentials", 3, aws_key),
        Expect("aws-credentials-secret", "/root/.aws/credentials", 6, pw["aws"]),
        Expect("kubeconfig-token", "/root/.kube/config", 6, kube_token),
        Expect("kubeconfig-client-key", "/root/.kube/config", 9, pem.strip()),
        Expect("pgpass-password", "/root/.pgpass", 2, pw["pg"] + ":x"),
        Expect("dotenv-secret", "/srv/app/.env", 2, pw["env"]),
        Expect("dotenv-secret", "/srv/app/.env", 3, pw["url"]),
        Expect("github-pat-classic", "/srv/app/.env", 4, github),
        Expect("shell-history-secret", "/root/.bash_history", 2, pw["hist1"]),
        Expect("shell-history-secret", "/root/.bash_history", 3, pw["hist2"]),
        Expect("shell-history-secret", "/root/.zsh_history", 1, pw["zsh"]),
        Expect("shell-history-secret", "/root/.ash_history", 2, pw["ash"]),
        Expect("wp-config-password", "/var/www/html/wp-config.php", 4, pw["wp"]),
        Expect("wp-config-auth-key", "/var/www/html/wp-config.php", 5, salt),
        Expect("spring-datasource-password", "/app/config/application.properties", 3, pw["spring"]),
        Expect("spring-datasource-password", "/app/config/application.yml", 5, pw["spring_yml"]),
        Expect("spring-property-secret", "/app/config/application.yml", 7, pw["mail"]),
    ]
    dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in files for i in range(p.count("/"))})
    members = [handmade.directory(d) for d in dirs] + [handmade.file(p, t, 0o600) for p, t in files.items()]
    layer = handmade.layer_tar(members)
    config = handmade.image_config([layer], [{"created_by": "COPY creds/ / # buildkit"}])
    archive = outdir / "credfiles.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["credfiles:latest"], [layer], config)])
    return archive, expect, ["/srv/app/.env.example"]


@pytest.fixture(scope="module")
def credential_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Expect], list[str]]:
    return _credential_image(tmp_path_factory.mktemp("credfiles"))


Finder = Callable[[dict[str, Any]], tuple[str, str, int]]


def test_each_credential_file_kind_is_found(
    layerleak: Layerleak, credential_image: tuple[Path, list[Expect], list[str]]
) -> None:
    archive, expect, _ = credential_image
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--show-secrets")
    assert run.returncode == 1, run.describe()
    found = {(f["rule_id"], f["path"], f["line"]): f["secret"] for f in run.report["findings"]}
    wanted = {(e.rule_id, e.path, e.line): e.secret for e in expect}
    assert sorted(set(found) - set(wanted)) == [], "unexpected findings"
    assert sorted(set(wanted) - set(found)) == [], "missed credentials"
    assert {k: found[k] for k in wanted} == wanted  # what each credential means, decoded


def test_credential_files_are_redacted_by_default(
    layerleak: Layerleak, credential_image: tuple[Path, list[Expect], list[str]]
) -> None:
    archive, expect, placeholders = credential_image
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json")
    assert run.returncode == 1, run.describe()
    for e in expect:
        assert e.secret not in run.stdout and e.secret not in run.stderr, e.rule_id
    assert [f for f in run.report["findings"] if f["path"] in placeholders] == []


def test_an_auth_json_that_is_not_composers_is_left_to_the_regexes() -> None:
    from layerleak.entries.credfiles import parse_composer_auth

    not_composer = '{"providers": ["google"], "session": {"ttl": 3600}}'
    assert parse_composer_auth(not_composer, "/app/auth.json") is None
    pw = _pw()
    text = '{"http-basic": {"h": {"username": "u", "password": "' + pw + '"}}}'
    assert _parsed("/app/auth.json", text) == [("composer-auth-secret", 1, pw)]


def test_gradle_keys_that_name_no_secret_are_not_read() -> None:
    text = "org.gradle.caching=true\nsigning.secretKeyRingFile=/root/.gnupg/secring.gpg\nossrhUsername=ci\n"
    assert _parsed("/root/.gradle/gradle.properties", text) == []


def test_a_credential_file_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """scan_entry decides a file's credential format once and hands it on (it was three times)."""
    from layerleak.entries import content, credfiles

    calls: list[str] = []
    real = credfiles.kind_for

    def counted(path: str, base: str | None = None) -> credfiles.Kind | None:
        calls.append(path)
        return real(path, base)

    monkeypatch.setattr(credfiles, "kind_for", counted)
    data = b"machine example.invalid login deploy password " + b"Zq7" * 6 + b"\n"
    reason, hits = content.scan_entry("/root/.netrc", data, io.BytesIO(b""), ENGINE)
    list(hits)  # the merge runs as the hits are read
    assert reason is None
    assert calls == ["/root/.netrc"]
