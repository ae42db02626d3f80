"""Vendor provenance: files unchanged from their package are low-confidence ``vendor`` findings,
hidden by default; a modified package file is still reported. Real dpkg md5sums, apk installed
and wheel RECORD databases in a hand-made image, scanned through the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import handmade
import plant
import pytest

from layerleak.entries import provenance

if TYPE_CHECKING:
    from conftest import Layerleak

SITE = "opt/venv/lib/python3.11/site-packages"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def _build(outdir: Path) -> tuple[Path, dict[str, str]]:
    tokens = {k: plant.github_pat_classic() for k in ("dpkg", "dpkg_mod", "apk", "wheel", "wheel_mod")}
    doc = f"# example\ntoken = {tokens['dpkg']}\n".encode()
    shipped = b"# fixture\ntoken = none\n"
    modified = f"# fixture\ntoken = {tokens['dpkg_mod']}\n".encode()
    apk_file = f"GITHUB_TOKEN={tokens['apk']}\n".encode()
    wheel_file = f"TEST_TOKEN = '{tokens['wheel']}'\n".encode()
    md5sums = (
        f"{hashlib.md5(doc).hexdigest()}  usr/share/doc/libfoo/examples/foo.conf\n"
        f"{hashlib.md5(shipped).hexdigest()}  usr/lib/python3/dist-packages/bar/fixture.py\n"
    )
    apk_db = (
        "C:Q1abc=\nP:baz\nV:1.0-r0\n\nC:Q1def=\nP:qux\nV:2.0-r0\nF:usr/share/qux\n"
        f"R:fixture.env\nZ:Q1{base64.b64encode(hashlib.sha1(apk_file).digest()).decode()}\n\n"
    )
    record = (
        f"foo/__init__.py,{_record_hash(b'')},0\n"
        f"foo/tests/test_auth.py,{_record_hash(wheel_file)},{len(wheel_file)}\n"
        "foo-1.0.dist-info/RECORD,,\n"
    )
    layer0 = {
        "usr/share/doc/libfoo/examples/foo.conf": doc,
        "usr/lib/python3/dist-packages/bar/fixture.py": modified,  # changed after installation
        "var/lib/dpkg/info/libfoo.md5sums": md5sums.encode(),
        "usr/share/qux/fixture.env": apk_file,
        "lib/apk/db/installed": apk_db.encode(),
        f"{SITE}/foo/tests/test_auth.py": wheel_file,
        f"{SITE}/foo-1.0.dist-info/RECORD": record.encode(),
    }
    layer1 = {f"{SITE}/foo/tests/test_auth.py": f"TEST_TOKEN = '{tokens['wheel_mod']}'\n".encode()}
    layers = [_layer(layer0), _layer(layer1)]
    config = handmade.image_config(
        layers,
        [{"created_by": "RUN apt-get install libfoo && pip install foo"},
         {"created_by": "COPY test_auth.py /opt/venv/... # buildkit"}],
    )
    archive = outdir / "vendor.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["vendor:latest"], layers, config)])
    return archive, tokens


def _layer(files: dict[str, bytes]) -> bytes:
    dirs = sorted({"/".join(p.split("/")[: i + 1]) for p in files for i in range(p.count("/"))})
    return handmade.layer_tar(
        [handmade.directory(d) for d in dirs] + [handmade.file(p, data) for p, data in files.items()]
    )


@pytest.fixture(scope="module")
def vendor_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return _build(tmp_path_factory.mktemp("vendor"))


def _by_secret(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["secret"]: f for f in report["findings"]}


def test_vendor_files_are_hidden_by_default(
    layerleak: Layerleak, vendor_image: tuple[Path, dict[str, str]]
) -> None:
    archive, tokens = vendor_image
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--show-secrets")
    assert run.returncode == 1, run.describe()
    found = _by_secret(run.report)
    assert set(found) == {tokens["dpkg_mod"], tokens["wheel_mod"]}  # modified package files
    assert found[tokens["dpkg_mod"]]["path"] == "/usr/lib/python3/dist-packages/bar/fixture.py"
    assert all(f["confidence"] == "high" and f["reason"] is None for f in found.values())
    (target,) = run.report["targets"]
    assert target["hidden_findings"] == 3  # dpkg, apk, wheel


def test_vendor_files_are_shown_low_with_a_flag(
    layerleak: Layerleak, vendor_image: tuple[Path, dict[str, str]]
) -> None:
    archive, tokens = vendor_image
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--show-secrets",
                    "--min-confidence", "low")
    found = _by_secret(run.report)
    assert set(found) == set(tokens.values())
    vendor = {k: (found[tokens[k]]["confidence"], found[tokens[k]]["reason"]) for k in tokens}
    assert vendor == {
        "dpkg": ("low", "vendor"),  # dpkg md5sums
        "apk": ("low", "vendor"),  # apk installed, Q1 SHA-1
        "wheel": ("low", "vendor"),  # RECORD sha256, though overwritten above
        "dpkg_mod": ("high", None),
        "wheel_mod": ("high", None),
    }
    assert found[tokens["wheel"]]["status"] == "overwritten"
    assert run.report["targets"][0]["hidden_findings"] == 0


def test_hidden_vendor_findings_do_not_fail_the_scan(
    layerleak: Layerleak, tmp_path: Path
) -> None:
    token = plant.github_pat_classic()
    data = f"token = {token}\n".encode()
    files = {
        "usr/share/doc/x/example.conf": data,
        "var/lib/dpkg/info/x.md5sums": f"{hashlib.md5(data).hexdigest()}  usr/share/doc/x/example.conf\n"
        .encode(),
    }
    layer = _layer(files)
    config = handmade.image_config([layer], [{"created_by": "RUN apt-get install x"}])
    archive = tmp_path / "x.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["x:1"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json")
    assert (run.returncode, run.report["findings"], run.report["targets"][0]["hidden_findings"]) == (0, [], 1)


def test_package_databases_parse() -> None:
    md5 = hashlib.md5(b"a").hexdigest()
    md5sums = f"{md5}  etc/x\n".encode()
    assert list(provenance.package_entries("/var/lib/dpkg/info/x:amd64.md5sums", md5sums)) == [
        ("/etc/x", "md5:" + md5)]
    status = f"Package: x\nConffiles:\n /etc/x.conf {md5}\n /etc/old.conf {md5} obsolete\nDescription: x\n"
    assert list(provenance.package_entries("/var/lib/dpkg/status", status.encode())) == [
        ("/etc/x.conf", "md5:" + md5), ("/etc/old.conf", "md5:" + md5)]
    record = f"../../../bin/foo,{_record_hash(b'a')},1\n"
    assert list(provenance.package_entries(f"/{SITE}/foo-1.dist-info/RECORD", record.encode())) == [
        ("/opt/venv/bin/foo", "sha256:" + hashlib.sha256(b"a").hexdigest())]
    assert not provenance.is_package_db("/srv/app/RECORD")
    assert not provenance.is_package_db("/tmp/var/lib/dpkg/info/x.md5sums")


def test_merged_usr_and_byte_code() -> None:
    bash = provenance.file_digests(b"elf")
    pyc = provenance.file_digests(b"pyc")
    packages = {"/bin/bash": {"md5:" + hashlib.md5(b"elf").hexdigest()}, f"/{SITE}/foo/x.py": {"sha256:0"}}
    files = {"/usr/bin/bash": bash, f"/{SITE}/foo/__pycache__/x.cpython-311.pyc": pyc,
             f"/{SITE}/foo/__pycache__/y.cpython-311.pyc": pyc}
    assert provenance.vendored([(0, packages, files)]) == {
        (0, "/usr/bin/bash"), (0, f"/{SITE}/foo/__pycache__/x.cpython-311.pyc")}
    # The source itself has a match and differs from its record: its byte code is not vendor either.
    files[f"/{SITE}/foo/x.py"] = provenance.file_digests(b"changed")
    assert provenance.vendored([(0, packages, files)]) == {(0, "/usr/bin/bash")}


# --- npm, Go modules, gems, Maven and Gradle ----------------------------------------------------

NM = "/app/node_modules"


def _npm_known(*databases: tuple[str, str]) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {}
    for path, text in databases:
        assert provenance.is_package_db(path), path
        for recorded, mark in provenance.package_entries(path, text.encode()):
            known.setdefault(recorded, set()).add(mark)
    return known


def _pkg(name: str, **fields: object) -> tuple[str, str]:
    return f"{NM}/{name}/package.json", json.dumps({"name": name, "version": "1.0.0", **fields})


def _lock(*names: str) -> tuple[str, str]:
    packages = {"": {"name": "app"}} | {f"node_modules/{n}": {"version": "1.0.0"} for n in names}
    return f"{NM}/.package-lock.json", json.dumps({"lockfileVersion": 3, "packages": packages})


@pytest.mark.parametrize(
    ("path", "vendor"),
    [
        (f"{NM}/sdk/lib/client.js", True),  # in "files": ["lib"]
        (f"{NM}/sdk/lib/deep/x.js", True),
        (f"{NM}/sdk/README.md", True),  # always published
        (f"{NM}/sdk/LICENSE", True),
        (f"{NM}/sdk/index.js", True),  # "main": "./index"
        (f"{NM}/sdk/bin/cli.js", True),  # "bin"
        (f"{NM}/sdk/test/fixtures/key.pem", False),  # not in "files"
        (f"{NM}/sdk/lib/.npmrc", False),  # never published
        (f"{NM}/sdk/.env", False),
        (f"{NM}/plain/anything/at/all.js", True),  # no "files": everything
        (f"{NM}/plain/.npmrc", False),
        (f"{NM}/plain/.git/config", False),
        (f"{NM}/@scope/pkg/dist/index.js", True),  # "files": ["dist/*.js"]
        (f"{NM}/@scope/pkg/src/index.js", False),
        (f"{NM}/unlocked/index.js", False),  # a package.json, but the lockfile does not know it
        (f"{NM}/nopkg/index.js", False),  # no package.json
        (f"{NM}/plain/node_modules/inner/index.js", True),  # nested, locked
        ("/app/src/config.js", False),
    ],
)
def test_npm_published_files(path: str, vendor: bool) -> None:
    known = _npm_known(
        _pkg("sdk", files=["lib", "!lib/secret.js"], main="./index", bin={"sdk": "bin/cli.js"}),
        _pkg("plain"),
        _pkg("@scope/pkg", files=["dist/*.js"]),
        _pkg("unlocked"),
        (f"{NM}/plain/node_modules/inner/package.json", json.dumps({"name": "inner"})),
        _lock("sdk", "plain", "@scope/pkg", "nopkg", "plain/node_modules/inner"),
    )
    assert provenance.npm_published(path, known) is vendor


def test_npm_without_a_lockfile_trusts_package_json() -> None:
    known = _npm_known(_pkg("unlocked"))
    assert provenance.npm_published(f"{NM}/unlocked/index.js", known)


def test_npm_negated_files_pattern() -> None:
    known = _npm_known(_pkg("sdk", files=["lib", "!lib/secret.js"]))
    assert provenance.npm_published(f"{NM}/sdk/lib/ok.js", known)
    assert not provenance.npm_published(f"{NM}/sdk/lib/secret.js", known)


def test_go_modules_gems_maven_and_gradle() -> None:
    jar = b"PK\x03\x04 a jar"
    sha1 = hashlib.sha1(jar).hexdigest()
    known = _npm_known(
        ("/go/pkg/mod/cache/download/github.com/!azure/sdk/@v/v1.2.0.ziphash", "h1:abc=\n"),
        ("/usr/local/bundle/specifications/aws-sdk-core-3.190.0.gemspec", "# -*- encoding: utf-8 -*-\n"),
        ("/root/.m2/repository/com/acme/lib/1.0/lib-1.0.jar.sha1", f"{sha1}  lib-1.0.jar\n"),
    )
    files = {
        "/go/pkg/mod/github.com/!azure/sdk@v1.2.0/auth/testdata/key.pem": provenance.file_digests(b"k"),
        "/go/pkg/mod/github.com/!azure/sdk@v1.3.0/auth/key.pem": provenance.file_digests(b"k"),
        "/usr/local/bundle/gems/aws-sdk-core-3.190.0/lib/stub.rb": provenance.file_digests(b"s"),
        "/usr/local/bundle/gems/other-1.0/lib/x.rb": provenance.file_digests(b"s"),
        "/root/.m2/repository/com/acme/lib/1.0/lib-1.0.jar": provenance.file_digests(jar),
        "/root/.m2/repository/com/acme/app/1.0/app-1.0.jar": provenance.file_digests(jar + b"!"),
        f"/root/.gradle/caches/modules-2/files-2.1/com.acme/lib/1.0/{sha1}/lib-1.0.jar":
            provenance.file_digests(jar),
        f"/root/.gradle/caches/modules-2/files-2.1/com.acme/lib/1.1/{sha1}/lib-1.1.jar":
            provenance.file_digests(jar + b"changed"),
    }
    assert provenance.vendored([(0, known, files)]) == {
        (0, "/go/pkg/mod/github.com/!azure/sdk@v1.2.0/auth/testdata/key.pem"),
        (0, "/usr/local/bundle/gems/aws-sdk-core-3.190.0/lib/stub.rb"),
        (0, "/root/.m2/repository/com/acme/lib/1.0/lib-1.0.jar"),
        (0, f"/root/.gradle/caches/modules-2/files-2.1/com.acme/lib/1.0/{sha1}/lib-1.0.jar"),
    }


def _tree_layer(root: Path, prefix: str) -> bytes:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    files = {f"{prefix}/{p.relative_to(root)}": p.read_bytes() for p in paths}
    return _layer(files)


@pytest.fixture(scope="module")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``npm install`` of a small package (its own files, its own lockfile)."""
    if shutil.which("npm") is None:
        _skip_or_fail("npm is not installed")
    root = tmp_path_factory.mktemp("npm")
    (root / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}\n')
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "ms@2.1.3"],
            cwd=root, capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired:
        _skip_or_fail("npm install timed out (no registry?)")
    if done.returncode != 0:
        _skip_or_fail(f"npm install failed (no registry?): {done.stderr.strip()[-300:]}")
    assert (root / "node_modules/.package-lock.json").exists()
    return root


