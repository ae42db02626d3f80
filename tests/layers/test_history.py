from __future__ import annotations

from layerleak.layers.history import layer_steps


def test_empty_layers_are_skipped_when_pairing() -> None:
    config = {
        "history": [
            {"created_by": "ADD base /"},
            {"created_by": "ENV A=1", "empty_layer": True},
            {"created_by": "RUN rm /x"},
        ]
    }
    assert layer_steps(config, 2) == ["ADD base /", "RUN rm /x"]


def test_mismatched_history_pairs_nothing_rather_than_wrong_steps() -> None:
    config = {"history": [{"created_by": "ADD base /"}]}
    assert layer_steps(config, 2) == [None, None]
    assert layer_steps({}, 1) == [None]
