"""-o FILE appears whole or not at all; a device or FIFO is written in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerleak.report.atomic import AtomicFile, write_atomic


def test_the_file_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    out = AtomicFile(path)
    out.write("{\n")
    assert not path.exists()  # half a report is never where a reader looks
    (partial,) = [p for p in tmp_path.iterdir()]
    assert partial.name.startswith(".report.json.") and partial.name.endswith(".part")
    out.write("}\n")
    out.commit()
    assert path.read_text() == "{\n}\n" and list(tmp_path.iterdir()) == [path]


def test_discard_leaves_the_earlier_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.json"
    path.write_text("earlier\n")
    out = AtomicFile(path)
    out.write("half")
    out.discard()
    assert path.read_text() == "earlier\n" and list(tmp_path.iterdir()) == [path]

    def interrupted(self: AtomicFile, text: str) -> int:
        self.file.write(text[:3])
        raise KeyboardInterrupt  # Ctrl-C half-way through writing

    monkeypatch.setattr(AtomicFile, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "a whole new report")
    assert path.read_text() == "earlier\n" and list(tmp_path.iterdir()) == [path]


def test_mode_of_an_existing_file_is_kept_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    kept.write_text("x")
    os.chmod(kept, 0o600)
    write_atomic(kept, "y")
    assert kept.stat().st_mode & 0o777 == 0o600
    mask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.json", "z")
    finally:
        os.umask(mask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640


def test_through_a_symlink_the_named_file_is_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, "through the pipe\n")
    reader.join(30)
    assert got == [b"through the pipe\n"] and sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]
