"""Where a fleet job's layer tasks run: here, in worker processes, or on a Dask cluster.

Every runner takes an iterator of :class:`~layerleak.scan.blobs.BlobTask` and yields each task with
its :class:`~layerleak.scan.blobs.LayerOutcome` as it completes, keeping a *bounded window* of
tasks in flight: the iterator is pulled only as results come back, so millions of layers never
sit in a queue (a Dask scheduler stalls on millions of futures). Nothing is lost if the process
dies: the caller writes each outcome to the results database as it arrives, and the database is
the checkpoint (Dask's scheduler keeps no state across a crash).

- :class:`PoolRunner`: ``-j N`` processes on this machine (``-j 1``: in this process).
- :class:`DaskRunner`: ``--dask local`` (a ``LocalCluster``) or ``--dask tcp://HOST:8786`` (an
  existing scheduler, e.g. from dask-jobqueue or dask-kubernetes). A layer whose task keeps
  killing workers (``KilledWorker``) is that layer's error; the job goes on.
"""

from __future__ import annotations

import abc
import importlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from layerleak.detect.engine import Engine
from layerleak.detect.rules import Rule
from layerleak.errors import LayerleakError
from layerleak.memory import return_large_buffers
from layerleak.scan.blobs import BlobTask, LayerOutcome, scan_blob

TaskFn = Callable[[BlobTask, Engine], LayerOutcome]
Done = tuple[BlobTask, LayerOutcome]


class RunnerError(LayerleakError):
    """A runner cannot run tasks at all (an unreachable Dask scheduler)."""


