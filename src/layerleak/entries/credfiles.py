"""Credential files read for what they mean, not only matched by regex.

A file whose path names a known credential format (``~/.docker/config.json``, ``.netrc``,
``~/.aws/credentials``, a kubeconfig, ``.pgpass``, ``.env``, shell history, ``wp-config.php``,
Spring ``application.properties``/``.yml``, Gradle ``gradle.properties``, Cargo
``~/.cargo/credentials(.toml)``, RubyGems ``~/.gem/credentials``, Composer ``auth.json``, the
GitHub CLI's ``gh/hosts.yml``, ...) is parsed, and each credential in it becomes a
:class:`~layerleak.models.Match` of that format's rule (``signatures/credential-files.toml``):
a docker ``auth`` is decoded to its password, a kubeconfig ``client-key-data`` to its PEM key, an
AWS secret key is found next to its id whatever its shape.

The rules' regexes still run in the engine, so a file that does not parse is covered by them.
When it does parse, the parser is authoritative for its own rules in that file, and the two are
merged: a parsed credential that overlaps a *specific* engine match (a vendor rule of high
confidence: an AWS key, a GitHub token) gives way to it; a *generic* engine match (any rule marked
generic or of lower confidence) gives way to the parsed credential, which knows what the value is.

Only files that fit in the first chunk the walk reads (``FILE_HEAD``, 8 MiB) are parsed; a larger
"credential file" is left to the regexes.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import yaml

from layerleak.detect import filters, validity
from layerleak.detect.engine import Engine
from layerleak.detect.entropy import shannon_entropy
from layerleak.models import Confidence, Match


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential found by a parser. ``raw`` is the value as written, at ``start`` in the text;
    ``secret`` is what it means (e.g. the password decoded from a docker ``auth``)."""

    rule_id: str
    secret: str
    raw: str
    start: int
    generic: bool = False  # judge it with the generic-only filters too (UUIDs, ...)
    filtered: bool = True  # judge it with the false-positive filters at all


Parser = Callable[[str, str], "list[Credential] | None"]  # (text, path) -> credentials | unparseable


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    path: re.Pattern[str]
    rule_ids: tuple[str, ...]
    parse: Parser


# --- small readers shared by the parsers ------------------------------------------------------


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset of the line in ``text``, the line without its newline)."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        yield pos, raw.rstrip("\r\n")
        pos += len(raw)


_INI_SECTION = re.compile(r"^\s*\[([^\]]*)\]")
_INI_PAIR = re.compile(r"^\s*([^=:#;\s][^=:]*?)\s*[=:]\s*(.*?)\s*$")


def ini_pairs(text: str) -> Iterator[tuple[str, str, str, int]]:
    """(section, key, value, offset of the value) of an INI-style file."""
    section = ""
    for pos, line in _lines(text):
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#;":
            continue
        head = _INI_SECTION.match(line)
        if head:
            section = head.group(1).strip()
            continue
        pair = _INI_PAIR.match(line)
        if pair and pair.group(2):
            yield section, pair.group(1), pair.group(2), pos + pair.start(2)


def _unquote(value: str, start: int) -> tuple[str, int]:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1], start + 1
    return value, start


def _yaml_scalars(text: str) -> list[tuple[tuple[str, ...], str, int]] | None:
    """(key path, value, offset) of every scalar under a mapping key, or None if not YAML."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    out: list[tuple[tuple[str, ...], str, int]] = []

    def walk(node: yaml.Node, keys: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    walk(value, (*keys, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, keys)
        elif isinstance(node, yaml.ScalarNode) and keys and isinstance(node.value, str):
            quoted = 1 if node.style in ("'", '"') else 0
            out.append((keys, node.value, node.start_mark.index + quoted))

    for doc in documents:
        if doc is not None:
            walk(doc, ())
    return out


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None


# --- the parsers ------------------------------------------------------------------------------


def parse_docker_config(text: str, path: str) -> list[Credential] | None:
    """``auths`` entries: ``auth`` is base64 of ``user:password``; tokens are taken as they are."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    auths = doc.get("auths", doc if path.endswith(".dockercfg") else {})
    out: list[Credential] = []
    if not isinstance(auths, dict):
        return out
    for entry in auths.values():
        if not isinstance(entry, dict):
            continue
        for field in ("auth", "identitytoken", "registrytoken", "password"):
            value = entry.get(field)
            if not isinstance(value, str) or not value:
                continue
            start = _find_json_value(text, field, value)
            secret = value
            if field == "auth":
                decoded = _b64(value)
                user, sep, password = (decoded or b"").decode("utf-8", "replace").partition(":")
                if not sep or not password:
                    continue
                secret = password
            out.append(Credential("docker-config-auth", secret, value, start))
    return out


