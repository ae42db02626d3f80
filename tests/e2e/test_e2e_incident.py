"""Incident response: `layerleak layers` (the build, step by step) and `layerleak extract` (a
file's bytes exactly as a layer stores them, for evidence), on real archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import plant
import pytest
from handmade import (
    LegacyImage,
    directory,
    file,
    gzipped,
    image_config,
    layer_tar,
    whiteout,
    write_docker_archive,
)

if TYPE_CHECKING:
    from conftest import Built, Layerleak


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "XDG_CACHE_HOME": str(cwd / "cache"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "layerleak", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)


def _tar_with(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buffer.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = kind, link, 1_700_000_000, 0o644
    return info


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, bytes]:
    """Layer 0 adds a key file (with bytes a text tool would change), a hard link to it, a
    symlink out of the image and a hostile name; layer 1 overwrites a file; layer 2 deletes the
    key; an ENV step makes no layer."""
    out = tmp_path_factory.mktemp("evidence")
    token = plant.github_pat_classic()
    key = f"token: {token}\r\n\x00\xff trailing".encode("latin-1")
    layer0 = _tar_with(
        [_info("srv", tarfile.DIRTYPE), _info("srv/key.txt"),
         _info("srv/again.txt", tarfile.LNKTYPE, "srv/key.txt"),
         _info("srv/escape", tarfile.SYMTYPE, "../../../../etc/shadow"), _info("srv/motd"),
         _info("srv/\x1b]0;pwned\x07")],
        {"srv/key.txt": key, "srv/motd": b"v1\n", "srv/\x1b]0;pwned\x07": b"x"},
    )
    layer1 = layer_tar([directory("srv"), file("srv/motd", "v2\n")])
    layer2 = layer_tar([directory("srv"), whiteout("srv/key.txt")])
    config = image_config(
        [layer0, layer1, layer2],
        [{"created_by": "COPY srv/ /srv/ # buildkit"}, {"created_by": "ENV MODE=prod", "empty_layer": True},
         {"created_by": "COPY motd /srv/motd # buildkit"}, {"created_by": "RUN /bin/sh -c rm /srv/key.txt"}],
    )
    path = out / "evidence.tar"
    write_docker_archive(path, [LegacyImage(["evidence:1"], [layer0, layer1, layer2], config)])
    # The same image, gzip-compressed: a streaming source.
    (out / "evidence.tar.gz").write_bytes(gzipped(path.read_bytes()))
    return path, token, key


def test_layers_table_shows_every_step_in_place(evidence: tuple[Path, str, bytes], tmp_path: Path) -> None:
    path, token, _ = evidence
    done = run_cli("layers", f"docker-archive:{path}", "--no-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("evidence:1")
    rows = [line.split() for line in lines[2:] if line.strip()]
    assert [r[:2] for r in rows] == [["0", "0"], ["1", "-"], ["2", "1"], ["3", "2"]]
    assert "(no layer)" in lines[3] and "ENV MODE=prod" in lines[3]
    assert "1 deleted" in lines[2]  # the key, deleted later, still in layer 0
    assert token not in done.stdout and "\x1b" not in done.stdout


def test_layers_json_counts_files_and_findings(evidence: tuple[Path, str, bytes], tmp_path: Path) -> None:
    path, _, _ = evidence
    done = run_cli("layers", f"docker-archive:{path}", "--no-cache", "--format", "json", cwd=tmp_path)
    doc = json.loads(done.stdout)
    steps = doc["images"][0]["steps"]
    assert [s["layer_index"] for s in steps] == [0, None, 1, 2]
    first, env, motd, rm = steps
    assert first["diff_id"].startswith("sha256:") and first["uncompressed_size"] > 0
    assert first["files_added"] == 5 and first["findings"]["deleted"] >= 1
    assert env["empty_layer"] and env["created_by"] == "ENV MODE=prod"
    assert motd["files_overwritten"] == 1 and motd["files_added"] == 0
    assert rm["files_deleted"] == 1


@pytest.mark.parametrize("form", ["evidence.tar", "evidence.tar.gz"])
def test_extract_gives_the_deleted_file_byte_for_byte(evidence: tuple[Path, str, bytes], tmp_path: Path,
                                                       form: str) -> None:
    path, _, key = evidence
    target = f"docker-archive:{path.parent / form}"
    out = tmp_path / "key.bin"
    done = run_cli("extract", target, "/srv/key.txt", "--layer", "0", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == key
    assert f"sha256:{hashlib.sha256(key).hexdigest()}" in done.stdout
    assert "diff_id sha256:" in done.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    # A hard link gives its target's bytes, read from the same layer.
    linked = tmp_path / "again.bin"
    done = run_cli("extract", target, "srv/again.txt", "--layer", "0", "-o", str(linked), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert linked.read_bytes() == key and "hard link /srv/again.txt" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/srv/escape", "--layer", "0"], "symbolic link"),
        (["/srv", "--layer", "0"], "is a directory"),
        (["/srv/key.txt", "--layer", "2"], "deleted in layer 2 (a whiteout)"),
        (["/srv/nothing", "--layer", "0"], "not in layer 0"),
        (["/srv/key.txt", "--layer", "9"], "has 3 layers"),
    ],
)
def test_extract_refuses_clearly_and_writes_nothing(evidence: tuple[Path, str, bytes], tmp_path: Path,
                                                     args: list[str], message: str) -> None:
    path, _, _ = evidence
    out = tmp_path / "out.bin"
    done = run_cli("extract", f"docker-archive:{path}", args[0], *args[1:], "-o", str(out), cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line and "Traceback" not in done.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing written but -o"


def test_extract_never_overwrites_or_follows_a_symlink_at_o(evidence: tuple[Path, str, bytes],
                                                            tmp_path: Path) -> None:
    path, _, _ = evidence
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "out.bin"
    link.symlink_to(victim)
    done = run_cli("extract", f"docker-archive:{path}", "/srv/key.txt", "--layer", "0", "-o", str(link),
                   cwd=tmp_path)
    assert done.returncode == 2 and victim.read_text() == "keep me"


def test_extract_tar_of_a_directory_keeps_links_as_links(evidence: tuple[Path, str, bytes],
                                                         tmp_path: Path) -> None:
    path, _, key = evidence
    out = tmp_path / "srv.tar"
    done = run_cli("extract", f"docker-archive:{path}", "/srv", "--layer", "0", "--tar", "-o", str(out),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["srv/escape"].issym() and members["srv/escape"].linkname == "../../../../etc/shadow"
        assert members["srv/again.txt"].islnk()
        data = tar.extractfile("srv/key.txt")
        assert data is not None and data.read() == key
    assert "\x1b" not in done.stdout


def test_extract_picks_an_image_of_a_multi_image_archive(layerleak: Layerleak, handmade_images: Built,
                                                         tmp_path: Path) -> None:
    target = handmade_images.target("multi")
    run = layerleak("extract", target, "/srv/deploy.env", "--layer", "1", "-o", str(tmp_path / "x"))
    assert run.returncode == 2 and "--image" in run.stderr
    run = layerleak("extract", target, "/srv/deploy.env", "--layer", "1", "--image", "multi-b:2.0",
                    "-o", str(tmp_path / "b.env"))
    assert run.returncode == 0, run.describe()
    assert (tmp_path / "b.env").read_text().startswith("# deploy\nGH_TOKEN=ghp_")


@pytest.mark.builder
def test_leaky_image_deleted_secrets_are_extractable_and_on_the_timeline(
    layerleak: Layerleak, leaky_image: Built, tmp_path: Path
) -> None:
    """On the buildah-built image: every file secret a later layer deleted is on the timeline of
    the layer that added it, and `extract` gives it back byte for byte from that layer."""
    target = leaky_image.target("leaky")
    planted = [p for p in leaky_image.fixtures["leaky"].secrets
               if p.source == "layer" and p.status == "deleted" and p.path and p.layer_index is not None]
    assert planted, "the leaky image plants deleted files"
    timeline = json.loads(layerleak("layers", target, "--format", "json").stdout)
    steps = {s["layer_index"]: s for s in timeline["images"][0]["steps"] if s["layer_index"] is not None}
    assert len(steps) == leaky_image.fixtures["leaky"].layer_count
    for n, p in enumerate(planted):
        assert p.path is not None and p.layer_index is not None
        assert steps[p.layer_index]["findings"]["deleted"] >= 1, (p.path, steps[p.layer_index])
        assert steps[p.removed_in_layer]["files_deleted"] >= 1 if p.removed_in_layer is not None else True
        out = tmp_path / f"evidence-{n}"
        run = layerleak("extract", target, p.path, "--layer", str(p.layer_index), "-o", str(out))
        assert run.returncode == 0, run.describe()
        data = out.read_bytes()
        assert p.value.encode() in data or p.value.replace("\n", "\\n").encode() in data, p.path
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" in run.stdout
        assert p.value not in run.stdout, "extract prints digests, never the secret"