def _skip_or_fail(reason: str) -> None:
    message = f"{'=' * 20} NPM PROJECT NOT BUILT {'=' * 20}\n{reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def test_real_npm_install(layerleak: Layerleak, npm_project: Path, tmp_path: Path) -> None:
    """Tokens put into a real installed package: in a file it publishes (vendor, low), in a file
    it does not (reported), in ``.npmrc`` (never published: reported), and in a package the
    lockfile does not know (reported)."""
    tokens = {k: plant.github_pat_classic() for k in ("published", "unpublished", "npmrc", "unlocked")}
    ms = npm_project / "node_modules/ms"
    assert json.loads((ms / "package.json").read_text())["files"] == ["index.js"]
    with (ms / "index.js").open("a") as f:
        f.write(f"\n// example: GITHUB_TOKEN={tokens['published']}\n")
    (ms / "tests.js").write_text(f"const token = '{tokens['unpublished']}';\n")
    (ms / ".npmrc").write_text(f"//registry.internal.test/:_authToken={tokens['npmrc']}\n")
    rogue = npm_project / "node_modules/rogue"
    rogue.mkdir()
    (rogue / "package.json").write_text('{"name": "rogue", "version": "0.0.1"}\n')
    (rogue / "index.js").write_text(f"module.exports = '{tokens['unlocked']}';\n")
    layer = _tree_layer(npm_project, "app")
    config = handmade.image_config([layer], [{"created_by": "RUN npm install ms # buildkit"}])
    archive = tmp_path / "npm.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["npm:1"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--show-secrets",
                    "--min-confidence", "low")
    assert run.returncode == 1, run.describe()
    found = {f["secret"]: (f["path"], f["confidence"], f["reason"]) for f in run.report["findings"]}
    assert found[tokens["published"]] == ("/app/node_modules/ms/index.js", "low", "vendor")
    assert found[tokens["unpublished"]][1:] == ("high", None)
    assert found[tokens["npmrc"]][0] == "/app/node_modules/ms/.npmrc" and found[tokens["npmrc"]][2] is None
    assert found[tokens["unlocked"]] == ("/app/node_modules/rogue/index.js", "high", None)