def _find_json_value(text: str, field: str, value: str) -> int:
    m = re.search(rf'"{re.escape(field)}"\s*:\s*"({re.escape(json.dumps(value)[1:-1])})"', text)
    return m.start(1) if m else 0


def parse_netrc(text: str, path: str) -> list[Credential]:
    out: list[Credential] = []
    tokens = [(m.group(), m.start()) for m in re.finditer(r'"(?:[^"\\]|\\.)*"|\S+', text)]
    for (word, _), (value, start) in zip(tokens, tokens[1:], strict=False):
        if word == "password":
            secret, at = _unquote(value, start)
            out.append(Credential("netrc-password", secret, secret, at))
    return out


def parse_pypirc(text: str, path: str) -> list[Credential]:
    return [
        Credential("pypirc-password", value, value, start)
        for _, key, value, start in ini_pairs(text)
        if key.lower() == "password"
    ]


_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^\s:@/]*):(?P<password>[^\s@/]+)@")


def parse_git_credentials(text: str, path: str) -> list[Credential]:
    out: list[Credential] = []
    for pos, line in _lines(text):
        m = _URL_USERINFO.search(line)
        if m:
            raw = m.group("password")
            out.append(Credential("git-credentials", unquote(raw), raw, pos + m.start("password")))
    return out


_AWS_SECRET_KEYS = ("aws_secret_access_key", "aws_session_token", "aws_security_token")


def parse_aws_credentials(text: str, path: str) -> list[Credential]:
    """Every profile's secret key and session token, whatever their shape."""
    out: list[Credential] = []
    for _, key, value, start in ini_pairs(text):
        if key.lower() in _AWS_SECRET_KEYS:
            secret, at = _unquote(value, start)
            out.append(Credential("aws-credentials-secret", secret, secret, at))
    return out


_KUBE_TOKEN_KEYS = frozenset(
    {"token", "password", "access-token", "refresh-token", "id-token", "client-secret"}
)


def parse_kubeconfig(text: str, path: str) -> list[Credential] | None:
    scalars = _yaml_scalars(text)
    if scalars is None:
        return None
    out: list[Credential] = []
    for keys, value, start in scalars:
        key = keys[-1]
        if key in _KUBE_TOKEN_KEYS:
            out.append(Credential("kubeconfig-token", value, value, start))
        elif key == "client-key-data":
            decoded = (_b64(value) or b"").decode("utf-8", "replace")
            secret = decoded.strip() if "PRIVATE KEY-----" in decoded else value
            out.append(Credential("kubeconfig-client-key", secret, value, start))
    return out


def parse_pgpass(text: str, path: str) -> list[Credential]:
    """``hostname:port:database:username:password``; ``\\:`` and ``\\\\`` escape."""
    out: list[Credential] = []
    for pos, line in _lines(text):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = re.finditer(r"(?:[^:\\]|\\.)*", line)
        starts = [m.start() for m in fields if m.start() == 0 or line[m.start() - 1] == ":"]
        if len(starts) < 5:
            continue
        raw = line[starts[4] :]
        secret = re.sub(r"\\(.)", r"\1", raw)
        out.append(Credential("pgpass-password", secret, raw, pos + starts[4]))
    return out


