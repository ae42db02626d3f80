"""Decide cheaply, from a file's first bytes, whether its content can hold a readable secret.

We skip only formats whose bytes are compressed or encoded so that no plaintext survives in them:
images, audio/video, fonts, and compressed streams and archives (those are opened by the nested
archive reader, not scanned raw). Everything else is scanned, binaries included: keys hide in
ELF files, .pyc constants, SQLite databases and .class files.
"""

from __future__ import annotations

SKIP_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"wOFF", "woff"),
    (b"wOF2", "woff2"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
)


def skip_reason(head: bytes) -> str | None:
    """The format name when the content is not worth scanning raw, else None."""
    for magic, name in SKIP_MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "riff"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None
