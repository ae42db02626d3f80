"""THE leak test: no planted secret leaves the process unless ``--show-secrets`` asks for it.

One image holds every secret shape the rules know: every positive example of every built-in rule
(each in its own file, at the path the rule expects), and on top of them the shapes that used to
slip through: a one-line PEM, a JSON-escaped PEM in a GCP service-account key, a PEM inside a
binary, a long token, multi-line values, secrets inside nested archives (a jar in a jar, a tar.gz,
a .gz log, a truncated .gz that raises a warning), base64-encoded values, and secrets in ENV,
labels, Cmd and build-arg history, one of them also written to a file by the step that shows it.
Every random part is generated here, now.

The image is scanned with every ``--format`` the CLI offers (read from the click option, so a
format added later is covered without a change here), cold (writing the cache) into ``-o FILE``,
warm (from the cache) to stdout, and once with stderr on a terminal, so the progress bar is drawn.
No run may show any 12-character stretch of a planted secret that holds a random character: not
stdout, not stderr, not the report file, not any byte of any file under the cache directory
(the SQLite file, its WAL, and the zlib bodies inside it). The same runs with ``--show-secrets``
must show the secrets, which proves the check can fail.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pty
import random
import re
import secrets
import select
import sqlite3
import string
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick
import click
import handmade
import pytest
from handmade import LegacyImage, directory, file, gzipped, image_config, layer_tar, whiteout

from layerleak.cli import scan as scan_command
from layerleak.detect.engine import Engine
from layerleak.detect.examples import armor, expand
from layerleak.detect.rules import load_rules

WINDOW = 12  # a stretch of a secret this long must never be shown
TIMEOUT_S = 300
RULES = load_rules(())
ENGINE = Engine(RULES)
_FIELD = re.compile(r"\{\{([A-Za-z0-9-]+):([^{}]+)\}\}")
_B64 = string.ascii_letters + string.digits + "+/"
_ALNUM = string.ascii_letters + string.digits


def _formats() -> list[str]:
    option = next(p for p in scan_command.params if "--format" in getattr(p, "opts", ()))
    assert isinstance(option.type, click.Choice)
    return [str(c) for c in option.type.choices]


# --- what is planted, with which characters are random ----------------------------------------


@dataclass
class Plant:
    """Text with a mask of its random characters; the needles are the stretches to look for."""

    text: str = ""
    mask: list[bool] = field(default_factory=list)

    def add(self, text: str, random_part: bool) -> Plant:
        self.text += text
        self.mask += [random_part] * len(text)
        return self

    def pem(self, label: str, lines: int, sep: str = "\n") -> Plant:
        self.add(armor("BEGIN", label), False)
        for _ in range(lines):
            self.add(sep, False).add("".join(secrets.choice(_B64) for _ in range(64)), True)
        return self.add(sep, False).add(armor("END", label), False)


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    """Random text; from an alphabet with letters, it has digits and capitals too (no word)."""
    while True:
        text = "".join(secrets.choice(alphabet) for _ in range(n))
        if not any(c.isalpha() for c in alphabet):
            return text
        if sum(c.isdigit() for c in text) >= 2 and sum(c.isupper() for c in text) >= 2:
            return text


def _masked_example(template: str, rng: random.Random) -> Plant:
    plant = Plant()
    pos = 0
    for m in _FIELD.finditer(template):
        plant.add(template[pos : m.start()], False)
        value = expand(m.group(0), rng)
        kind = m.group(1)
        if kind == "pem":
            for i, line in enumerate(value.split("\n")):
                plant.add("\n" if i else "", False).add(line, not line.startswith("-----"))
        else:
            plant.add(value, kind not in ("begin", "end"))
        pos = m.end()
    return plant.add(template[pos:], False)


@dataclass
class Planted:
    files: dict[str, bytes] = field(default_factory=dict)
    needles: set[str] = field(default_factory=set)  # every WINDOW-long random-bearing stretch
    secrets: list[str] = field(default_factory=list)  # what --show-secrets must show, one each

    def secret(self, plant: Plant, value: str | None = None) -> str:
        """Record ``value`` (default: the whole text), a secret inside ``plant``, as planted."""
        value = plant.text if value is None else value
        start = plant.text.index(value)
        mask = plant.mask[start : start + len(value)]
        for i in range(max(1, len(value) - WINDOW + 1)):
            if any(mask[i : i + WINDOW]) and len(value) >= WINDOW:
                self.needles.add(value[i : i + WINDOW])
        self.secrets.append(value)
        return value

    def raw(self, value: str) -> None:
        """Every stretch of ``value`` is secret (a base64 form of a secret)."""
        self.secret(Plant().add(value, True))
        self.secrets.pop()


def _rule_examples(planted: Planted) -> None:
    for rule in RULES:
        for i, template in enumerate(rule.examples.positive):
            for _draw in range(20):  # a redraw when random parts spell a placeholder word
                plant = _masked_example(template, random.Random(secrets.randbits(64)))
                data = plant.text.encode("latin-1")
                found = [m for m in ENGINE.scan(data, rule.examples.path) if m.rule_id == rule.id]
                if found:
                    break
            else:
                pytest.fail(f"rule {rule.id}: example {i} never matched in 20 draws")
            for m in ENGINE.scan(data, rule.examples.path):
                start = len(data[: m.offset].decode("latin-1"))
                if plant.text[start : start + len(m.secret)] == m.secret:
                    planted.secret(plant, m.secret)
            where = rule.examples.path or "example.txt"
            planted.files[f"srv/examples/{rule.id}/{i}/{where.lstrip('/')}"] = data


def _jar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar_gz(files: dict[str, bytes]) -> bytes:
    return gzipped(layer_tar([file(name, data) for name, data in files.items()]))


def _ghp() -> str:
    return "ghp_" + _rand(36)


def _shapes(planted: Planted) -> tuple[dict[str, str], list[str], str]:
    """The hand-made shapes. Returns the image's labels, env and the build-arg history step."""
    files = planted.files
    # A PEM on one line, as in a config value with its newlines lost.
    one_line = Plant().add('tls_key = "', False).pem("PRIVATE KEY", 20, sep="").add('"\n', False)
    planted.secret(one_line, one_line.text[len('tls_key = "') : -2])
    files["etc/app/tls.conf"] = one_line.text.encode()
    # A GCP service-account key: the PEM with JSON "\n" escapes.
    key_id = "".join(secrets.choice("0123456789abcdef") for _ in range(40))
    pem = Plant().pem("PRIVATE KEY", 26, sep="\\n").add("\\n", False)
    gcp = (
        Plant()
        .add('{\n  "type": "service_account",\n  "project_id": "demo-411",\n  "private_key_id": "', False)
        .add(key_id, True)
        .add('",\n  "private_key": "', False)
    )
    gcp.text += pem.text
    gcp.mask += pem.mask
    gcp.add('",\n  "client_email": "ci@demo-411.iam.gserviceaccount.com"\n}\n', False)
    planted.secret(gcp, pem.text.removesuffix("\\n"))
    planted.secret(gcp, key_id)
    files["srv/app/gcp-key.json"] = gcp.text.encode()
    # A PEM with real newlines inside a binary, between bytes that are no text at all.
    in_binary = Plant().pem("RSA PRIVATE KEY", 25)
    planted.secret(in_binary)
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8
    files["usr/local/bin/agent"] = elf + in_binary.text.encode() + b"\0" + os.urandom(3000)
    # A long token: a JWT whose payload is 1,500 characters.
    jwt = Plant().add("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", False).add("eyJ", False)
    jwt.add(_rand(1500, _ALNUM + "_-"), True).add(".", False).add(_rand(43, _ALNUM + "_-"), True)
    line = Plant().add("Authorization: Bearer ", False)
    line.text += jwt.text + "\n"
    line.mask += [*jwt.mask, False]
    planted.secret(line, jwt.text)
    files["srv/app/request.txt"] = line.text.encode()
    # Nested archives: a jar inside a jar, a tar.gz, a .gz log, and a truncated .gz (a warning).
    slack = Plant().add("xoxb-", False).add(f"{secrets.randbelow(9) + 1}{_rand(11, string.digits)}", True)
    slack.add("-", False).add(f"{secrets.randbelow(9) + 1}{_rand(12, string.digits)}", True)
    slack.add("-", False).add(_rand(24), True)
    properties = Plant().add("notify.channel=#ops\nslack.token=", False)
    properties.text += slack.text + "\n"
    properties.mask += [*slack.mask, False]
    planted.secret(properties, slack.text)
    inner = _jar({"notify.properties": properties.text.encode()})
    files["app/lib/service.jar"] = _jar({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
                                         "WEB-INF/lib/notify.jar": inner})
    key_id_aws = "AKIA" + _rand(16, string.ascii_uppercase + "234567")
    secret_aws = _rand(40, _ALNUM + "/+")
    creds = Plant().add("[default]\naws_access_key_id = ", False).add(key_id_aws, True)
    creds.add("\naws_secret_access_key = ", False).add(secret_aws, True).add("\n", False)
    planted.secret(creds, key_id_aws)
    planted.secret(creds, secret_aws)
    files["srv/backup/home.tar.gz"] = _tar_gz({"home/dev/.aws/credentials": creds.text.encode()})
    for name, truncate in (("var/log/app.log.1.gz", False), ("var/log/app.log.2.gz", True)):
        token = _ghp()
        log = Plant().add("2026-01-01 GET /repos with Authorization: token ", False).add(token, True)
        log.add("\n" + "2026-01-01 200 OK\n" * 2000, False)
        planted.secret(log, token)
        blob = gzipped(log.text.encode())
        files[name] = blob[:-12] if truncate else blob  # the token is early: it stays readable
    # Base64: a Kubernetes Secret (the decoder finds the token; its base64 form is secret too).
    token = _ghp()
    planted.secret(Plant().add(token, True))
    encoded = base64.b64encode(f"token={token}".encode()).decode()
    planted.raw(encoded)
    files["srv/k8s/secret.yaml"] = (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\ndata:\n  credentials: {encoded}\n"
    ).encode()
    # A multi-line value: the PEM with real newlines in a plain file, deleted by the next layer.
    deleted = Plant().pem("OPENSSH PRIVATE KEY", 12)
    planted.secret(deleted)
    files["root/.ssh/id_ed25519"] = deleted.text.encode()
    # Config: ENV, a label, Cmd; history: build args (one masked only by its name) and a RUN step
    # that writes the same token to a file (so the warm path must find the sealed secret in it).
    env_token, label_token, cmd_token, step_token = _ghp(), _ghp(), _ghp(), _ghp()
    env_secret = _rand(40, _ALNUM + "/+")
    for value in (env_token, label_token, cmd_token, step_token, env_secret):
        planted.secret(Plant().add(value, True))
    files["root/.config/gh/token"] = f"{step_token}\n".encode()
    db_password = _rand(24)
    planted.raw(db_password)  # no rule knows it: masked because of its name, never reported
    env = [
        f"GITHUB_TOKEN={env_token}",
        f"AWS_SECRET_ACCESS_KEY={env_secret}",
        f"AWS_ACCESS_KEY_ID={key_id_aws}",
    ]
    cmd_text = f"/bin/sh -c /usr/local/bin/agent --token {cmd_token}"
    labels = {"org.example.deploy-token": label_token, "org.example.cmd": cmd_text}
    step = (
        f"|2 DB_PASSWORD={db_password} GH_TOKEN={step_token} "
        "/bin/sh -c echo $GH_TOKEN > /root/.config/gh/token"
    )
    return labels, env, step


