"""``scan --db``: each target's images recorded as the scan yields them; ``--from-file`` lists."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from layerleak.errors import UsageError
from layerleak.models import TargetResult
from layerleak.store.cache import scanner_version
from layerleak.store.results.db import ImageRecord, ResultsDB

MAX_TARGETS = 1_000_000  # lines read from --from-file


def read_targets(spec: str) -> list[str]:
    """One target a line; blank lines and ``#`` comments skipped; ``-`` is stdin."""
    try:
        if spec == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(spec).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--from-file {spec}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--from-file {spec}: not UTF-8 text") from None
    targets = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(targets) > MAX_TARGETS:
        raise UsageError(f"--from-file {spec}: more than {MAX_TARGETS} targets")
    return targets


class ScanRecorder:
    """Writes each image of each target result; plaintext (``--show-secrets``) is never stored."""

    def __init__(self, db_url: str, ruleset: str) -> None:
        self.db = ResultsDB(db_url)
        self.ruleset = ruleset
        self.scanner = scanner_version()

    def record(self, result: TargetResult) -> None:
        for image in result.images:
            redacted = tuple(dataclasses.replace(f, secret=None) for f in image.findings)
            self.db.record_image(
                ImageRecord(name=image.image or result.target, platform=image.platform),
                dataclasses.replace(image, findings=redacted),
                self.ruleset,
                self.scanner,
            )

    def close(self) -> None:
        self.db.close()
