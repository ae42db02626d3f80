"""The engine: keyword windows, chunk boundaries, filters, entropy."""

from __future__ import annotations

import io

import pytest

from conftest import TOKEN, TOKEN_RULE
from layerleak.detect import engine as engine_mod
from layerleak.detect.engine import Engine
from layerleak.detect.entropy import shannon_entropy
from layerleak.detect.rules import parse_rules_text

RULES = TOKEN_RULE + '''
[[rule]]
id = "test-generic"
title = "Generic"
severity = "medium"
confidence = "medium"
keywords = ["passwd"]
regex = \'\'\'passwd\\s*=\\s*(?P<secret>[^\\s]{8,})\'\'\'
entropy = 3.0
'''
SECRET = TOKEN


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(parse_rules_text(RULES, "test"))


def test_keyword_is_case_insensitive_regex_is_not(engine: Engine) -> None:
    assert [m.secret for m in engine.scan(f"x {SECRET} y".encode())] == [SECRET]
    assert engine.scan(SECRET.upper().encode()) == []


def test_lines_and_offsets(engine: Engine) -> None:
    data = f"one\ntwo\n  {SECRET}\n".encode()
    (m,) = engine.scan(data)
    assert (m.line, m.offset) == (3, data.index(b"tkn_"))


def test_repeated_hits_report_each_secret_once(engine: Engine) -> None:
    data = (f"{SECRET} " * 50).encode()
    matches = engine.scan(data)
    assert len(matches) == 50
    assert len({m.offset for m in matches}) == 50


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        ("passwd = Zx8#kQ2!vL9m", True),
        ("passwd = changeme123", False),
        ("passwd = ${DB_PASSWORD}", False),
        ("passwd = aaaaaaaaaaaa", False),
        ("passwd = 12345678abc", False),
        ("passwd = <your-password>", False),
    ],
)
def test_filters_and_entropy(engine: Engine, payload: str, found: bool) -> None:
    assert bool(engine.scan(payload.encode())) is found


def test_secret_across_a_chunk_boundary(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(engine_mod, "OVERLAP", 512)
    for cut in range(4096 - 30, 4096 + 2):
        data = b"x" * 10 + b"\n" * (cut - 10) + SECRET.encode() + b"\n" + b"y" * 9000
        found = list(engine.scan_stream(io.BytesIO(data)))
        assert [(m.secret, m.offset, m.line) for m in found] == [(SECRET, cut, cut - 9)], cut


def test_large_file_is_scanned_in_bounded_chunks(engine: Engine) -> None:
    data = b"filler line\n" * 2_000_000 + SECRET.encode()  # ~24 MB, the secret at the end
    found = list(engine.scan_stream(io.BytesIO(data)))
    assert [(m.offset, m.line) for m in found] == [(len(data) - len(SECRET), 2_000_001)]


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


def test_a_flood_of_keyword_hits_makes_bounded_windows(engine: Engine) -> None:
    """Every secret in a long run of dense keyword hits is still found once, through windows that
    stay bounded (so a regex's all-matches cost cannot grow with the square of the line)."""
    parts = [f"tkn_{i}" if i % 7 else f"tkn_Q7wE9rT2yU4iO6pA{i:04d}" for i in range(3000)]
    data = " ".join(parts).encode()
    found = engine.scan(data)
    expected = [p for i, p in enumerate(parts) if i % 7 == 0]
    assert [m.secret for m in found] == expected
