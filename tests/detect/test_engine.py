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


SHARED_SHAPE = '''
[[rule]]
id = "acme-key"
title = "Acme key"
severity = "critical"
keywords = ["ak_live_"]
regex = \'\'\'\\b(?P<secret>ak_live_[A-Za-z0-9]{20,60})\\b\'\'\'
[[rule]]
id = "other-key"
title = "Other key with Acme's prefix"
severity = "high"
keywords = ["other"]
regex = \'\'\'OTHER_KEY=(?P<secret>ak_live_[A-Za-z0-9]{20,60})\\b\'\'\'
supersedes = ["acme-key"]
'''


def test_a_rule_supersedes_another_on_the_same_bytes_only() -> None:
    """Two providers' keys with one shape: the rule that also reads the context wins where it
    matches, and the other rule still reports the key everywhere else."""
    import random

    from layerleak.detect.examples import expand

    eng = Engine(parse_rules_text(SHARED_SHAPE, "test"))
    rng = random.Random(7)
    key, another = expand("ak_live_{{alnum:40}}", rng), expand("ak_live_{{alnum:40}}", rng)
    assert [m.rule_id for m in eng.scan(f"OTHER_KEY={key}\n".encode())] == ["other-key"]
    assert [m.rule_id for m in eng.scan(f"ACME_KEY={key}\n".encode())] == ["acme-key"]
    both = eng.scan(f"OTHER_KEY={key}\nACME_KEY={another}\n".encode())
    assert [(m.rule_id, m.secret) for m in both] == [("other-key", key), ("acme-key", another)]


def test_clerk_and_workos_keys_are_not_stripe_keys() -> None:
    """Clerk's, WorkOS's and Stripe's secret keys share "sk_live_": each is one finding of its
    own provider's rule, and a Clerk publishable key is no finding."""
    import random

    from layerleak.detect.examples import expand
    from layerleak.detect.rules import load_rules

    eng = Engine(load_rules())
    rng = random.Random(11)
    body = expand("{{alnum:42}}", rng)
    cases = {
        f"CLERK_SECRET_KEY=sk_live_{body}": "clerk-secret-key",
        f"CLERK_SECRET_KEY=sk_test_{body}": "clerk-test-secret-key",
        f"STRIPE_SECRET_KEY=sk_live_{body}": "stripe-secret-key",
        "WORKOS_API_KEY=sk_live_a2V5XzAx" + expand("{{b64url:67}}", rng): "workos-api-key",
        "WORKOS_API_KEY=sk_test_a2V5XzAx" + expand("{{alnum:67}}", rng): "workos-test-api-key",
    }
    for line, rule_id in cases.items():
        assert [m.rule_id for m in eng.scan(line.encode())] == [rule_id], line
    assert eng.scan(b"NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY=pk_live_Y2xlcmsuZXhhbXBsZS5jb20k\n") == []
