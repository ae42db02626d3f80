"""Translate gitleaks-format rule files (``[[rules]]``) into our rules."""

from __future__ import annotations

from typing import Any

from layerleak.detect.rules import Rule
from layerleak.errors import RuleError


def translate_gitleaks(doc: dict[str, Any], origin: str) -> list[Rule]:
    raise RuleError(f"{origin}: gitleaks-format rule files are not supported yet")
