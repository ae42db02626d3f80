"""What a Dask worker holds for a fleet job: the engine, built once per worker process.

:class:`EnginePlugin` is registered with the job's client (``Client.register_plugin``): Dask
runs its ``setup`` on every worker of the cluster, and again on any worker that joins later (one
restarted after a ``KilledWorker``), so each worker process unpacks the rules, builds the engine
(automata and gates included) and imports the layer walk once, at start-up, while the client is
still enumerating. A task then carries only its :class:`~layerleak.scan.blobs.BlobTask` and the
ruleset hash: the rules never travel per task.

This module imports ``distributed``; only :class:`~layerleak.scan.runners.DaskRunner` imports it.
"""

from __future__ import annotations

import importlib
import pickle
import zlib
from collections.abc import Sequence
from typing import Any

from distributed import WorkerPlugin

from layerleak.detect.engine import Engine
from layerleak.detect.rules import Rule

ENGINES: dict[str, Engine] = {}  # ruleset hash -> engine, in this worker process


def pack_rules(rules: Sequence[Rule]) -> bytes:
    return zlib.compress(pickle.dumps(tuple(rules)))


class EnginePlugin(WorkerPlugin):
    """Builds one engine per worker process from the packed rules, when the worker starts."""

    def __init__(self, packed: bytes, ruleset: str, gate: str) -> None:
        self.packed = packed
        self.ruleset = ruleset
        self.gate = gate
        self.name = f"layerleak-engine-{ruleset}"

    def setup(self, worker: Any) -> None:
        engine_for(self.ruleset, self.packed, self.gate)


def engine_for(ruleset: str, packed: bytes | None = None, gate: str = "auto") -> Engine | None:
    """This worker's engine for ``ruleset``; built from ``packed`` rules when it has none yet."""
    engine = ENGINES.get(ruleset)
    if engine is None and packed is not None:
        from layerleak.memory import return_large_buffers

        return_large_buffers()
        rules: tuple[Rule, ...] = pickle.loads(zlib.decompress(packed))
        engine = ENGINES[ruleset] = Engine(rules, gate=gate).prepare()
        importlib.import_module("layerleak.layers.walk")  # the first task does not pay for it
    return engine
