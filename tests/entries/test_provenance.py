"""Vendor provenance: files unchanged from their package are low-confidence ``vendor`` findings,
hidden by default; a modified package file is still reported. Real dpkg md5sums, apk installed
and wheel RECORD databases in a hand-made image, scanned through the CLI."""

from __future__ import annotations

import base64
import hashlib
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