def _build(outdir: Path) -> tuple[Path, Planted]:
    planted = Planted()
    _rule_examples(planted)
    labels, env, step = _shapes(planted)
    dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in planted.files for i in range(p.count("/"))})
    layer0 = layer_tar([*(directory(d) for d in dirs), *(file(p, d) for p, d in planted.files.items())])
    layer1 = layer_tar([directory("root"), directory("root/.ssh"), whiteout("root/.ssh/id_ed25519")])
    config = image_config(
        [layer0, layer1],
        [{"created_by": step}, {"created_by": "/bin/sh -c rm /root/.ssh/id_ed25519"}],
        env=env,
        labels=labels,
    )
    data = json.loads(config.data)
    data["config"]["Cmd"] = ["/bin/sh", "-c", labels["org.example.cmd"]]
    config = handmade.Blob(json.dumps(data, indent=2).encode(), config.media_type)
    path = outdir / "every-shape.tar"
    handmade.write_docker_archive(path, [LegacyImage(["leaks:every-shape"], [layer0, layer1], config)])
    return path, planted


# --- looking for them ---------------------------------------------------------------------------


class Needles:
    def __init__(self, needles: set[str]) -> None:
        self.automaton = ahocorasick.Automaton()
        for needle in needles:
            for form in {needle, json.dumps(needle)[1:-1], needle.replace("\n", " ")}:
                self.automaton.add_word(form, needle)
        self.automaton.make_automaton()

    def found(self, data: bytes | str) -> set[str]:
        text = data.decode("latin-1") if isinstance(data, bytes) else data
        return {needle for _, needle in self.automaton.iter(text)}


