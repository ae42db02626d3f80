"""`layerleak layers` output: golden files for its table and JSON, from a hand-made timeline."""

from __future__ import annotations

import json

from report_sample import sample_report
from test_golden import check

from layerleak.report.layers import layers_json, layers_table
from layerleak.scan.timeline import Step, Timeline


def sample_timeline() -> Timeline:
    image = sample_report().targets[0].images[0]
    layers = image.layers
    steps = (
        Step(0, 0, "2026-11-30T10:00:00Z", layers[0].created_by, diff_id=layers[0].digest, size=1500,
             uncompressed=4096, added=3, findings={"deleted": 1}),
        Step(1, None, "2026-11-30T10:00:01Z", "/bin/sh -c #(nop)  ENV MODE=prod"),
        Step(2, 1, "2026-11-30T10:00:02Z", layers[1].created_by, diff_id=layers[1].digest, size=None,
             uncompressed=1024, deleted=1, findings={"history": 1}),
        Step(3, 2, "2026-11-30T10:00:03Z", layers[2].created_by, diff_id=layers[2].digest, size=900,
             uncompressed=2048, added=1, overwritten=1, findings={"present": 1, "overwritten": 1}),
    )
    return Timeline(image, steps)


def test_layers_table_golden() -> None:
    text = layers_table([sample_timeline()], 120)
    assert all(len(line) <= 120 for line in text.splitlines())
    assert "(no layer)" in text and "ENV MODE=prod" in text and "in /root/.aws/credentials" in text
    check("layers.txt", text)


def test_layers_json_golden() -> None:
    text = layers_json("docker-archive:leaky.tar", [sample_timeline()])
    doc = json.loads(text)
    assert [s["empty_layer"] for s in doc["images"][0]["steps"]] == [False, True, False, False]
    check("layers.json", text)