# Names of variables that hold a credential, and suffixes that make such a name something else
# (a path to the secret, its length, its lifetime, ...).
SECRET_NAME = re.compile(
    r"(?i)passw(?:or)?d|passphrase|(?:^|_)pass$|(?:^|_)pwd$|secret|token|api_?key|access_?key|"
    r"private_?key|credentials?$|auth_?key|signing_?key|encryption_?key|master_?key"
)
NOT_SECRET_NAME = re.compile(
    r"(?i)(?:_FILE|_PATH|_DIR|_URL|_URI|_HOST|_PORT|_USER|_USERNAME|_NAME|_ID|_LENGTH|_LEN|_EXPIRY|"
    r"_EXPIRES|_EXPIRES_IN|_TTL|_TIMEOUT|_LIFETIME|_AGE|_ENABLED|_HEADER|_ALGORITHM|_ALG|_TYPE|"
    r"_ISSUER|_AUDIENCE|_FIELD|_PARAM|_PREFIX|_ROTATION|_REQUIRED|_MIN|_MAX|_VERSION|_REGION|"
    r"PUBLIC_KEY|_ENDPOINT|_FORMAT|_MODE|_SCOPE|_SCOPES)$"
)
_DOTENV = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<value>.*)$")


def _dotenv_value(value: str) -> tuple[str, int]:
    """(value, its offset inside ``value``): quotes removed, a trailing `` # comment`` dropped."""
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        return (value[1:end], 1) if end > 0 else (value[1:], 1)
    return re.split(r"\s+#", value, maxsplit=1)[0].rstrip(), 0


def parse_dotenv(text: str, path: str) -> list[Credential]:
    out: list[Credential] = []
    for pos, line in _lines(text):
        m = _DOTENV.match(line)
        if not m:
            continue
        key = m.group("key")
        value, shift = _dotenv_value(m.group("value"))
        start = pos + m.start("value") + shift
        url = _URL_USERINFO.search(value)
        if url:
            raw = url.group("password")
            out.append(Credential("dotenv-secret", unquote(raw), raw, start + url.start("password"), True))
        elif SECRET_NAME.search(key) and not NOT_SECRET_NAME.search(key) and _plausible(value):
            out.append(Credential("dotenv-secret", value, value, start, True))
    return out


def _plausible(value: str) -> bool:
    """A literal worth calling a credential: not a number, a switch, a path or a weak word."""
    if len(value) < 6 or value.isdigit() or value.lower() in ("true", "false", "yes", "no"):
        return False
    if value.startswith(("/", "./", "~/", "file:", "{cipher}")):
        return False
    return shannon_entropy(value) >= 2.5


