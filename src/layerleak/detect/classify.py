"""Decide cheaply, from a file's first bytes, what its content is. Magic bytes decide, never names.

- Containers (:func:`container_kind`): archives and compressed streams. They are opened by
  :mod:`layerleak.entries.nested` and their content is scanned, not their raw bytes.
- Skipped formats (:func:`skip_reason`): compressed or encoded so that no plaintext survives and
  we cannot open them: images, audio/video, fonts, 7z.
- Encodings and binaries the decoders handle (:func:`text_encoding`, :func:`is_pyc`).
- Everything else is scanned as bytes, binaries included: keys hide in ELF files, SQLite
  databases and .class files.
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
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"PK\x05\x06", "zip"),  # an empty zip: an end-of-central-directory record and nothing else
)

GZIP = "gzip"
BZIP2 = "bzip2"
XZ = "xz"
ZSTD = "zstd"
ZIP = "zip"
TAR = "tar"
STREAMS = (GZIP, BZIP2, XZ, ZSTD)  # one compressed stream: the content is one file

HEAD = 512  # bytes of a file the classifiers look at


_SKIP_STARTS = tuple(magic for magic, _ in SKIP_MAGIC)


def skip_reason(head: bytes) -> str | None:
    """The format name when the content is not worth scanning and cannot be opened, else None."""
    if head.startswith(_SKIP_STARTS):  # one test for all of them; then which one
        for magic, name in SKIP_MAGIC:
            if head.startswith(magic):
                return name
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "riff"
    if head.startswith(b"ftyp", 4):
        return "mp4"
    return None


def container_kind(head: bytes) -> str | None:
    """The archive or compression format of content starting with ``head``, else None.

    A .jar, .war, .ear, .whl and .egg is a zip; a .tgz is gzip around tar.
    """
    if not head.startswith(_CONTAINER_STARTS):
        return TAR if head.startswith(b"ustar", 257) else None  # POSIX "ustar\0" and GNU "ustar  \0"
    if head.startswith(b"\x1f\x8b\x08"):
        return GZIP
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return XZ
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    if head.startswith(b"ustar", 257):
        return TAR
    return None


# What the compressed and zip formats of container_kind start with (a tar's mark is at 257)
_CONTAINER_STARTS = (b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"PK\x03\x04")


def text_encoding(head: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" for UTF-16 text (a byte-order mark, or ASCII text whose every
    other byte is NUL), else None."""
    if head.startswith(b"\xff\xfe") and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    size = min(len(head), HEAD & ~1)
    if size < 32:
        return None
    half = size // 2
    if head.count(0, 0, size) < 0.9 * half:
        return None  # neither half can hold 90% NULs: most files leave here, after one count
    sample = head[:size]
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.9 * half and even.count(0) <= 0.05 * half and _printable(even) >= 0.9:
        return "utf-16-le"
    if even.count(0) >= 0.9 * half and odd.count(0) <= 0.05 * half and _printable(odd) >= 0.9:
        return "utf-16-be"
    return None


def _printable(data: bytes) -> float:
    ok = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13))
    return ok / len(data) if data else 0.0


PYC_CODE = (0x63, 0xE3)  # marshal TYPE_CODE, without and with FLAG_REF


def pyc_header(head: bytes) -> int | None:
    """The header length of a compiled Python file (.pyc), else None.

    The magic is two bytes of version number then ``\\r\\n``; the code object follows a header of
    16 bytes (Python 3.7+), 12 (3.3 to 3.6) or 8 (older).
    """
    if head[2:4] != b"\r\n":
        return None
    for size in (16, 12, 8):
        if len(head) > size and head[size] in PYC_CODE:
            return size
    return None


def is_binary(head: bytes) -> bool:
    return head.find(b"\x00", 0, 8192) >= 0