class Runner(abc.ABC):
    window: int
    startup_seconds: float = 0.0  # spent starting workers (a Dask cluster, its plugins)
    waited_seconds: float = 0.0  # of which the job waited for, with nothing else to do

    @abc.abstractmethod
    def run(self, tasks: Iterable[BlobTask]) -> Iterator[Done]:
        """Each task with its outcome, in the order they complete."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Work is coming: start what takes time to start (a no-op unless a runner says)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LazyRunner(Runner):
    """A runner made when it is first needed: a job with nothing to scan (a rerun of a finished
    job) starts no worker processes, and neither starts nor reaches Dask. :meth:`warm` starts
    making it in the background (the job calls it at the first image to scan, so a Dask cluster
    starts while the registry is still being enumerated). A :class:`RunnerError` from ``make`` is
    raised by :meth:`run`."""

    def __init__(self, make: Callable[[], Runner]) -> None:
        self._make = make
        self._runner: Runner | None = None
        self._error: RunnerError | None = None
        self._thread: threading.Thread | None = None
        self.window = 0

    def _start(self) -> None:
        started = time.monotonic()
        try:
            self._runner = self._make()
            self.window = self._runner.window
        except RunnerError as exc:
            self._error = exc
        self.startup_seconds = time.monotonic() - started

    def warm(self) -> None:
        if self._thread is None and self._runner is None and self._error is None:
            self._thread = threading.Thread(target=self._start, name="layerleak-runner", daemon=True)
            self._thread.start()

    def run(self, tasks: Iterable[BlobTask]) -> Iterator[Done]:
        waiting = time.monotonic()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        elif self._runner is None and self._error is None:
            self._start()
        self.waited_seconds += time.monotonic() - waiting
        if self._error is not None:
            raise self._error
        assert self._runner is not None
        yield from self._runner.run(tasks)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._runner is not None:
            self._runner.close()


# --- processes on this machine ------------------------------------------------------------------

_engine: Engine | None = None
_fn: TaskFn = scan_blob


def _init(rules: Sequence[Rule] | None, gate: str, engine: Engine | None, fn: TaskFn) -> None:
    global _engine, _fn
    return_large_buffers()
    _engine = engine if engine is not None else Engine(rules or (), gate=gate)
    _fn = fn


def _work(task: BlobTask) -> LayerOutcome:
    assert _engine is not None, "the pool initializer builds the engine"
    return _fn(task, _engine)


class PoolRunner(Runner):
    def __init__(
        self, engine: Engine, jobs: int = 1, fn: TaskFn = scan_blob, window: int | None = None
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        self.fn = fn
        self.window = window or max(4, 2 * jobs)

    def run(self, tasks: Iterable[BlobTask]) -> Iterator[Done]:
        if self.jobs <= 1:
            for task in tasks:
                yield task, self.fn(task, self.engine)
            return
        if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
            ctx: multiprocessing.context.BaseContext = multiprocessing.get_context("fork")
            # built once here, before the fork: the workers share the automata and gates
            args: tuple[Any, ...] = (None, self.engine.gate, self.engine.prepare(), self.fn)
        else:
            ctx = multiprocessing.get_context("spawn")
            args = (tuple(self.engine.rules), self.engine.gate, None, self.fn)
        source = iter(tasks)
        with ProcessPoolExecutor(self.jobs, ctx, _init, args) as pool:
            pending: dict[Future[LayerOutcome], BlobTask] = {}

            def top_up() -> None:
                while len(pending) < self.window:
                    task = next(source, None)
                    if task is None:
                        return
                    pending[pool.submit(_work, task)] = task

            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        raise RunnerError(
                            f"a layer-scanning worker process died on {task.digest} (out of memory?)"
                        ) from None
                    yield task, outcome
                top_up()


# --- Dask ---------------------------------------------------------------------------------------

def _dask_task(task: BlobTask, ruleset: str, fn: TaskFn) -> LayerOutcome:
    """Runs on a Dask worker, with the engine its :class:`EnginePlugin` built at start-up."""
    from layerleak.scan.dask_worker import engine_for

    engine = engine_for(ruleset)
    if engine is None:
        return LayerOutcome(task.key, None, f"{task.digest}: the Dask worker has no layerleak engine")
    return fn(task, engine)


class DaskRunner(Runner):
    """``address`` is ``local`` (start a LocalCluster of ``workers`` processes) or a scheduler's
    ``tcp://HOST:PORT``. Connection problems are :class:`RunnerError` (one line)."""

    def __init__(
        self,
        engine: Engine,
        address: str,
        workers: int = 2,
        fn: TaskFn = scan_blob,
        window: int | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            dask: Any = importlib.import_module("dask")
            distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise RunnerError("--dask needs Dask: pip install 'layerleak[fleet]'") from None
        self.engine = engine
        self.fn = fn
        self.address = address
        self.cluster: Any = None
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 2,
                # a worker holds only the tasks it runs: a task queued behind one that kills the
                # worker is then not blamed for the deaths (its suspicion count stays 0)
                "distributed.scheduler.worker-saturation": 1.0,
                "logging.distributed": "error",
            }
        )
        try:
            if address == "local":
                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=50,
                )
                self.client = distributed.Client(self.cluster)
            else:
                if not address.startswith(("tcp://", "tls://")):
                    raise RunnerError(f"--dask {address}: expected local or tcp://HOST:PORT")
                self.client = distributed.Client(address, timeout=connect_timeout)
        except RunnerError:
            raise
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise RunnerError(f"cannot reach the Dask scheduler at {address}: {_first_line(exc)}") from None
        threads = sum(self.client.nthreads().values()) or 1
        self.window = window or max(8, 4 * threads)
        # The rules travel once per worker, in a plugin that builds the engine as the worker
        # starts (and on any worker that joins later): never once per task.
        from layerleak.scan.dask_worker import EnginePlugin, pack_rules

        plugin = EnginePlugin(pack_rules(engine.rules), engine.ruleset, engine.gate)
        try:
            self.client.register_plugin(plugin, name=plugin.name)
        except Exception as exc:  # noqa: BLE001 - a worker that cannot build the engine
            self.close()
            raise RunnerError(f"the Dask workers cannot load the rules: {_first_line(exc)}") from None

    def run(self, tasks: Iterable[BlobTask]) -> Iterator[Done]:
        distributed: Any = importlib.import_module("distributed")

        source = iter(tasks)
        futures: dict[Any, BlobTask] = {}
        retried: set[str] = set()

        def submit(task: BlobTask) -> Any:
            fut = self.client.submit(
                _dask_task,
                task,
                self.engine.ruleset,
                self.fn,
                key=f"layer-{task.key}-{len(futures)}",
                pure=False,
            )
            futures[fut.key] = task
            return fut

        first = [submit(t) for t in _take(source, self.window)]
        if not first:
            return
        queue = distributed.as_completed(first)
        for fut in queue:
            task = futures.pop(fut.key)
            try:
                outcome = fut.result()
            except distributed.KilledWorker:
                fut.release()
                if task.key not in retried:  # it may have been running beside the culprit: once more
                    retried.add(task.key)
                    queue.add(submit(task))
                    continue
                outcome = LayerOutcome(
                    task.key,
                    None,
                    f"{task.host}/{task.repo}@{task.digest}: scanning it kept killing Dask "
                    "workers (KilledWorker); recorded as an error",
                )
            except Exception as exc:  # noqa: BLE001 - a task's failure is that layer's error
                outcome = LayerOutcome(task.key, None, f"{task.digest}: Dask task failed: {_first_line(exc)}")
            fut.release()
            yield task, outcome
            nxt = next(source, None)
            if nxt is not None:
                queue.add(submit(nxt))

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()


def _take(source: Iterator[BlobTask], n: int) -> list[BlobTask]:
    out = []
    for task in source:
        out.append(task)
        if len(out) >= n:
            break
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
