"""docs/rules.md's coverage table is generated from the rule files and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from layerleak.detect.coverage import BEGIN, END, rewrite, table
from layerleak.detect.rules import load_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_the_committed_table_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert rewrite(text, table(load_rules())) == text, (
        "docs/rules.md's coverage table is stale: run python -m layerleak.detect.coverage docs/rules.md"
    )


def test_the_table_counts_every_rule_once() -> None:
    rules = load_rules()
    rendered = table(rules)
    rows = [line for line in rendered.splitlines() if line.startswith("| `")]
    assert sum(int(row.split("|")[2]) for row in rows) == len(rules)
    assert rendered.startswith(f"{len(rules)} built-in rules")
    assert len(rules) >= 600


def test_rewrite_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        rewrite("no markers here", "x")
    assert rewrite(f"a\n{BEGIN}\nold\n{END}\nb", "new\n") == f"a\n{BEGIN}\nnew\n{END}\nb"


def test_the_script_rewrites_a_stale_table(tmp_path: Path) -> None:
    doc = tmp_path / "rules.md"
    doc.write_text(f"# Rules\n\n{BEGIN}\n| stale |\n{END}\n\nmore\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "layerleak.detect.coverage", str(doc)], capture_output=True, text=True,
        check=False, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    text = doc.read_text(encoding="utf-8")
    assert "| stale |" not in text and text.endswith("\n\nmore\n")
    assert table(load_rules()) in text
