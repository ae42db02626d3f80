"""Redaction, fingerprints and scrubbing: plaintext never leaks by default."""

from __future__ import annotations

from layerleak.detect.examples import armor
from layerleak.findings.redact import fingerprint, redact, scrub


def test_redaction_never_shows_the_secret() -> None:
    for secret in ["ab", "abcdefgh", "tkn_Q7wE9rT2yU4iO6pA8sD1", "x" * 100]:
        shown = redact(secret)
        assert secret not in shown or len(secret) <= 2 and "*" in shown
        assert f"({len(secret)} chars)" in shown


def _pem(label: str, sep: str, lines: int = 26) -> str:
    import random

    rng = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = ["".join(rng.choice(alphabet) for _ in range(64)) for _ in range(lines)]
    return sep.join([armor("BEGIN", label), *body, armor("END", label)])


def test_pem_keys_show_their_label_and_nothing_of_the_key() -> None:
    # Real newlines, JSON-escaped newlines (a GCP service-account key), none at all (a key
    # inside a binary): the redacted form is the same short form, with no key material.
    for sep in ("\n", "\\n", "", " "):
        pem = _pem("RSA PRIVATE KEY", sep)
        shown = redact(pem)
        assert shown == f"[RSA PRIVATE KEY] ******** ({len(pem)} chars)"
        body = pem.split("-----")[4 if sep else 2]
        assert not any(body[i : i + 8] in shown for i in range(0, len(body) - 8))
    quoted = redact('"' + _pem("PRIVATE KEY", "\\n"))
    assert quoted.startswith("[PRIVATE KEY] ********")


def test_redacted_forms_are_short_and_fixed_size() -> None:
    import random

    rng = random.Random(3)
    shapes = [
        "x" * 5000,  # a long one-line value
        "line one\nline two\n" * 300,  # multi-line
        "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(3000)),  # binary-ish text
        armor("BEGIN", "A" * 200) + "Zm9v" * 500,  # a hostile, huge PEM label
        "-----BEGIN" + "\x1b[31m" * 50,  # armor-like junk with escapes
    ]
    for secret in shapes:
        shown = redact(secret)
        assert len(shown) <= 48, shown
        assert shown.count("*") >= 8
        # never more than 6 characters of the secret itself
        pieces = (secret[i : i + 7] for i in range(len(secret) - 7))
        assert not any(p in shown for p in pieces if "*" not in p)


def test_shown_characters_scale_with_length() -> None:
    assert redact("abcdefg") == "******** (7 chars)"
    key_id = "AKIA" + "Q" * 16  # the shape of an AWS key id, built from parts
    assert redact(key_id) == "AKIAQ******** (20 chars)"
    assert redact("ghp_" + "a1" * 18) == "ghp_a1******** (40 chars)"


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
    from layerleak.findings.redact import scrub_build_args

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


def test_scrub_replaces_a_base64_value_that_holds_a_secret() -> None:
    import base64

    key = _pem("EC PRIVATE KEY", "\n", lines=6)
    encoded = base64.b64encode((key + "\n").encode()).decode()
    step = f"/bin/sh -c echo {encoded} | base64 -d > /root/.ssh/key && chmod 600 /root/.ssh/key"
    scrubbed = scrub(step, [key])
    assert scrubbed is not None and encoded not in scrubbed
    assert scrubbed.startswith("/bin/sh -c echo ") and scrubbed.endswith("chmod 600 /root/.ssh/key")
    assert all(encoded[i : i + 12] not in scrubbed for i in range(len(encoded) - 12))
    # a base64 value that holds no known secret is left alone, and so is everything without one
    other = base64.b64encode(b"just some configuration text here").decode()
    assert scrub(f"echo {other}", [key]) == f"echo {other}"
    assert scrub(f"echo {encoded}", []) == f"echo {encoded}"


def test_decoded_views_find_a_secret_held_only_encoded() -> None:
    import base64

    from layerleak.findings.redact import decoded_views

    secret = "tkn_Q7wE9rT2yU4iO6pA8sD1"
    step = "RUN echo " + base64.b64encode(f"token={secret}".encode()).decode() + " | base64 -d"
    assert any(secret in view for view in decoded_views([step, None]))
