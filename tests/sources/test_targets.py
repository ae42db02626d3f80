"""TARGET parsing: transports, PATH[:REF] with colons, detection of bare paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Built
from layerleak.errors import LayerleakError
from layerleak.sources.archive import OciDirSource, TarArchiveSource
from layerleak.sources.targets import open_target, split_path_ref


def test_split_path_ref(tmp_path: Path) -> None:
    d = tmp_path / "with:colon"
    d.mkdir()
    assert split_path_ref(str(d)) == (str(d), None)
    assert split_path_ref(f"{d}:v1") == (str(d), "v1")
    assert split_path_ref(f"{d}:repo:tag") == (str(d), "repo:tag")
    assert split_path_ref("/nope/x:y") == ("/nope/x:y", None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.tar", "no such file"),
        (lambda p: (p / "junk.tar").write_bytes(b"not an image" * 100) and p / "junk.tar",
         "not an image archive"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "not an OCI image layout"),
    ],
)
def test_bad_targets_are_one_clear_error(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(LayerleakError) as err:
        open_target(str(path))
    assert message in err.value.diagnostics()
    assert "\n" not in err.value.diagnostics()


def test_transport_mismatch(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(LayerleakError, match="is a directory"):
        open_target(f"docker-archive:{tmp_path}")
    assert isinstance(open_target(f"oci:{tmp_path}"), OciDirSource)
    assert isinstance(open_target(str(tmp_path)), OciDirSource)


def test_archive_detection(tmp_path: Path) -> None:
    import io
    import tarfile

    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    with open_target(str(path)) as src:
        assert isinstance(src, TarArchiveSource) and not src.streaming
        assert src.images() == []


def test_targets_that_read_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from layerleak.sources.targets import reads_stdin

    for target in ("-", "-:app:1", "docker-archive:-", "oci-archive:-:v1", "docker-archive:/dev/stdin",
                   "/dev/stdin", "/dev/fd/0"):
        assert reads_stdin(target), target
    for target in ("docker://host/-", "docker-daemon:-", "app.tar", "docker-archive:app-1.tar"):
        assert not reads_stdin(target), target
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_bytes(b"")  # a file named "-" is that file
    assert not reads_stdin("-")


def test_stdin_cannot_be_an_oci_directory() -> None:
    with pytest.raises(LayerleakError, match="oci-archive:-"):
        open_target("oci:-")


def test_a_fifo_is_opened_without_losing_its_first_bytes(handmade_images: Built, tmp_path: Path) -> None:
    """A FIFO is not sniffed (a read would consume it): it is streamed from its first byte."""
    import os
    import threading

    fifo = tmp_path / "image.fifo"
    os.mkfifo(fifo)
    data = handmade_images.path("opaque").read_bytes()

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with open_target(str(fifo)) as source:
        assert source.streaming
        keys = [key for key, stream in source.blobs(None) if stream.read(1) is not None]
        assert keys and source.images()[0].name == "opaque:latest"
    writer.join(60)
