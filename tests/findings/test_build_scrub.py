"""assemble(): a secret of the image never shows in an error or warning line (a parser's message
may quote the text it met), unless --show-secrets."""

from __future__ import annotations

from plant import github_pat_classic

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.findings.build import assemble
from layerleak.layers.walk import FileHit, LayerScan
from layerleak.models import Match
from layerleak.sources.interface import ImageDesc, LayerRef

ENGINE = Engine(load_rules(()))
TOKEN = github_pat_classic()  # made now, at random


def _image() -> tuple[ImageDesc, dict[str, LayerScan]]:
    diff_id = "sha256:" + "0" * 64
    layer = LayerRef(index=0, key="l0", blob_digest=None, diff_id=diff_id, media_type=None, size=1)
    scan = LayerScan(key="l0")
    scan.hits.append(FileHit(path="/root/.token", match=Match("github-pat-classic", TOKEN, 0, 1)))
    scan.notes.append(("/srv/app.yml", f"could not parse near 'token: {TOKEN}'"))
    config = {"rootfs": {"diff_ids": [layer.diff_id]}, "history": [{"created_by": "COPY . /"}]}
    return ImageDesc("app:1", None, "linux/amd64", config, (layer,)), {"l0": scan}


def test_notes_are_scrubbed_of_the_images_secrets() -> None:
    image, scans = _image()
    result = assemble("t", image, scans, ENGINE, show_secrets=False)
    (note,) = [e for e in result.errors if e.path == "/srv/app.yml"]
    assert TOKEN not in note.message and f"{TOKEN[:6]}******** (40 chars)" in note.message
    shown = assemble("t", image, scans, ENGINE, show_secrets=True)
    assert any(TOKEN in e.message for e in shown.errors)