_HISTORY_PREFIX = re.compile(r"^: \d+:\d+;")  # zsh EXTENDED_HISTORY
_HISTORY_PATTERNS = tuple(
    re.compile(p)
    for p in (
        # NAME=value, alone, after export, or before a command (PGPASSWORD=... psql)
        r"(?:^|[\s;&|(])(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<q>['\"]?)(?P<s>[^\s'\";&|]+)(?P=q)",
        # mysql -pSECRET, mysqldump -pSECRET
        r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b.*?\s-p(?P<q>['\"]?)(?P<s>[^\s'\"]+)(?P=q)",
        # --password=SECRET, --password SECRET, --token SECRET, ...
        r"\s--(?:password|passwd|pass|token|api-key|apikey|secret|client-secret|access-token)"
        r"(?:=|\s+)(?P<q>['\"]?)(?P<s>[^\s'\"-][^\s'\"]*)(?P=q)",
        # docker/podman/helm login -p SECRET
        r"\b(?:docker|podman|buildah|skopeo|helm|oras|crane)\b.*\blogin\b.*?\s-p\s*(?P<q>['\"]?)(?P<s>[^\s'\"]+)(?P=q)",
        # sshpass -p SECRET
        r"\bsshpass\s+-p\s*(?P<q>['\"]?)(?P<s>[^\s'\"]+)(?P=q)",
        # curl -u user:SECRET, curl --user user:SECRET
        r"\bcurl\b.*?\s(?:-u|--user)[\s=]*(?P<q>['\"]?)[^\s:'\"]+:(?P<s>[^\s'\"]+)(?P=q)",
        # htpasswd -b[...] FILE USER SECRET
        r"\bhtpasswd\s+-\w*b\w*\s+\S+\s+\S+\s+(?P<q>['\"]?)(?P<s>[^\s'\"]+)(?P=q)",
        # Authorization: Bearer SECRET
        r"(?i:authorization)\s*:\s*(?i:bearer|basic|token)\s+(?P<s>[A-Za-z0-9._~+/=-]{8,})",
        # scheme://user:SECRET@host
        r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/]*:(?P<s>[^\s@/'\"]+)@",
    )
)
MAX_HISTORY_LINE = 4096


def parse_shell_history(text: str, path: str) -> list[Credential]:
    out: list[Credential] = []
    for pos, full in _lines(text):
        line = full[:MAX_HISTORY_LINE]
        prefix = _HISTORY_PREFIX.match(line)
        skip = prefix.end() if prefix else 0
        seen: set[int] = set()
        for pattern in _HISTORY_PATTERNS:
            for m in pattern.finditer(line, skip):
                name = m.groupdict().get("name")
                if name is not None and (not SECRET_NAME.search(name) or NOT_SECRET_NAME.search(name)):
                    continue
                raw = m.group("s")
                if m.start("s") in seen or not _plausible(raw):
                    continue
                seen.add(m.start("s"))
                out.append(Credential("shell-history-secret", raw, raw, pos + m.start("s"), True))
    return out


_WP_DEFINE = re.compile(
    r"""define\(\s*['"](?P<name>DB_PASSWORD|(?:AUTH|SECURE_AUTH|LOGGED_IN|NONCE)_(?:KEY|SALT))['"]"""
    r"""\s*,\s*(?P<q>['"])(?P<value>.*?)(?P=q)\s*\)"""
)


def parse_wp_config(text: str, path: str) -> list[Credential]:
    out: list[Credential] = []
    for m in _WP_DEFINE.finditer(text):
        value = m.group("value")
        if m.group("name") == "DB_PASSWORD":
            out.append(Credential("wp-config-password", value, value, m.start("value"), True))
        elif len(value) >= 16 and "put your unique phrase" not in value.lower():
            # Salts are random printable text, "<" and ">" included: no placeholder filter here.
            out.append(Credential("wp-config-auth-key", value, value, m.start("value"), filtered=False))
    return out


_SPRING_SECRET_LEAVES = frozenset(
    {
        "password", "secret", "clientsecret", "apikey", "token", "accesskey", "secretkey",
        "privatekey", "keystorepassword", "truststorepassword", "keypassword",
    }
)


def _spring_rule(key: str) -> str | None:
    parts = key.lower().split(".")
    if parts[:2] == ["spring", "datasource"] and parts[-1] == "password":
        return "spring-datasource-password"
    leaf = parts[-1].replace("-", "").replace("_", "")
    return "spring-property-secret" if leaf in _SPRING_SECRET_LEAVES else None


def _properties(text: str) -> Iterator[tuple[str, str, int]]:
    """(key, value, offset of the value) of a Java .properties file (no continuation lines)."""
    for pos, line in _lines(text):
        m = re.match(r"^\s*([^#!\s=:][^=:\s]*)\s*[=:\s]\s*(.*?)\s*$", line)
        if m and m.group(2):
            yield m.group(1), m.group(2), pos + m.start(2)


def parse_spring(text: str, path: str) -> list[Credential] | None:
    if path.endswith(".properties"):
        pairs: Sequence[tuple[str, str, int]] = list(_properties(text))
    else:
        scalars = _yaml_scalars(text)
        if scalars is None:
            return None
        pairs = [(".".join(keys), value, start) for keys, value, start in scalars]
    out: list[Credential] = []
    for key, value, start in pairs:
        rule_id = _spring_rule(key)
        if rule_id and not value.startswith("{cipher}"):
            out.append(Credential(rule_id, value, value, start, True))
    return out


_GRADLE_SECRET = re.compile(
    r"(?i)(?:password|passwd|passphrase|secret|token|api_?key|access_?key|secret_?key|auth_?key)$"
    r"|^gpr\.key$"
)


def parse_gradle_properties(text: str, path: str) -> list[Credential]:
    """``gradle.properties``: ``signing.password``, ``ossrhPassword``, ``gpr.key``, proxy
    passwords, ... (a key whose last word names a secret, camelCase or dotted)."""
    out: list[Credential] = []
    for key, value, start in _properties(text):
        if _GRADLE_SECRET.search(key) and _plausible(value):
            out.append(Credential("gradle-properties-secret", value, value, start, True))
    return out


def _value_at(text: str, value: str, after: int = 0) -> int:
    """Where ``value`` is written in ``text`` (quoted or not), at or after ``after``; 0 if not."""
    at = text.find(value, after)
    return at if at >= 0 else max(text.find(value), 0)


def parse_cargo_credentials(text: str, path: str) -> list[Credential] | None:
    """``~/.cargo/credentials(.toml)``: ``[registry] token`` and ``[registries.NAME] token``, and
    the ``secret-key`` of asymmetric (PASETO) tokens."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeError):
        return None
    tables: list[object] = [doc.get("registry")]
    registries = doc.get("registries")
    if isinstance(registries, dict):
        tables.extend(registries.values())
    out: list[Credential] = []
    cursor = 0  # tables are read in file order: each value is looked for after the one before
    for table in tables:
        if not isinstance(table, dict):
            continue
        for field in ("token", "secret-key"):
            value = table.get(field)
            if isinstance(value, str) and value:
                at = _value_at(text, value, cursor)
                cursor = at + len(value)
                out.append(Credential("cargo-credentials-token", value, value, at))
    return out


def parse_gem_credentials(text: str, path: str) -> list[Credential] | None:
    """``~/.gem/credentials``: YAML of ``:rubygems_api_key: KEY`` and ``HOST: [Bearer] KEY``."""
    scalars = _yaml_scalars(text)
    if scalars is None:
        return None
    out: list[Credential] = []
    for keys, value, start in scalars:
        if len(keys) != 1:
            continue
        secret, at = value, start
        if secret.lower().startswith("bearer "):
            secret, at = secret[7:].strip(), start + len(value) - len(secret[7:].strip())
        if secret:
            out.append(Credential("gem-credentials-key", secret, secret, at))
    return out


_COMPOSER_SECTIONS = (
    "http-basic", "github-oauth", "gitlab-oauth", "gitlab-token", "bitbucket-oauth", "bearer",
    "forgejo-token",
)


def parse_composer_auth(text: str, path: str) -> list[Credential] | None:
    """Composer ``auth.json``: ``http-basic`` passwords, ``github-oauth``/``gitlab-*``/``bearer``
    tokens (by host), ``bitbucket-oauth`` consumer secrets. Not Composer's: None."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not any(k in doc for k in _COMPOSER_SECTIONS):
        return None
    out: list[Credential] = []
    for section in _COMPOSER_SECTIONS:
        hosts = doc.get(section)
        if not isinstance(hosts, dict):
            continue
        for host, entry in hosts.items():
            if isinstance(entry, str) and entry:
                start = _find_json_value(text, host, entry)
                out.append(Credential("composer-auth-secret", entry, entry, start))
                continue
            if not isinstance(entry, dict):
                continue
            for field in ("password", "token", "consumer-secret"):
                value = entry.get(field)
                if isinstance(value, str) and value:
                    start = _find_json_value(text, field, value)
                    out.append(Credential("composer-auth-secret", value, value, start))
    return out


def parse_gh_hosts(text: str, path: str) -> list[Credential] | None:
    """The GitHub CLI's ``hosts.yml``: an ``oauth_token`` per host, and per user under ``users``."""
    scalars = _yaml_scalars(text)
    if scalars is None:
        return None
    return [
        Credential("gh-cli-oauth-token", value, value, start)
        for keys, value, start in scalars
        if keys[-1] == "oauth_token" and value
    ]


# --- which files are which --------------------------------------------------------------------

KINDS: tuple[Kind, ...] = (
    Kind(
        "docker-config",
        re.compile(r"(?:^|/)(?:\.docker/config\.json|\.dockercfg|containers/auth\.json)$"),
        ("docker-config-auth",),
        parse_docker_config,
    ),
    Kind("netrc", re.compile(r"(?:^|/)[._]netrc$"), ("netrc-password",), parse_netrc),
    Kind("pypirc", re.compile(r"(?:^|/)\.pypirc$"), ("pypirc-password",), parse_pypirc),
    Kind(
        "git-credentials",
        re.compile(r"(?:^|/)(?:\.git-credentials|\.config/git/credentials)$"),
        ("git-credentials",),
        parse_git_credentials,
    ),
    Kind(
        "aws-credentials",
        re.compile(r"(?:^|/)\.aws/(?:credentials|config)$"),
        ("aws-credentials-secret",),
        parse_aws_credentials,
    ),
    Kind(
        "kubeconfig",
        re.compile(r"(?:^|/)(?:\.kube/config|kubeconfig|[^/]+\.kubeconfig|etc/kubernetes/[^/]+\.conf)$"),
        ("kubeconfig-token", "kubeconfig-client-key"),
        parse_kubeconfig,
    ),
    Kind("pgpass", re.compile(r"(?:^|/)\.pgpass$"), ("pgpass-password",), parse_pgpass),
    Kind(
        "dotenv",
        re.compile(r"(?:^|/)(?:\.env(?:\.[A-Za-z0-9_.-]+)?|[A-Za-z0-9_.-]+\.env)$"),
        ("dotenv-secret",),
        parse_dotenv,
    ),
    Kind(
        "shell-history",
        re.compile(r"(?:^|/)\.(?:bash|zsh|ash|sh|ksh)_history$"),
        ("shell-history-secret",),
        parse_shell_history,
    ),
    Kind(
        "wp-config",
        re.compile(r"(?:^|/)wp-config\.php$"),
        ("wp-config-password", "wp-config-auth-key"),
        parse_wp_config,
    ),
    Kind(
        "gradle-properties",
        re.compile(r"(?:^|/)gradle\.properties$"),
        ("gradle-properties-secret",),
        parse_gradle_properties,
    ),
    Kind(
        "cargo-credentials",
        re.compile(r"(?:^|/)\.cargo/credentials(?:\.toml)?$"),
        ("cargo-credentials-token",),
        parse_cargo_credentials,
    ),
    Kind("gem-credentials", re.compile(r"(?:^|/)\.gem/credentials$"), ("gem-credentials-key",),
         parse_gem_credentials),
    Kind("composer-auth", re.compile(r"(?:^|/)auth\.json$"), ("composer-auth-secret",), parse_composer_auth),
    Kind("gh-hosts", re.compile(r"(?:^|/)gh/hosts\.ya?ml$"), ("gh-cli-oauth-token",), parse_gh_hosts),
    Kind(
        "spring",
        re.compile(r"(?:^|/)(?:application|bootstrap)(?:-[A-Za-z0-9_.-]+)?\.(?:properties|ya?ml)$"),
        ("spring-datasource-password", "spring-property-secret"),
        parse_spring,
    ),
)


def _quick(base: str) -> bool:
    """A cheap test on the file name before any regex: most files are nothing of the above."""
    return (
        base in _NAMES
        or base.startswith((".env", "application", "bootstrap"))
        or base.endswith((".env", "_history", ".kubeconfig", "netrc"))
    )


_NAMES = frozenset(
    {"config.json", ".dockercfg", "auth.json", ".pypirc", ".git-credentials", "credentials", "config",
     "kubeconfig", ".pgpass", "wp-config.php", "gradle.properties", "credentials.toml", "hosts.yml",
     "hosts.yaml"} | {f"{k}.conf" for k in ("admin", "kubelet",
     "controller-manager", "scheduler", "super-admin")}
)


def kind_for(path: str, base: str | None = None) -> Kind | None:
    """The credential format of the file at ``path``, if it is one (``base``: its file name,
    when the caller has it)."""
    if not _quick(posixpath.basename(path) if base is None else base):
        return None
    for kind in KINDS:
        if kind.path.search(path):
            return kind
    return None


# --- merging with the engine's matches --------------------------------------------------------


def _specific(engine: Engine, rule_id: str) -> bool:
    rule = engine.rule(rule_id)
    return not rule.generic and rule.confidence is Confidence.HIGH


def with_credentials(
    path: str,
    data: bytes,
    found: list[Match],
    engine: Engine,
    kind: Kind | None,
) -> list[Match]:
    """The engine's matches in a whole file (``data``), merged with what the file's parser finds.
    ``kind``: the file's :func:`kind_for`, looked up once per file by the caller."""
    if kind is None:
        return found
    text = data.decode("utf-8", "surrogateescape")
    try:
        creds = kind.parse(text, path)
    except (ValueError, RecursionError):
        creds = None
    if creds is None:
        return found  # not parseable as its format: the regexes have their say
    own = set(kind.rule_ids)
    engine_matches = [m for m in found if m.rule_id not in own]
    parsed: list[Match] = []
    for cred in creds:
        try:
            rule = engine.rule(cred.rule_id)
        except KeyError:
            continue  # the rule is not loaded
        if not cred.secret.strip():
            continue
        line_no = text.count("\n", 0, cred.start) + 1
        lo, hi = text.rfind("\n", 0, cred.start) + 1, text.find("\n", cred.start)
        context = text[lo : hi if hi >= 0 else len(text)]
        if cred.filtered and filters.rejection(cred.secret, context, generic=cred.generic):
            continue
        offset = len(text[: cred.start].encode("utf-8", "surrogateescape"))
        overlapping = [m for m in engine_matches if _overlaps(m, offset, len(cred.raw.encode()))]
        if any(_specific(engine, m.rule_id) for m in overlapping):
            continue
        engine_matches = [m for m in engine_matches if m not in overlapping]
        parsed.append(
            validity.judged(
                Match(rule_id=rule.id, secret=cred.secret, offset=offset, line=line_no,
                      confidence=rule.confidence)
            )
        )
    # In a parsed file, a generic match that overlaps a specific one is the same value seen twice.
    engine_matches = [
        m for m in engine_matches
        if _specific(engine, m.rule_id)
        or not any(_overlaps(s, m.offset, len(m.secret)) and _specific(engine, s.rule_id)
                   for s in engine_matches)
    ]
    return sorted(engine_matches + parsed, key=lambda m: (m.offset, m.rule_id))


def _overlaps(m: Match, start: int, length: int) -> bool:
    end = m.offset + len(m.secret.encode("latin-1", "replace"))
    return m.offset < start + max(length, 1) and start < end


def merge_hits(
    path: str,
    data: bytes,
    hits: Iterable[tuple[str | None, Match]],
    engine: Engine,
    kind: Kind | None,
) -> Iterator[tuple[str | None, Match]]:
    """:func:`with_credentials` over a file's (inner_path, match) hits: the file's own matches
    (inner_path None) are merged with its parsed credentials; decoded or nested ones pass through.
    ``kind`` as for with_credentials."""
    own: list[Match] = []
    inner: list[tuple[str | None, Match]] = []
    for where, match in hits:
        if where is None:
            own.append(match)
        else:
            inner.append((where, match))
    merged = with_credentials(path, data, own, engine, kind)
    parsed = [m.secret for m in merged if kind is not None and m.rule_id in kind.rule_ids]
    for match in merged:
        yield None, match
    for where, match in inner:
        # A decoded view of a value the parser already read (a kubeconfig's client-key-data is
        # base64 of a PEM key): the same credential, already reported.
        if not any(_same_secret(match.secret, secret) for secret in parsed):
            yield where, match


def _same_secret(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    return len(min(a, b, key=len)) >= 8 and (a in b or b in a)
