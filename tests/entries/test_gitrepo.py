"""Git history inside a layer: repositories made by real ``git``, walked as a layer tar.

Each test commits a fresh secret, moves the repository through what real repositories go
through (loose objects, ``git gc``, ``git repack -ad`` with OFS and REF deltas, a dangling commit,
a dangling blob) and scans a layer holding the directory, as ``COPY . /app`` would ship it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import build_images
import handmade
import plant
import pytest
from dulwich.object_format import SHA1
from dulwich.pack import load_pack_index

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.entries import gitrepo
from layerleak.entries.limits import MIB, GitLimits
from layerleak.layers import tarindex
from layerleak.layers.walk import FileHit, LayerScan, scan_layer

if TYPE_CHECKING:
    from conftest import Layerleak

GIT = shutil.which("git")
if GIT is None:  # pragma: no cover - git is a documented test tool
    if os.environ.get("CI"):
        raise RuntimeError("git is required under CI")
    pytest.skip("=== git is not installed: git history tests cannot run ===", allow_module_level=True)

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules())


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=ENV, check=True, capture_output=True,
                          text=True, timeout=60)
    return done.stdout.strip()


def new_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("an app\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    return repo


def commit_file(repo: Path, rel: str, text: str, message: str) -> str:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def env_file(key_id: str, noise: int = 0) -> str:
    lines = [f"OPTION_{i}=value number {i} of the app's settings" for i in range(noise)]
    return "\n".join([*lines, f"AWS_ACCESS_KEY_ID={key_id}", ""])


def layer_of(repo: Path, prefix: str = "app") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(repo), arcname=prefix)
    return buf.getvalue()


def scan(blob: bytes, engine: Engine) -> LayerScan:
    return scan_layer("layer", io.BytesIO(blob), engine)


def git_hits(result: LayerScan, secret: str) -> list[FileHit]:
    return [h for h in result.hits if h.git is not None and getattr(h.match, "secret", None) == secret]


def test_removed_secret_in_loose_objects(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    added = commit_file(repo, "config/prod.env", env_file(key), "add config")
    (repo / "config/prod.env").unlink()
    git(repo, "commit", "-qam", "remove the key")
    assert not list((repo / ".git/objects").glob("pack/*.pack"))  # loose objects only
    result = scan(layer_of(repo), engine)
    hits = git_hits(result, key)
    assert [h.inner_path for h in hits] == [f"[git] {added[:12]}:config/prod.env"]
    hit = hits[0]
    commit, path, blob, reachable, in_worktree = hit.git or ()
    assert (commit, path, reachable, in_worktree) == (added, "config/prod.env", True, False)
    assert hit.path == f"/app/.git/objects/{blob[:2]}/{blob[2:]}"  # the loose object holding it
    assert hit.match.rule_id == "aws-access-key-id"
    assert result.error is None and not result.notes


@pytest.mark.parametrize("offset_deltas", [True, False], ids=["ofs-delta", "ref-delta"])
def test_secret_in_deltified_pack_after_gc_and_repack(
    tmp_path: Path, engine: Engine, offset_deltas: bool
) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    first = commit_file(repo, "config/prod.env", env_file(key, noise=60), "config")
    for i in range(5):  # later versions differ a little: the packer stores them as deltas
        commit_file(repo, "config/prod.env", env_file(key, noise=60) + f"REVISION={i}\n", f"rev {i}")
    git(repo, "rm", "-q", "config/prod.env")
    git(repo, "commit", "-qm", "no more config")
    git(repo, "gc", "-q")
    git(repo, "-c", f"repack.useDeltaBaseOffset={str(offset_deltas).lower()}", "repack", "-adfq")
    packs = list((repo / ".git/objects/pack").glob("*.pack"))
    assert len(packs) == 1 and not list((repo / ".git/objects").glob("??/*"))
    assert "chain length = " in git(repo, "verify-pack", "-v", str(packs[0]))  # deltas are there
    index = load_pack_index(str(packs[0].with_suffix(".idx")), SHA1)
    data = packs[0].read_bytes()
    kinds = {gitrepo._entry_header(data[off : off + 32])[0] for _, off, _ in index.iterentries()}
    index.close()
    assert (gitrepo.OFS_DELTA if offset_deltas else gitrepo.REF_DELTA) in kinds
    result = scan(layer_of(repo), engine)
    hits = git_hits(result, key)
    # One finding for the secret in that file: the commit that first had it.
    assert [h.inner_path for h in hits] == [f"[git] {first[:12]}:config/prod.env"]
    assert hits[0].path == f"/app/.git/objects/pack/{packs[0].name}"
    assert result.error is None and not result.notes


def test_secret_still_in_the_working_tree(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    commit_file(repo, "deploy/.env", env_file(key), "env")
    git(repo, "gc", "-q")
    result = scan(layer_of(repo), engine)
    hits = git_hits(result, key)
    assert len(hits) == 1 and hits[0].git is not None and hits[0].git[4] is True
    # ... and the working-tree file is its own finding, as ever
    assert any(h.path == "/app/deploy/.env" and h.git is None for h in result.hits)


def test_dangling_commit_and_blob(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    lost = commit_file(repo, "secrets.env", env_file(key), "oops")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    stray = plant.github_pat_classic()
    (tmp_path / "stray").write_text(f"token: {stray}\n")
    blob = git(repo, "hash-object", "-w", str(tmp_path / "stray"))
    git(repo, "repack", "-Adq")  # unreachable objects of old packs come out loose
    result = scan(layer_of(repo), engine)
    [hit] = git_hits(result, key)
    assert hit.inner_path == f"[git] {lost[:12]}:secrets.env"
    assert hit.git is not None and hit.git[3] is False  # not reachable from any ref
    [orphan] = git_hits(result, stray)
    assert orphan.inner_path == f"[git] blob {blob[:12]}"
    assert orphan.git is not None and orphan.git[0] is None


def test_secret_in_a_commit_message(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    token = plant.github_pat_classic()
    commit_file(repo, "a.txt", "a\n", f"use {token} for the deploy")
    sha = git(repo, "rev-parse", "HEAD")
    [hit] = git_hits(scan(layer_of(repo), engine), token)
    assert hit.inner_path == f"[git] {sha[:12]} message"


def test_clean_history_gives_nothing(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    commit_file(repo, "src/app.py", "print('hello')\n", "code")
    git(repo, "gc", "-q")
    result = scan(layer_of(repo), engine)
    assert [h for h in result.hits if h.git is not None] == []
    assert not result.notes


def test_blob_over_the_limit_is_not_inflated(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    (repo / "big.bin").write_bytes(b"\0" * (3 * MIB))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big")
    git(repo, "gc", "-q")
    big = git(repo, "rev-parse", "HEAD:big.bin")
    collector = gitrepo.Collector(limits=GitLimits(max_blob=1 * MIB))
    with tarfile.open(fileobj=io.BytesIO(layer_of(repo)), mode="r|") as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isreg() else None
            if f is not None:
                collector.take("/" + member.name, f)
    assert collector.finish(engine, []) == []
    assert any(f"git blob {big[:12]}" in note and "larger than 1 MiB" in note for _, note in collector.notes)
    assert collector._tmp is None  # the spool is gone


def test_spool_limit_is_a_note(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    commit_file(repo, "a.txt", "x" * 5000, "a")
    collector = gitrepo.Collector(limits=GitLimits(spool_bytes=100))
    with tarfile.open(fileobj=io.BytesIO(layer_of(repo)), mode="r|") as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isreg() else None
            if f is not None:
                collector.take("/" + member.name, f)
    collector.finish(engine, [])
    assert any("git spool limit" in note for _, note in collector.notes)


def test_a_layer_with_a_repository_is_not_split(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    blob = layer_of(repo)
    plain = layer_of(tmp_path / "src" / "README", prefix="app/README")
    assert tarindex.member_starts(io.BytesIO(plain), len(plain))
    assert tarindex.member_starts(io.BytesIO(blob), len(blob)) is None


def test_cli_reports_commit_path_and_status(tmp_path: Path, layerleak: Layerleak) -> None:
    """A docker-archive: layer 0 is ``COPY . /app`` with the history, layer 1 ``rm -rf .git``."""
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    added = commit_file(repo, "config/prod.env", env_file(key), "config")
    git(repo, "rm", "-q", "config/prod.env")
    git(repo, "commit", "-qm", "no config")
    git(repo, "gc", "-q")
    layers = [layer_of(repo), handmade.layer_tar([handmade.whiteout("app/.git")])]
    history = [{"created_by": "COPY . /app"}, {"created_by": "RUN rm -rf /app/.git"}]
    image = handmade.LegacyImage(["gitleak:1"], layers, handmade.image_config(layers, history))
    archive = tmp_path / "image.tar"
    handmade.write_docker_archive(archive, [image])
    for jobs in ("1", "2"):
        run = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--no-progress",
                        "--no-cache", "-j", jobs)
        assert run.returncode == 1, run.describe()
        [finding] = [f for f in run.report["findings"] if f["git"] is not None]
        assert finding["rule_id"] == "aws-access-key-id"
        assert finding["inner_path"] == f"[git] {added[:12]}:config/prod.env"
        assert finding["path"].startswith("/app/.git/objects/pack/pack-")
        assert finding["status"] == "deleted" and finding["removed_in_layer"] == 1
        assert finding["git"]["commit"] == added and finding["git"]["path"] == "config/prod.env"
        assert finding["git"]["reachable"] is True and finding["git"]["in_worktree"] is False
        assert key not in run.stdout  # redacted, as everywhere
    # The layer cache keeps the git origin: a cold and a warm run say the same.
    cold = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--no-progress")
    warm = layerleak("scan", "--no-progress", f"docker-archive:{archive}", "--format", "json")
    assert cold.report["findings"] == warm.report["findings"] == run.report["findings"]


@pytest.mark.builder
def test_buildah_copy_with_git_history(tmp_path: Path, layerleak: Layerleak) -> None:
    """``COPY . /app`` built by buildah from a context that is a real repository."""
    try:
        build_images.require_tools()
    except build_images.BuildError as error:
        message = f"=== buildah image not built: {error} ==="
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    added = commit_file(repo, "deploy/prod.env", env_file(key, noise=30), "deploy settings")
    git(repo, "rm", "-q", "deploy/prod.env")
    git(repo, "commit", "-qm", "settings come from the vault now")
    git(repo, "gc", "-q")
    git(repo, "repack", "-adq")
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
    archive = tmp_path / "app-oci.tar"
    with build_images.private_storage() as buildah:
        buildah.run("bud", "--layers", "--isolation", "chroot", "--quiet", "-t", "localhost/gitapp:1",
                    "-f", "Dockerfile", ".", cwd=repo)
        buildah.run("push", "--quiet", "localhost/gitapp:1", f"oci-archive:{archive}:gitapp:1")
    run = layerleak("scan", f"oci-archive:{archive}", "--format", "json", "--no-progress", "--no-cache")
    assert run.returncode == 1, run.describe()
    [finding] = [f for f in run.report["findings"] if f["git"] is not None]
    assert finding["inner_path"] == f"[git] {added[:12]}:deploy/prod.env"
    assert finding["status"] == "present" and finding["git"]["in_worktree"] is False
    assert finding["path"].startswith("/app/.git/objects/pack/pack-")


def _layer_with(repo: Path, edit: dict[str, bytes | None]) -> bytes:
    """The repository as a layer, with some members' bytes replaced (None: left out)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo).as_posix()
            info = tarfile.TarInfo(f"app/{rel}")
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            data = edit.get(rel, path.read_bytes()) if rel in edit else path.read_bytes()
            if data is None:
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for rel, data in edit.items():
            if data is not None and not (repo / rel).exists():
                info = tarfile.TarInfo(f"app/{rel}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_truncated_pack_is_a_note_not_a_crash(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    commit_file(repo, "config/prod.env", env_file(key, noise=40), "config")
    git(repo, "gc", "-q")
    [pack] = (repo / ".git/objects/pack").glob("*.pack")
    rel = pack.relative_to(repo).as_posix()
    result = scan(_layer_with(repo, {rel: pack.read_bytes()[: pack.stat().st_size // 2]}), engine)
    assert result.error is None  # the layer itself is fine
    assert any("could not be read" in note or "damaged" in note for _, note in result.notes), result.notes
    assert any(h.path == "/app/config/prod.env" for h in result.hits)  # the rest is still scanned


def test_clashing_refs_are_a_note(tmp_path: Path, engine: Engine) -> None:
    repo = new_repo(tmp_path)
    key = plant.aws_access_key_id()
    commit_file(repo, "a.env", env_file(key), "a")
    head = git(repo, "rev-parse", "HEAD").encode() + b"\n"
    blob = _layer_with(repo, {".git/refs/heads/x": head, ".git/refs/heads/x/y": head})
    result = scan(blob, engine)
    assert result.error is None
    assert any("clashes" in note for _, note in result.notes)
    assert git_hits(result, key)  # the objects are still read


def test_alternates_are_never_followed(tmp_path: Path, engine: Engine) -> None:
    """``objects/info/alternates`` could point at the scanning machine's own repositories."""
    (tmp_path / "host").mkdir()
    elsewhere = new_repo(tmp_path / "host")
    key = plant.aws_access_key_id()
    commit_file(elsewhere, "host.env", env_file(key), "on the host")
    repo = new_repo(tmp_path)
    alternates = f"{elsewhere / '.git/objects'}\n".encode()
    result = scan(_layer_with(repo, {".git/objects/info/alternates": alternates}), engine)
    assert git_hits(result, key) == []


def test_loose_object_bomb_is_not_inflated(tmp_path: Path, engine: Engine) -> None:
    """A loose object declaring 10 bytes whose zlib stream inflates to 64 MiB is left alone."""
    import zlib

    repo = new_repo(tmp_path)
    bomb = zlib.compress(b"blob 10\0" + b"\0" * (64 * MIB), 9)
    result = scan(_layer_with(repo, {".git/objects/ab/" + "c" * 38: bomb}), engine)
    assert result.error is None
    assert any("1 git objects could not be read" in note for _, note in result.notes), result.notes
    path = tmp_path / "bomb"
    path.write_bytes(bomb)
    assert gitrepo._loose_header(str(path)) is None
    path.write_bytes(zlib.compress(b"blob 10\0" + b"0123456789"))
    assert gitrepo._loose_header(str(path)) == (gitrepo.BLOB, 10)


def _packed_repo(repo: Path, kind: str) -> bytes:
    """The repository directory as an archive made by the tools a build uses: ``tar czf`` or
    ``git archive``-like zip (python's zipfile, all files, ``.git`` included)."""
    if kind == "tar.gz":
        done = subprocess.run(["tar", "-C", str(repo.parent), "-czf", "-", repo.name], check=True,
                              capture_output=True, timeout=60)
        return done.stdout
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(repo.rglob("*")):
            if path.is_file():
                z.write(path, f"{repo.name}/{path.relative_to(repo)}")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_repository_inside_an_archive(tmp_path: Path, engine: Engine, kind: str) -> None:
    repo = new_repo(tmp_path)
    key, kept = plant.aws_access_key_id(), plant.aws_access_key_id()
    added = commit_file(repo, "config/prod.env", env_file(key, noise=20), "add config")
    git(repo, "rm", "-q", "config/prod.env")
    git(repo, "commit", "-qm", "remove the key")
    commit_file(repo, "deploy.env", env_file(kept), "a key that stays")
    git(repo, "gc", "-q")
    [pack] = list((repo / ".git/objects/pack").glob("*.pack"))
    archive = _packed_repo(repo, kind)
    layer = handmade.layer_tar([handmade.directory("srv"), handmade.file(f"srv/src.{kind}", archive)])
    result = scan(layer, engine)
    by_secret: dict[str, list[FileHit]] = {}
    for h in result.hits:
        by_secret.setdefault(getattr(h.match, "secret", ""), []).append(h)
    # The removed key: only in history, named by the object file, its commit and its path.
    assert [(h.path, h.inner_path) for h in by_secret[key]] == [
        (f"/srv/src.{kind}", f"src/.git/objects/pack/{pack.name}!/[git] {added[:12]}:config/prod.env")]
    # The kept key: in the archive's working tree and in history.
    worktree, history = sorted((h.inner_path or "" for h in by_secret[kept]), key=lambda p: ".git/" in p)
    assert worktree == "src/deploy.env" and history.startswith(f"src/.git/objects/pack/{pack.name}!/[git] ")
    assert result.error is None and not result.notes
    # The object files themselves are not scanned as files (a packfile is zlib: nothing readable).
    assert not [h for h in result.hits if (h.inner_path or "").endswith((".pack", ".idx"))]


def test_damaged_repository_inside_an_archive_is_a_note(engine: Engine) -> None:
    pack = "r/.git/objects/pack/pack-" + "a" * 40
    members = [("r/.git/HEAD", b"ref: refs/heads/main\n"), (pack + ".pack", b"PACK\0\0\0\2garbage" * 10),
               (pack + ".idx", b"\xfftOc" + b"\0" * 100), ("r/.git/objects/ab/" + "c" * 38, b"not zlib")]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = scan(handmade.layer_tar([handmade.file("srv/r.tar.gz", archive.getvalue())]), engine)
    assert result.error is None and result.hits == []
    assert result.notes and all(path == "/srv/r.tar.gz" and message.startswith("r/.git: ")
                                for path, message in result.notes)
