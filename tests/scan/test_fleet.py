"""Fleet jobs against a real docker-registry on 127.0.0.1 (TLS + htpasswd), pushed with skopeo.

The registry holds 21 repositories x 3 tags and a two-platform index, sharing base layers
(fixtures/fleet.py). ``layerleak registry`` must scan each unique layer once, give each image the
findings (and statuses) a plain ``scan`` of the same image gives, rerun without scanning anything,
resume after kill -9 recording every layer exactly once, and give the same results on a Dask
LocalCluster. A second, anonymous plain-HTTP registry has a corrupt blob and a repository whose
manifests 404: one line each in ``errors``, the rest recorded, exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import services
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.scan.blobs import BlobTask, LayerOutcome, content_key, scan_blob
from layerleak.scan.runners import DaskRunner
from services import Registry, ServiceUnavailable, user_env

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
import fleet  # noqa: E402

pytestmark = [pytest.mark.service]


def _unavailable(reason: str) -> None:
    message = f"{'=' * 20} REGISTRY NOT STARTED {'=' * 20}\n{reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class Fleet:
    registry: Registry
    fixture: fleet.FleetFixture
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        assert self.registry.tls is not None
        return user_env(self.home, REQUESTS_CA_BUNDLE=str(self.registry.tls.ca_cert), **extra)

    def job(self, db: Path, *args: str, wait: bool = True) -> Any:
        argv = [sys.executable, "-m", "layerleak", "registry", self.registry.host, "--tags", "all",
                "--db", str(db), "--format", "json", "--username", "scanner", "--password-stdin",
                *args]  # fmt: skip
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
        assert proc.stdin is not None
        if not wait:
            proc.stdin.write(f"{self.registry.password}\n")
            proc.stdin.close()
            return proc
        out, err = proc.communicate(f"{self.registry.password}\n", timeout=300)
        return proc.returncode, out, err


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if shutil.which("skopeo") is None:
        _unavailable("skopeo is missing")
    work = tmp_path_factory.mktemp("fleet")
    fixture = fleet.build_fleet(work / "images")
    try:
        with services.start_registry(work / "registry", tls=True, auth=True) as registry:
            fleet.push_all(fixture, registry.host, registry.skopeo_dest())
            yield Fleet(registry, fixture, work / "home")
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def _db_json(db: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "layerleak", "db", *args, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _keys(findings: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (f["image"], f["rule_id"], f["path"], f["status"], f["layer_index"], f["layer_digest"], f["key"],
         f["fingerprint"], f["inherited"])
        for f in findings
    )  # fmt: skip


def _layers(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT content_key, count(*) FROM layers GROUP BY content_key").fetchall()


@pytest.fixture(scope="module")
def first_run(pushed: Fleet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("db") / "fleet.sqlite3"
    code, out, err = pushed.job(db, "-j", "2")
    assert code == 1, err  # findings, no errors
    return db, json.loads(out)


def test_each_unique_layer_is_scanned_once(pushed: Fleet, first_run: tuple[Path, dict[str, Any]]) -> None:
    db, summary = first_run
    fx = pushed.fixture
    assert summary["version"] == 1 and summary["registry"] == pushed.registry.host
    assert summary["errors"] == []
    assert summary["repositories"] == len(fx.repos) == 22
    assert summary["images"] == fx.images == 65
    assert summary["layer_refs"] == fx.layer_refs
    assert summary["layers_unique"] == fx.unique_layers < fx.layer_refs / 5
    assert summary["layers_scanned"] == fx.unique_layers and summary["layers_reused"] == 0
    assert summary["findings"] == 21 * 5 + 2  # 1.0: token + key, 2.0: token + deleted key, latest: key
    assert summary["findings_by_status"] == {"present": 86, "deleted": 21}
    assert all(n == 1 for _, n in _layers(db)) and len(_layers(db)) == fx.unique_layers


def test_every_image_gets_the_findings_a_plain_scan_gives(
    pushed: Fleet, first_run: tuple[Path, dict[str, Any]]
) -> None:
    db, _ = first_run
    host = pushed.registry.host
    for repo, tag in (("app03", "1.0"), ("app03", "2.0"), ("app07", "latest"), ("multi", "latest")):
        stored = _db_json(db, "findings", "--image", f"{host}/{repo}:{tag}")["findings"]
        target = f"oci:{pushed.fixture.layout}:{pushed.fixture.ref(repo, tag)}"
        done = services.layerleak("scan", "--format", "json", target, env=user_env(pushed.home))
        assert done.returncode == 1, done.describe()
        plain = done.report["findings"]
        assert isinstance(plain, list)
        strip = lambda fs: sorted(  # noqa: E731
            (f["rule_id"], f["path"], f["status"], f["layer_index"], f["layer_digest"], f["fingerprint"],
             f["redacted"], f["secret"]) for f in fs
        )  # fmt: skip
        assert strip(stored) == strip(plain), (repo, tag)
    statuses = {f["status"] for f in _db_json(db, "findings", "--image", f"{host}/app03:2.0")["findings"]}
    assert statuses == {"present", "deleted"}


def test_where_finds_every_image_holding_a_secret(
    pushed: Fleet, first_run: tuple[Path, dict[str, Any]]
) -> None:
    db, _ = first_run
    host = pushed.registry.host
    base = [f for f in _db_json(db, "findings", "--image", f"{host}/app00:1.0")["findings"]
            if f["path"] == "/etc/ci-token"]  # fmt: skip
    assert len(base) == 1
    answer = _db_json(db, "where", base[0]["fingerprint"])
    assert answer["fingerprint"] == base[0]["fingerprint"]
    images = {(i["image"], i["platform"]) for i in answer["images"]}
    expected = {(f"{host}/app{i:02d}:{t}", "linux/amd64") for i in range(21) for t in ("1.0", "2.0")}
    expected |= {(f"{host}/multi:latest", p) for p in ("linux/amd64", "linux/arm64")}
    assert images == expected  # latest tags are built on the other base: not there
    assert {i["path"] for i in answer["images"]} == {"/etc/ci-token"}
    assert {i["status"] for i in answer["images"]} == {"present"}
    key = pushed.fixture.app_keys["app05"]
    app = [
        f
        for f in _db_json(db, "findings", "--image", f"{host}/app05:2.0")["findings"]
        if f["path"] == "/app/.env"
    ]
    where = _db_json(db, "where", app[0]["fingerprint"])["images"]
    assert sorted((i["image"].rsplit(":", 1)[1], i["status"]) for i in where) == [
        ("1.0", "present"), ("2.0", "deleted"), ("latest", "present"),
    ]  # fmt: skip
    assert key not in db.read_bytes().decode("latin-1")  # never a secret in the database


def test_a_rerun_downloads_and_scans_nothing(pushed: Fleet, first_run: tuple[Path, dict[str, Any]]) -> None:
    db, first = first_run
    code, out, err = pushed.job(db, "-j", "2")
    assert code == 1, err
    summary = json.loads(out)
    assert summary["images"] == first["images"] and summary["images_unchanged"] == first["images"]
    assert summary["layers_scanned"] == 0 and summary["bytes_scanned"] == 0 and summary["layer_refs"] == 0
    assert summary["errors"] == []
    assert summary["findings"] == first["findings"]  # as recorded: the exit code stays 1
    assert summary["findings_by_status"] == first["findings_by_status"]
    assert len(_layers(db)) == pushed.fixture.unique_layers


def test_the_same_results_on_a_dask_local_cluster(
    pushed: Fleet, first_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    db, first = first_run
    code, out, err = pushed.job(tmp_path / "dask.sqlite3", "--dask", "local", "-j", "2")
    assert code == 1, err
    summary = json.loads(out)
    for field in ("images", "layer_refs", "layers_unique", "layers_scanned", "bytes_scanned", "findings"):
        assert summary[field] == first[field], field
    assert summary["errors"] == []
    assert _keys(_db_json(tmp_path / "dask.sqlite3", "findings")["findings"]) == _keys(
        _db_json(db, "findings")["findings"]
    )


def test_kill_9_mid_job_then_resume_records_every_layer_exactly_once(
    pushed: Fleet, first_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "killed.sqlite3"
    proc = pushed.job(db, "-j", "1", wait=False)
    seen = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                seen = len(_layers(db))
            except sqlite3.Error:
                seen = 0
            if seen >= 3:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    at_kill = len(_layers(db))
    assert 3 <= at_kill < pushed.fixture.unique_layers  # killed mid-way through the layers
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == 0
        # never half a layer: every recorded layer has all its hits
        for key, hits, recorded in conn.execute(
            "SELECT content_key, hit_count, (SELECT count(*) FROM layer_hits WHERE layer_id = layers.id)"
            " FROM layers"
        ):
            assert hits == recorded, key

    code, out, err = pushed.job(db, "-j", "1")
    assert code == 1, err
    summary = json.loads(out)
    assert summary["layers_reused"] >= at_kill
    assert summary["layers_reused"] + summary["layers_scanned"] == pushed.fixture.unique_layers
    layers = _layers(db)
    assert len(layers) == pushed.fixture.unique_layers and all(n == 1 for _, n in layers)
    assert _keys(_db_json(db, "findings")["findings"]) == _keys(
        _db_json(first_run[0], "findings")["findings"]
    )


def test_base_image_layers_are_marked_inherited(pushed: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "base.sqlite3"
    code, out, err = pushed.job(db, "--repo", "app0[0-2]", "--base", "app00:1.0")
    assert code == 1, err
    findings = _db_json(db, "findings")["findings"]
    by = {(f["image"].split("/", 1)[1], f["path"]): f["inherited"] for f in findings}
    # app00:1.0 is base-a + app00's layer: both are "in the base" for app00 itself; for app01,
    # only base-a is shared with it
    assert by[("app01:1.0", "/etc/ci-token")] is True
    assert by[("app01:1.0", "/app/.env")] is False
    assert by[("app01:latest", "/app/.env")] is False
    summary = json.loads(out)
    assert summary["repositories"] == 3 and summary["images"] == 9


def test_layers_common_to_many_repositories_are_marked_inherited(pushed: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "common.sqlite3"
    code, _, err = pushed.job(db, "--repo", "app0*", "--tags", "2", "--common-repos", "3")  # latest, 2.0
    assert code == 1, err
    findings = _db_json(db, "findings")["findings"]
    assert {f["inherited"] for f in findings if f["path"] == "/etc/ci-token"} == {True}  # in 10 repos
    assert {f["inherited"] for f in findings if f["path"] == "/app/.env"} == {False}  # its own


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, fleet.FleetFixture, Path]]:
    """A plain-HTTP anonymous registry: app01's own layer corrupted, app02's manifests gone."""
    work = tmp_path_factory.mktemp("damaged")
    fixture = fleet.build_fleet(work / "images", repos=4, filler=4096, multi=False)
    try:
        with services.start_registry(work / "registry", tls=False, auth=False) as registry:
            fleet.push_all(fixture, registry.host, registry.skopeo_dest())
            index = json.loads((fixture.layout / "index.json").read_text())
            ref = fixture.ref("app01", "1.0")
            digest = next(m["digest"] for m in index["manifests"] if m["annotations"][fleet.REF] == ref)
            manifest = json.loads((fixture.layout / "blobs/sha256" / digest.split(":")[1]).read_text())
            layer = manifest["layers"][1]["digest"]
            blob = registry.blob_path(layer)
            data = bytearray(blob.read_bytes())
            data[len(data) // 2] ^= 0xFF  # same size, other bytes: not what its digest says
            blob.write_bytes(bytes(data))
            revisions = registry.root / "docker/registry/v2/repositories/app02/_manifests/revisions"
            shutil.rmtree(revisions)
            yield registry, fixture, work / "home"
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    done = services.layerleak(*args, env=user_env(home))
    return done.returncode, done.stdout, done.stderr


def test_a_corrupt_blob_and_a_404_repo_are_errors_and_the_job_goes_on(
    damaged: tuple[Registry, fleet.FleetFixture, Path], tmp_path: Path
) -> None:
    registry, fixture, home = damaged
    db = tmp_path / "damaged.sqlite3"
    code, out, err = _run(
        home, "registry", registry.host, "--tags", "all", "--db", str(db), "--format", "json"
    )
    assert code == 2, err
    summary = json.loads(out)
    errors = summary["errors"]
    mismatch = [e for e in errors if "digest mismatch" in e]
    missing = [e for e in errors if "app02" in e]
    assert len(mismatch) == 1 and "app01" in mismatch[0], errors
    assert len(missing) == 3 and all(
        "no image" in e or "404" in e or "unknown" in e.lower() for e in missing
    ), errors
    assert len(errors) == 4, errors
    assert "Traceback" not in err and all(e in err for e in errors)  # each also one line on stderr
    assert summary["images"] == 9  # app00, app01 (incomplete), app03
    images = {i["image"].split("/", 1)[1]: i for i in _db_json(db, "images")["images"]}
    assert images["app01:1.0"]["complete"] is False and images["app00:1.0"]["complete"] is True
    assert "app02:1.0" not in images
    # the corrupt layer is not recorded, so a rerun tries it again (and fails again)
    code, out, _ = _run(home, "registry", registry.host, "--tags", "all", "--db", str(db), "--format", "json")
    rerun = json.loads(out)
    assert (
        code == 2
        and rerun["layers_scanned"] == 0
        and len([e for e in rerun["errors"] if "mismatch" in e]) == 1
    )
    assert rerun["images_unchanged"] == 6  # app00 and app03's images were complete


def test_a_registry_that_is_down_is_one_line(tmp_path: Path) -> None:
    port = services.free_port()
    code, out, err = _run(tmp_path, "registry", f"127.0.0.1:{port}", "--db", str(tmp_path / "x.sqlite3"),
                          "--format", "json")  # fmt: skip
    assert code == 2
    summary = json.loads(out)
    assert len(summary["errors"]) == 1 and "cannot reach" in summary["errors"][0]
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unreachable_dask_scheduler_is_one_line_and_the_job_goes_on(
    damaged: tuple[Registry, fleet.FleetFixture, Path], tmp_path: Path
) -> None:
    registry, _, home = damaged
    port = services.free_port()
    code, out, err = _run(home, "registry", registry.host, "--repo", "app00",
                          "--db", str(tmp_path / "d.sqlite3"), "--dask", f"tcp://127.0.0.1:{port}",
                          "--format", "json")  # fmt: skip
    assert code == 2
    summary = json.loads(out)
    assert summary["errors"][0].startswith(f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert summary["images"] == 1 and summary["layers_scanned"] == 0
    assert "Traceback" not in err


# --- a layer that keeps killing Dask workers ----------------------------------------------------

DOOMED = "sha256:" + "0" * 64


def _kill_on_doomed(task: BlobTask, engine: Engine) -> LayerOutcome:
    if task.digest == DOOMED:
        os._exit(3)  # what an out-of-memory kill looks like to Dask
    return scan_blob(task, engine)


def test_a_layer_that_keeps_killing_workers_is_an_error_and_the_job_goes_on(
    damaged: tuple[Registry, fleet.FleetFixture, Path],
) -> None:
    import cloudpickle

    registry, fixture, _ = damaged
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    index = json.loads((fixture.layout / "index.json").read_text())
    ref = fixture.ref("app00", "1.0")
    digest = next(m["digest"] for m in index["manifests"] if m["annotations"][fleet.REF] == ref)
    manifest = json.loads((fixture.layout / "blobs/sha256" / digest.split(":")[1]).read_text())
    good = [
        BlobTask(
            content_key(d["digest"]),
            registry.host,
            "app00",
            d["digest"],
            d["size"],
            base=f"http://{registry.host}",
        )
        for d in manifest["layers"]
    ]
    doomed = BlobTask(content_key(DOOMED), registry.host, "app00", DOOMED, 1)
    engine = Engine(load_rules(()))
    with DaskRunner(engine, "local", workers=1, fn=_kill_on_doomed, window=2) as runner:
        done = {task.digest: outcome for task, outcome in runner.run([good[0], doomed, *good[1:]])}
    assert set(done) == {DOOMED, *(t.digest for t in good)}
    assert done[DOOMED].scan is None and "KilledWorker" in (done[DOOMED].error or "")
    assert all(done[t.digest].ok for t in good)
    assert sum(len(done[t.digest].scan.hits) for t in good) == 2  # type: ignore[union-attr]