@dataclass(frozen=True)
class Run:
    argv: list[str]
    code: int
    stdout: bytes
    stderr: bytes


def _env(home: Path, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LAYERLEAK_CACHE_DIR": str(cache),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def _run(args: list[str], env: dict[str, str]) -> Run:
    argv = [sys.executable, "-m", "layerleak", "scan", *args]
    done = subprocess.run(argv, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
    return Run(args, done.returncode, done.stdout, done.stderr)


def _run_on_a_terminal(args: list[str], env: dict[str, str], out: Path) -> Run:
    """stderr on a pseudo-terminal, so the progress bar is drawn; everything it drew is read."""
    parent, child = pty.openpty()
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "layerleak", "scan", *args],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=child, env=env,
        )
    os.close(child)
    drawn = bytearray()
    while True:
        ready, _, _ = select.select([parent], [], [], TIMEOUT_S)
        if not ready:
            proc.kill()
            pytest.fail("the scan on a terminal did not finish")
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # the child side closed: the process is done with the terminal
            break
        if not chunk:
            break
        drawn += chunk
    code = proc.wait(TIMEOUT_S)
    os.close(parent)
    return Run(args, code, out.read_bytes(), bytes(drawn))


def _cache_bytes(cache: Path) -> dict[str, bytes]:
    """Every file under the cache directory, raw; then every cell of the database, the zlib
    bodies inflated (read after the raw bytes, so the WAL is seen as the scans left it)."""
    seen = {str(p): p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}
    db_path = cache / "layers.sqlite3"
    assert db_path.is_file(), f"no cache was written: {sorted(seen)}"
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    cells: list[bytes] = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):
            for cell in row:
                if isinstance(cell, bytes):
                    try:
                        cells.append(zlib.decompress(cell))
                    except zlib.error:
                        cells.append(cell)
                elif cell is not None:
                    cells.append(str(cell).encode())
    db.close()
    assert counts.get("layers", 0) >= 2 and counts.get("hits", 0) > 100, f"the cache holds little: {counts}"
    seen["database cells"] = b"\n".join(cells)
    return seen


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    return _build(tmp_path_factory.mktemp("leaks"))


