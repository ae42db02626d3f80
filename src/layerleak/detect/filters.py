"""False-positive filters: small pure predicates on a candidate secret.

Each returns a short reason when the candidate is *not* a secret, else None. The engine applies all
of them to every match; rules refine with their own allowlists.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Documented example credentials (AWS docs) that appear in countless READMEs and SDK tests.
DOCUMENTED_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
    }
)

_PLACEHOLDER_WORDS = (
    "changeme", "change_me", "change-me", "example", "placeholder", "your_", "your-", "yourkey",
    "yourtoken", "yourpass", "dummy", "sample", "redacted", "replace", "xxxx", "****", "todo",
    "fixme", "foobar", "notasecret", "not_a_secret", "insert", "<", ">",
)
# Values that are a word and nothing else: "secret", "password", "none", ...
_PLACEHOLDER_EXACT = frozenset(
    {
        "secret", "password", "passwd", "null", "none", "undefined", "true", "false", "token",
        "string", "value", "empty", "default", "test", "testing", "admin", "root", "pass",
        "apikey", "api_key", "secretkey", "secret_key", "mysecret", "mypassword", "s3cr3t",
        "p@ssw0rd", "password123", "hunter2", "letmein",
    }
)
_TEMPLATE = re.compile(
    r"\$\{|\{\{|\}\}|%\(|\$\(|^\$[A-Za-z_]|%[A-Za-z_]+%|<[A-Za-z_ -]+>|@[A-Za-z_]+@|^\*+$"
)
_ASCENDING = ("0123456789", "abcdefghijklmnopqrstuvwxyz")


def documented_example(secret: str) -> str | None:
    return "documented example" if secret in DOCUMENTED_EXAMPLES else None


def template(secret: str) -> str | None:
    return "template" if _TEMPLATE.search(secret) else None


def placeholder(secret: str) -> str | None:
    low = secret.lower()
    if low.strip("'\"") in _PLACEHOLDER_EXACT:
        return "placeholder"
    return "placeholder" if any(w in low for w in _PLACEHOLDER_WORDS) else None


def low_diversity(secret: str) -> str | None:
    return "low diversity" if len(set(secret)) < 4 else None


def sequential(secret: str) -> str | None:
    low = secret.lower()
    for run in _ASCENDING:
        for i in range(len(run) - 7):
            if run[i : i + 8] in low:
                return "sequential"
    return None


FILTERS: tuple[Callable[[str], str | None], ...] = (
    documented_example,
    template,
    placeholder,
    low_diversity,
    sequential,
)


def rejection(secret: str) -> str | None:
    """The first reason this candidate is not a secret, or None if it may be one."""
    for check in FILTERS:
        reason = check(secret)
        if reason:
            return reason
    return None
