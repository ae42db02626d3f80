"""Platforms normalised as containerd does, and errors that list what an image actually has.

The layouts and archives are written here with the hand-made fixture helpers (standard library
only); the CLI runs as a user runs it. The registry side of the same rules is in
test_registry_tls.py (a real docker-registry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import handmade
import plant
import pytest
from handmade import Blob, directory, file, layer_tar

from layerleak.errors import UsageError
from layerleak.sources import platforms
from layerleak.sources.platforms import Platform
from services import Run, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Built


@pytest.mark.parametrize(
    ("actual", "wanted", "match"),
    [
        ("linux/arm64", "linux/arm64/v8", True),  # the issue: v8 is arm64's default variant
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm64", "linux/aarch64", True),
        ("linux/aarch64", "linux/arm64/v8", True),
        ("linux/arm64/8", "linux/arm64/v8", True),
        ("linux/arm64/v9", "linux/arm64/v8", False),
        ("linux/amd64", "linux/x86_64", True),
        ("linux/amd64", "linux/amd64/v1", True),
        ("linux/amd64/v3", "linux/amd64", True),  # no variant asked: any variant
        ("linux/amd64", "linux/amd64/v3", False),
        ("linux/arm/v7", "linux/armhf", True),
        ("linux/arm", "linux/arm/v7", True),  # v7 is arm's default variant
        ("linux/arm/v6", "linux/armhf", False),
        ("linux/arm/v6", "linux/armel", True),
        ("linux/arm/v6", "linux/arm", True),
        ("linux/386", "linux/i386", True),
        ("Linux/AMD64", "linux/amd64", True),
        ("linux/arm64", "linux/amd64", False),
        ("windows/amd64", "linux/amd64", False),
        (None, "linux/amd64", False),
        (None, None, True),
    ],
)
def test_matches(actual: str | None, wanted: str | None, match: bool) -> None:
    assert platforms.matches(actual, wanted) is match


def test_normalized_forms() -> None:
    assert platforms.normalize("linux", "aarch64") == Platform("linux", "arm64", "v8")
    assert platforms.normalize("macos", "x86_64") == Platform("darwin", "amd64", "v1")
    assert platforms.normalize("linux", "armhf") == Platform("linux", "arm", "v7")
    assert platforms.parse("linux/arm64") == Platform("linux", "arm64", None)
    assert str(platforms.parse("linux/arm64/8")) == "linux/arm64/v8"


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", ""])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="OS/ARCH"):
        platforms.parse(text)


# --- an OCI layout whose index says linux/arm64 without a variant -------------------------------


def two_platform_layout(root: Path, *, nested: bool = False) -> dict[str, str]:
    """amd64 and arm64 (no variant anywhere, as many real indexes write it), one token each.

    Flat: index.json lists both manifests, ref names ``amd`` and ``arm``. Nested: index.json
    lists one image index named ``latest`` (what skopeo pushes with ``--all``).
    Returns the token planted for each architecture.
    """
    blobs: list[Blob] = []
    descriptors = []
    tokens = {}
    for arch in ("amd64", "arm64"):
        tokens[arch] = plant.github_pat_classic()
        diff = layer_tar([directory("app"), file("app/.env", f"GITHUB_TOKEN={tokens[arch]}\n")])
        layer = Blob(handmade.gzipped(diff), handmade.MT_OCI_LAYER_GZIP)
        config = handmade.image_config([diff], [{"created_by": f"COPY .env /app/ # {arch}"}], arch=arch)
        manifest = handmade.oci_manifest(config, [layer])
        descriptors.append(manifest.descriptor(platform={"architecture": arch, "os": "linux"}))
        blobs += [layer, config, manifest]
    ref = "org.opencontainers.image.ref.name"
    if nested:
        index = {"schemaVersion": 2, "mediaType": handmade.MT_OCI_INDEX, "manifests": descriptors}
        image_index = Blob(json.dumps(index).encode(), handmade.MT_OCI_INDEX)
        blobs.append(image_index)
        descriptors = [image_index.descriptor(annotations={ref: "latest"})]
    else:
        descriptors = [
            {**d, "annotations": {ref: name}} for d, name in zip(descriptors, ("amd", "arm"), strict=True)
        ]
    top = {"schemaVersion": 2, "mediaType": handmade.MT_OCI_INDEX, "manifests": descriptors}
    handmade.write_dir(root, handmade.oci_layout_files(top, blobs))
    return tokens


def _scan(home: Path, *args: str) -> Run:
    return layerleak("scan", "--no-progress", "--format", "json", *args, env=user_env(home))


def _one_error(run: Run) -> str:
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("layerleak: error:")]
    assert len(lines) == 1, run.describe()
    return lines[0]


@pytest.mark.parametrize("wanted", ["linux/arm64/v8", "linux/aarch64", "linux/arm64"])
def test_layout_platform_with_default_variant(tmp_path: Path, wanted: str) -> None:
    two_platform_layout(tmp_path / "layout")
    run = _scan(tmp_path, "--platform", wanted, f"oci:{tmp_path / 'layout'}")
    assert run.returncode == 1, run.describe()
    targets = run.report["targets"]
    assert isinstance(targets, list)
    assert [t["platform"] for t in targets] == ["linux/arm64"]


def test_layout_unknown_platform_lists_the_platforms(tmp_path: Path) -> None:
    two_platform_layout(tmp_path / "layout")
    line = _one_error(_scan(tmp_path, "--platform", "linux/s390x", f"oci:{tmp_path / 'layout'}"))
    assert "no image for platform linux/s390x" in line
    assert "linux/amd64, linux/arm64" in line


def test_invalid_platform_is_a_usage_error(tmp_path: Path) -> None:
    two_platform_layout(tmp_path / "layout")
    run = _scan(tmp_path, "--platform", "arm64", f"oci:{tmp_path / 'layout'}")
    assert run.returncode == 2, run.describe()
    assert "OS/ARCH" in run.stderr and "Traceback" not in run.stderr


def test_layout_unknown_ref_lists_ref_names(tmp_path: Path) -> None:
    two_platform_layout(tmp_path / "layout")
    line = _one_error(_scan(tmp_path, f"oci:{tmp_path / 'layout'}:nope"))
    assert "no image with ref name 'nope'" in line
    assert "ref names: amd, arm" in line
    assert "2 images, @0 to @1" in line


def test_layout_by_position(tmp_path: Path) -> None:
    tokens = two_platform_layout(tmp_path / "layout")
    run = _scan(tmp_path, "--show-secrets", f"oci:{tmp_path / 'layout'}:@1")
    assert run.returncode == 1, run.describe()
    assert tokens["arm64"] in run.stdout and tokens["amd64"] not in run.stdout
    line = _one_error(_scan(tmp_path, f"oci:{tmp_path / 'layout'}:@2"))
    assert "no image @2 in index.json: it lists 2 images, @0 to @1" in line


def test_archive_unknown_name_or_position_lists_what_it_holds(handmade_images: Built, tmp_path: Path) -> None:
    archive = handmade_images.path("multi")
    line = _one_error(_scan(tmp_path, f"docker-archive:{archive}:nope:1"))
    assert "no image named 'nope:1'" in line
    assert "2 images, @0 to @1: multi-a:1.0, multi-b:2.0" in line
    line = _one_error(_scan(tmp_path, f"docker-archive:{archive}:@2"))
    assert "no image @2 in the archive: it holds 2 images, @0 to @1" in line
