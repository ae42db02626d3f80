"""Regexes on hostile input: a crafted 10 MB line must not hang a scan, for our rules or a user's.

RE2 has no backtracking, so a search is linear in the text it reads; what needs backtracking
(backreferences, lookaround, atomic groups, possessive quantifiers) is refused when the rules load.
The scans run in a subprocess with a generous timeout that only detects a hang: these are safety
tests, not speed targets (bench/ holds those).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from layerleak.detect.rules import load_rules
from layerleak.errors import RuleError

HANG_S = 120
LINE = 10 * 1024 * 1024

# Patterns that make a backtracking engine take exponential (or high-polynomial) time.
CATASTROPHIC = {
    "nested-plus": (r"(a+)+$", "a" * LINE + "!"),
    "overlapping-alternation": (r"(a|aa)*b", "a" * LINE),
    "repeated-dot-star": (r"(.*a){20}", "a" * 19 + "b" * LINE),
    "word-space-star": (r"^(\w+\s?)*$", "a" * LINE + "!"),
}


def run_hang_detector(script: str) -> str:
    """Run ``script`` in a fresh interpreter; fail (not hang) if it outlives HANG_S."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True, text=True, timeout=HANG_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scan did not finish within {HANG_S}s on hostile input", pytrace=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_builtin_rules_on_a_hostile_10mb_line() -> None:
    # Two 10 MB lines, no newline. The first: every built-in rule's keywords, each followed by
    # a run of secret-like characters longer than the rule's window and no terminator, then more
    # of the same up to 10 MB. The second: every keyword and a short near-match, over and over.
    out = run_hang_detector(
        f"""
        import io
        from layerleak.detect.engine import Engine
        from layerleak.detect.rules import load_rules
        rules = load_rules()
        engine = Engine(rules)
        runs = "".join(kw + "=" + "aB3" * (r.window // 3 + 64) for r in rules for kw in r.keywords)
        long = (runs + "aB3" * ({LINE} // 3)).encode()[:{LINE}]
        near = "".join(kw + "=" + "Zq7" * 60 + " " for r in rules for kw in r.keywords)
        flood = (near * ({LINE} // len(near) + 1)).encode()[:{LINE}]
        for data in (long, flood):
            list(engine.scan_stream(io.BytesIO(data), "/hostile"))
        print(sum(kw in runs for r in rules for kw in r.keywords), sum(len(r.keywords) for r in rules))
        """
    )
    scanned, count = map(int, out.split())
    assert scanned == count > 0


def test_catastrophic_user_patterns_are_linear(tmp_path: Path) -> None:
    # The classic ReDoS patterns as a user's gitleaks rules, each on its own 10 MB line.
    files = []
    for name, (pattern, text) in CATASTROPHIC.items():
        rule = tmp_path / f"{name}.toml"
        rule.write_text(f"[[rules]]\nid = '{name}'\nregex = '''{pattern}'''\n")  # no keywords: every chunk
        data = tmp_path / f"{name}.txt"
        data.write_text(text)
        files.append((str(rule), str(data)))
    out = run_hang_detector(
        f"""
        from pathlib import Path
        from layerleak.detect.engine import Engine
        from layerleak.detect.rules import load_rules
        for rule, data in {files!r}:
            engine = Engine(load_rules([Path(rule)], builtin=False))
            with open(data, "rb") as f:
                print(len(list(engine.scan_stream(f, "/hostile"))))
        """
    )
    assert out.split() == ["0"] * len(CATASTROPHIC)  # nothing here is a secret; the point is time


def test_the_same_input_hangs_a_backtracking_engine() -> None:
    # The control: Python's re needs 2**30 steps for (a+)+$ on 30 a's and a '!'. If this ever
    # finished quickly, the inputs above would prove nothing.
    script = "import re; re.match(r'(a+)+$', 'a' * 30 + '!')"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", script], timeout=2)


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", r"(?P<x>a)(?P=x)", r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"(?<!a)b", r"(?>a+)b", r"a++b",
     r"((a{1000}){1000}){1000}"],
)
@pytest.mark.parametrize("fmt", ["ours", "gitleaks"])
def test_backtracking_constructs_are_refused(tmp_path: Path, pattern: str, fmt: str) -> None:
    path = tmp_path / "r.toml"
    if fmt == "ours":
        body = f"[[rule]]\nid = 'x'\nkeywords = ['aaa']\nregex = '''(?P<secret>{pattern})'''\n"
    else:
        body = f"[[rules]]\nid = 'x'\nregex = '''{pattern}'''\n"
    path.write_text(body)
    with pytest.raises(RuleError, match=r"rule x.*: regex is not valid RE2 syntax"):
        load_rules([path], builtin=False)
