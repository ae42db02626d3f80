"""Baselines and ignores survive a rebuild: lines move, layers get new digests and indexes, and
the findings a team already dealt with stay out of the report, counted, without failing CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plant
import pytest
from handmade import LegacyImage, directory, file, image_config, layer_tar, whiteout, write_docker_archive


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        doc = json.loads(self.stdout)
        assert isinstance(doc, dict)
        return doc


def layerleak(*args: str, cwd: Path, home: Path) -> Run:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "NO_COLOR": "1"}
    env.pop("COLUMNS", None)
    done = subprocess.run([sys.executable, "-m", "layerleak", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    return Run(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    v1: Path
    v2: Path
    kept: str  # in both builds, at another line and in another layer in v2
    deleted: str  # in both, in a file a later layer deletes
    new: str  # only in v2


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Rebuilt:
    out = tmp_path_factory.mktemp("rebuild")
    kept, deleted, new = plant.github_pat_classic(), plant.github_pat_classic(), plant.github_pat_classic()

    def image(path: Path, tag: str, layers: list[bytes], steps: list[str]) -> None:
        config = image_config(layers, [{"created_by": s} for s in steps])
        write_docker_archive(path, [LegacyImage([tag], layers, config)])

    v1_layers = [
        layer_tar([directory("app"), file("app/.env", f"# v1\nGITHUB_TOKEN={kept}\n")]),
        layer_tar([directory("etc"), file("etc/deploy.conf", f"token: {deleted}\n")]),
        layer_tar([directory("etc"), whiteout("etc/deploy.conf")]),
    ]
    image(out / "v1.tar", "app:1", v1_layers,
          ["COPY .env /app/.env", "COPY deploy.conf /etc/", "RUN rm /etc/deploy.conf"])
    v2_layers = [
        layer_tar([directory("usr"), file("usr/README", "rebuilt with a new base layer\n")]),
        layer_tar([directory("app"), file("app/.env", f"# v2\n# moved down\n\n\nGITHUB_TOKEN={kept}\n")]),
        layer_tar([directory("etc"), file("etc/deploy.conf", f"# v2\nurl: https://x\ntoken: {deleted}\n")]),
        layer_tar([directory("etc"), whiteout("etc/deploy.conf"), directory("srv"),
                   file("srv/new.yml", f"t: {new}\n")]),
    ]
    image(out / "v2.tar", "app:2", v2_layers,
          ["ADD base /usr", "COPY .env /app/.env", "COPY deploy.conf /etc/", "RUN rm /etc/deploy.conf"])
    return Rebuilt(out / "v1.tar", out / "v2.tar", kept, deleted, new)


def test_baseline_survives_a_rebuild(rebuilt: Rebuilt, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    made = layerleak("baseline", f"docker-archive:{rebuilt.v1}", "-o", str(baseline), "--no-cache",
                     cwd=tmp_path, home=tmp_path)
    assert made.code == 0, made.stderr
    recorded = json.loads(baseline.read_text())
    assert len(recorded["findings"]) == 2
    assert rebuilt.kept not in baseline.read_text(), "a baseline holds no secret"

    full = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--format", "json", "--no-cache",
                     cwd=tmp_path, home=tmp_path).report
    moved = {(f["path"], f["line"], f["layer_digest"]) for f in full["findings"]}
    before = {(f["path"], f["line"], f["layer_digest"]) for f in recorded["findings"]}
    assert len(full["findings"]) == 3 and not (moved & before), "the rebuild moved lines and digests"

    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--format", "json", "--no-cache",
                    "--baseline", str(baseline), cwd=tmp_path, home=tmp_path)
    assert run.code == 1, run.stderr  # the new secret still fails the job
    report = run.report
    assert [f["path"] for f in report["findings"]] == ["/srv/new.yml"]
    assert report["baselined"] == 2 and report["targets"][0]["baselined"] == 2


def test_baselined_findings_do_not_fail_the_job(rebuilt: Rebuilt, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    layerleak("baseline", f"docker-archive:{rebuilt.v2}", "-o", str(baseline), "--no-cache",
              cwd=tmp_path, home=tmp_path)
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", "--baseline", str(baseline),
                    cwd=tmp_path, home=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert "3 baselined" in run.stdout


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".layerleak.toml"
    path.write_text(text)
    return path


def test_ignores_by_path_fingerprint_and_image_across_a_rebuild(rebuilt: Rebuilt, tmp_path: Path) -> None:
    v1 = layerleak("scan", f"docker-archive:{rebuilt.v1}", "--format", "json", "--no-cache",
                   cwd=tmp_path, home=tmp_path).report
    kept_fp = next(f["fingerprint"] for f in v1["findings"] if f["path"] == "/app/.env")
    _config(tmp_path, f'''
[[ignore]]
fingerprint = "{kept_fp}"
reason = "rotated on 2026-11-30; the image is rebuilt next sprint"

[[ignore]]
path = "/etc/*.conf"
image = "app:*"
reason = "deploy token, revoked"
expires = 2999-01-01
''')
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--format", "json", "--no-cache",
                    cwd=tmp_path, home=tmp_path)
    report = run.report
    assert [f["path"] for f in report["findings"]] == ["/srv/new.yml"]
    assert report["ignored"] == 2


def test_an_expired_ignore_stops_applying_and_says_so(rebuilt: Rebuilt, tmp_path: Path) -> None:
    config = _config(tmp_path, '''
[[ignore]]
rule = "github-*"
reason = "temporary"
expires = 2020-01-01
''')
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--format", "json", "--no-cache",
                    "--config", str(config), cwd=tmp_path.parent, home=tmp_path)
    assert run.code == 1
    assert len(run.report["findings"]) == 3 and run.report["ignored"] == 0
    assert "expired on 2020-01-01" in run.stderr and "no longer applies" in run.stderr


def test_unknown_key_is_an_error_naming_file_and_key(rebuilt: Rebuilt, tmp_path: Path) -> None:
    config = _config(tmp_path, '[[ignore]]\nrule = "x"\nreasn = "typo"\n')
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", cwd=tmp_path, home=tmp_path)
    assert run.code == 2
    (line,) = run.stderr.strip().splitlines()
    assert str(config) in line and "'reasn'" in line
    config.write_text('[scan]\nfail-onn = "high"\n')
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", cwd=tmp_path, home=tmp_path)
    assert run.code == 2 and "'fail-onn'" in run.stderr and "Traceback" not in run.stderr


def test_config_defaults_and_rule_switches(rebuilt: Rebuilt, tmp_path: Path) -> None:
    _config(tmp_path, '[scan]\nfail-on = "none"\nformat = "json"\n[rules]\ndisable = ["github-*"]\n')
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", cwd=tmp_path, home=tmp_path)
    assert run.code == 0, run.stderr
    rules = {f["rule_id"] for f in run.report["findings"]}  # the format came from the config
    assert not any(r.startswith("github-") for r in rules), rules
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", "--enable-rule",
                    "github-pat-classic", "--fail-on", "high", cwd=tmp_path, home=tmp_path)
    assert run.code == 1 and len(run.report["findings"]) == 3
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", "--disable-rule", "no-such-rule",
                    cwd=tmp_path, home=tmp_path)
    assert run.code == 2 and "no-such-rule" in run.stderr


def test_exit_zero_reports_but_passes(rebuilt: Rebuilt, tmp_path: Path) -> None:
    run = layerleak("scan", f"docker-archive:{rebuilt.v2}", "--no-cache", "--exit-zero", "--format", "json",
                    cwd=tmp_path, home=tmp_path)
    assert run.code == 0 and len(run.report["findings"]) == 3


@pytest.mark.builder
def test_baseline_and_ignore_survive_a_real_buildah_rebuild(tmp_path: Path) -> None:
    """The same Containerfile built twice with buildah, the second time with a new first layer,
    moved lines and one new secret: only the new secret is reported, and the job fails on it."""
    import shutil

    import build_images

    try:
        build_images.require_tools()
        busybox = build_images.find_static_busybox()
    except build_images.BuildError as error:
        message = f"{'=' * 20} buildah rebuild not tested: {error}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    kept, deleted, new = plant.github_pat_classic(), plant.github_pat_classic(), plant.github_pat_classic()
    builds = {
        "v1": ("", f"GITHUB_TOKEN={kept}\n", f"token: {deleted}\n", ""),
        "v2": ("COPY README /usr/README\n", f"# rebuilt\n\n\nGITHUB_TOKEN={kept}\n",
               f"# moved\nurl: x\ntoken: {deleted}\n", "COPY new.yml /srv/new.yml\n"),
    }
    archives = {}
    with build_images.private_storage() as buildah:
        for name, (extra, env, conf, tail) in builds.items():
            context = tmp_path / f"context-{name}"
            context.mkdir()
            shutil.copy2(busybox, context / "busybox")
            (context / "README").write_text("a new base layer\n")
            (context / "app.env").write_text(env)
            (context / "deploy.conf").write_text(conf)
            (context / "new.yml").write_text(f"t: {new}\n")
            (context / "Containerfile").write_text(
                "FROM scratch\nCOPY busybox /bin/busybox\n" + extra
                + "COPY app.env /app/.env\nCOPY deploy.conf /etc/deploy.conf\n"
                + 'RUN ["/bin/busybox", "rm", "/etc/deploy.conf"]\n' + tail
            )
            buildah.run("bud", "--layers", "--isolation", "chroot", "--quiet", "-t", f"localhost/app:{name}",
                        "-f", "Containerfile", ".", cwd=context)
            archives[name] = tmp_path / f"{name}.tar"
            spec = f"docker-archive:{archives[name]}:app:{name}"
            buildah.run("push", "--quiet", f"localhost/app:{name}", spec)
    baseline = tmp_path / "baseline.json"
    made = layerleak("baseline", f"docker-archive:{archives['v1']}", "-o", str(baseline), "--no-cache",
                     cwd=tmp_path, home=tmp_path)
    assert made.code == 0, made.stderr
    before = {(f["path"], f["line"], f["layer_digest"]) for f in json.loads(baseline.read_text())["findings"]}
    full = layerleak("scan", f"docker-archive:{archives['v2']}", "--format", "json", "--no-cache",
                     cwd=tmp_path, home=tmp_path).report
    after = {(f["path"], f["line"], f["layer_digest"]) for f in full["findings"]}
    assert len(before) == 2 and len(after) == 3 and not before & after, (before, after)
    run = layerleak("scan", f"docker-archive:{archives['v2']}", "--format", "json", "--no-cache",
                    "--baseline", str(baseline), cwd=tmp_path, home=tmp_path)
    assert run.code == 1 and [f["path"] for f in run.report["findings"]] == ["/srv/new.yml"]
    assert run.report["baselined"] == 2
    new_fp = next(f["fingerprint"] for f in full["findings"] if f["path"] == "/srv/new.yml")
    (tmp_path / ".layerleak.toml").write_text(f'[[ignore]]\nfingerprint = "{new_fp}"\nreason = "test"\n')
    run = layerleak("scan", f"docker-archive:{archives['v2']}", "--no-cache", "--baseline", str(baseline),
                    cwd=tmp_path, home=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert "2 baselined" in run.stdout and "1 ignored" in run.stdout