def _leaks(needles: Needles, where: str, data: bytes) -> list[str]:
    found = needles.found(data)
    return [f"{where}: {len(found)} stretches, e.g. {sorted(found)[:3]!r}"] if found else []


@pytest.mark.parametrize("fmt", _formats())
def test_no_planted_secret_leaves_the_process(
    fmt: str, image: tuple[Path, Planted], tmp_path: Path
) -> None:
    target, planted = image
    needles = Needles(planted.needles)
    cache = tmp_path / "cache"
    env = _env(tmp_path / "home", cache)
    report = tmp_path / f"report.{fmt}"
    common = [f"docker-archive:{target}", "--format", fmt, "--min-confidence", "low"]
    cold = _run([*common, "-o", str(report), "--no-progress"], env)
    warm = _run(common, env)  # every layer from the cache: sealed matches, scrubbed again
    drawn = _run_on_a_terminal(common, _env(tmp_path / "home", tmp_path / "cache-tty"), tmp_path / "out")
    leaks: list[str] = []
    for name, run in (("cold", cold), ("warm", warm), ("terminal", drawn)):
        assert run.code == 1, f"{name}: exit {run.code}\n{run.stderr.decode()[-3000:]}"
        leaks += _leaks(needles, f"{name} stdout", run.stdout)
        leaks += _leaks(needles, f"{name} stderr", run.stderr)
    assert report.stat().st_size > 0 and cold.stdout == b""
    leaks += _leaks(needles, "-o file", report.read_bytes())
    for directory_ in (cache, tmp_path / "cache-tty"):
        for where, data in _cache_bytes(directory_).items():
            leaks += _leaks(needles, where, data)
    assert warm.stdout == report.read_bytes(), "the warm scan reports what the cold one did"
    assert b"\x1b[" in drawn.stderr and b"sha256:" in drawn.stderr, "the progress bar was drawn"
    assert b"warning" in cold.stderr, "the truncated .gz log raises a warning"
    assert not leaks, "plaintext left the process:\n" + "\n".join(leaks)
    # The check can fail: with --show-secrets, this format shows the secrets.
    shown = _run([*common, "--show-secrets", "--no-progress"], env)
    assert shown.code == 1, shown.stderr.decode()[-3000:]
    assert needles.found(shown.stdout), f"--format {fmt} --show-secrets shows no planted secret"


def test_every_planted_secret_is_found_and_only_show_secrets_shows_it(
    image: tuple[Path, Planted], tmp_path: Path
) -> None:
    target, planted = image
    env = _env(tmp_path / "home", tmp_path / "cache")
    common = [f"docker-archive:{target}", "--format", "json", "--min-confidence", "low", "--no-progress"]
    redacted = json.loads(_run(common, env).stdout)
    shown = json.loads(_run([*common, "--show-secrets"], env).stdout)  # from the cache: rescans
    assert shown["secrets_shown"] is True and redacted["secrets_shown"] is False
    assert len(redacted["findings"]) == len(shown["findings"]) >= len(set(planted.secrets))
    values = [f["secret"] for f in shown["findings"]]
    missing = [s for s in set(planted.secrets) if not any(s in v for v in values)]
    assert not missing, f"{len(missing)} planted secrets not reported, e.g. {missing[:3]!r}"
    for finding in redacted["findings"]:
        assert finding["redacted"] is True and len(finding["secret"]) <= 48, finding["secret"]
    # history and layer steps: the build args are masked, the RUN step's token is scrubbed
    steps = [layer["created_by"] for t in redacted["targets"] for layer in t["layers"]]
    assert steps[0].startswith("|2 DB_PASSWORD=") and "********" in steps[0], steps[0]