def test_a_file_too_large_to_digest_is_vendor_by_path_only() -> None:
    """The walk digests files that fit in its first chunk; a larger one has no digests (an empty
    set): an npm package still vouches for it by path, a package database never does."""
    known = _npm_known(_pkg("big"))
    known["/usr/share/doc/x/big.conf"] = {"md5:" + hashlib.md5(b"x").hexdigest()}
    files = {f"{NM}/big/dist/bundle.js": frozenset(), "/usr/share/doc/x/big.conf": frozenset()}
    assert provenance.vendored([(0, known, files)]) == {(0, f"{NM}/big/dist/bundle.js")}


def test_a_large_file_is_digested_on_the_way(layerleak: Layerleak, tmp_path: Path) -> None:
    """A file larger than the walk's first chunk (8 MiB) still matches its dpkg md5sums."""
    token = plant.github_pat_classic()
    big = b"x" * (9 << 20) + f"\ntoken = {token}\n".encode()
    changed = big.replace(b"x", b"y", 1)
    files = {
        "usr/lib/libbig.so": big,
        "usr/lib/libbig2.so": changed,
        "var/lib/dpkg/info/big.md5sums": (
            f"{hashlib.md5(big).hexdigest()}  usr/lib/libbig.so\n"
            f"{hashlib.md5(big).hexdigest()}  usr/lib/libbig2.so\n"
        ).encode(),
    }
    layer = _layer(files)
    config = handmade.image_config([layer], [{"created_by": "RUN apt-get install big"}])
    archive = tmp_path / "big.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["big:1"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--min-confidence", "low")
    found = {f["path"]: (f["confidence"], f["reason"]) for f in run.report["findings"]}
    assert found == {"/usr/lib/libbig.so": ("low", "vendor"), "/usr/lib/libbig2.so": ("high", None)}
