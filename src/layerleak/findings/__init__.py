"""Findings: matches with their locations turned into reportable, redacted findings.

- :mod:`~layerleak.findings.redact`: fingerprints, the fixed-size redacted form, scrubbing secrets
  out of other text (history steps, build args).
- :mod:`~layerleak.findings.build`: one image's layer scans, config and history -> its findings.
- :mod:`~layerleak.findings.dedup`: one finding per secret per file across layers.
- :mod:`~layerleak.findings.policy`: the confidence cut and the exit codes CI relies on.
"""
