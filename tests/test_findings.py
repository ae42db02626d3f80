"""Redaction, fingerprints and scrubbing: plaintext never leaks by default."""

from __future__ import annotations

from layerleak.detect.examples import armor
from layerleak.findings import fingerprint, redact, scrub


def test_redaction_never_shows_the_secret() -> None:
    for secret in ["ab", "abcdefgh", "tkn_Q7wE9rT2yU4iO6pA8sD1", "x" * 100]:
        shown = redact(secret)
        assert secret not in shown or len(secret) <= 2 and "*" in shown
        assert f"({len(secret)} chars)" in shown


def test_pem_keys_keep_only_their_header() -> None:
    begin = armor("BEGIN", "RSA PRIVATE KEY")
    pem = f"{begin}\nMIIEow...\n{armor('END', 'RSA PRIVATE KEY')}"
    assert redact(pem) == f"{begin} …(redacted)"


def test_fingerprint_is_stable_and_rule_scoped() -> None:
    assert fingerprint("r", "s") == fingerprint("r", "s")
    assert fingerprint("r", "s") != fingerprint("q", "s")
    assert "s3cr3tvalue" not in fingerprint("r", "s3cr3tvalue")


def test_scrub_replaces_every_known_secret() -> None:
    text = "|2 A=tkn_Q7wE9rT2yU4iO6pA8sD1 B=hunter2hunter2 /bin/sh -c build"
    out = scrub(text, ["tkn_Q7wE9rT2yU4iO6pA8sD1", "hunter2hunter2"])
    assert out is not None
    assert "tkn_Q7wE9rT2yU4iO6pA8sD1" not in out and "hunter2hunter2" not in out
    assert out.endswith("/bin/sh -c build")
    assert scrub(None, ["x"]) is None


def test_sensitive_build_args_are_masked_even_without_a_finding() -> None:
    from layerleak.findings import scrub_build_args

    step = "|3 VERSION=1.2.3 DB_PASSWORD=pw1 NPM_TOKEN= /bin/sh -c make"
    out = scrub_build_args(step)
    assert out == "|3 VERSION=1.2.3 DB_PASSWORD=******** (3 chars) NPM_TOKEN= /bin/sh -c make"
    assert scrub_build_args("/bin/sh -c make") == "/bin/sh -c make"
    assert scrub_build_args(None) is None


def test_allocator_hint_reaches_glibc() -> None:
    import platform
    import sys

    import pytest

    from layerleak.memory import return_large_buffers

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert return_large_buffers() is True
