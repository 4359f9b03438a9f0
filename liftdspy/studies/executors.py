"""Where cells run: in this process (one at a time, or several at once in threads), in N worker
processes, or as Ray tasks on a cluster.

Every executor calls `run_cell(task)` and yields `CellResult`s as cells finish. Workers build
their own LM (the embedded model: one per process); cells in threads share the process's one
model, whose batch scheduler decodes their requests together (`ThreadCellExecutor`). Ray
workers must reach the same MLflow tracking store and the same recording store path (both are
absolute in the task).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from liftdspy.pyast import every_parse_locked
from liftdspy.studies.cell_runner import CellTask, EngineFactory, run_cell
from liftdspy.studies.results import CellResult

logger = logging.getLogger(__name__)

# Environment a Ray worker needs to behave like this process (recorder mode, cache dir, the
# tracking server and the credentials MLflow's client logs in with on a `liftdspy server` with
# basic auth). Ray keeps a job's runtime_env in its cluster state, where anyone who can use the
# cluster can read it: they could run code in the workers and read the same environment anyway.
# Spawned local workers (ProcessPoolCellExecutor) inherit the whole environment.
FORWARDED_ENV = (
    "LIFTDSPY_RECORDER",
    "LIFTDSPY_CACHE_DIR",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "PYTHONPATH",
)


class Executor:
    """Runs tasks; `submit` order is kept as the start order."""

    slots = 1

    def run(self, tasks: list[CellTask], next_allowance) -> Iterator[CellResult]:
        """`next_allowance(outstanding, free_slots)` is asked before each start: the budget a
        new cell may spend, or None to start nothing more (`outstanding`: the allowances of
        the cells still running)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class InProcessExecutor(Executor):
    def __init__(self, engine_factory: EngineFactory | None = None):
        self.engine_factory = engine_factory

    def run(self, tasks, next_allowance):
        for task in tasks:
            allowance = next_allowance([], 1)
            if allowance is None:
                return
            yield run_cell(task.model_copy(update={"allowance": allowance}), self.engine_factory)


class _Pool(Executor):
    """Keeps at most `slots` tasks running."""

    def _submit(self, task: CellTask) -> Future:
        raise NotImplementedError

    def run(self, tasks, next_allowance):
        queue = list(tasks)
        running: dict[Future, object] = {}
        stopped = False
        while queue or running:
            while queue and not stopped and len(running) < self.slots:
                allowance = next_allowance(list(running.values()), self.slots - len(running))
                if allowance is None:
                    stopped = True
                    break
                task = queue.pop(0)
                future = self._submit(task.model_copy(update={"allowance": allowance}))
                running[future] = allowance
            if not running:
                return
            done, _ = wait(set(running), return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                yield future.result()


class ThreadCellExecutor(_Pool):
    """Up to `cells` cells at once in this process, each in a thread of its own.

    Their LMs share the process's one embedded model (`liftdspy.lm.local.lanes`: one pool per
    model), so one cell's serial phases (an optimizer proposing instructions, GEPA reflecting)
    decode in the same batches as another cell's evaluation, instead of leaving the batch near
    empty; identical requests of two cells make one live call (the recorder's replay mode). DSPy
    settings and MLflow's active run are per thread, so cells do not see each other's. The
    threads are daemons: Ctrl-C returns at once and abandons the cells in flight (their runs are
    closed as interrupted by the next `study run`). Which answers share a batch depends on
    timing, so a live run is reproduced from its recording, not by running it again.
    """

    def __init__(self, cells: int, engine_factory: EngineFactory | None = None):
        if cells < 1:
            raise ValueError(f"cells must be at least 1, got {cells}")
        self.slots = cells
        self.engine_factory = engine_factory

    def run(self, tasks, next_allowance):
        # Cells parse Python in several threads, DSPy's code too (inspect.getsource in
        # MIPROv2's proposer): CPython 3.11's AST constructor is not thread-safe (liftdspy.pyast).
        with every_parse_locked():
            yield from super().run(tasks, next_allowance)

    def _submit(self, task: CellTask) -> Future:
        future: Future = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(run_cell(task, self.engine_factory))
            except BaseException as exc:  # run_cell reports failures; this is a crash
                future.set_exception(exc)

        threading.Thread(target=work, name=f"liftdspy-cell-{task.cell.id}", daemon=True).start()
        return future


class ProcessPoolCellExecutor(_Pool):
    """N worker processes (spawned: llama.cpp and MLflow are not fork-safe). `worker_setup` runs
    in each worker before its first cell (picklable; the CLI's routes its log records)."""

    def __init__(
        self,
        workers: int,
        engine_factory: EngineFactory | None = None,
        worker_setup: Callable[[], None] | None = None,
    ):
        self.slots = workers
        self.engine_factory = engine_factory
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_setup,
        )

    def _submit(self, task: CellTask) -> Future:
        return self.pool.submit(run_cell, task, self.engine_factory)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def import_factory(path: str | None) -> EngineFactory | None:
    """`module:function` -> the function (an engine factory importable on every worker)."""
    if not path:
        return None
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _ray_cell(task_json: str, engine_factory: str | None = None) -> str:
    """The Ray task: JSON in, JSON out (no pickled pydantic classes across versions)."""
    result = run_cell(CellTask.model_validate_json(task_json), import_factory(engine_factory))
    return result.model_dump_json()


class RayCellExecutor(_Pool):
    """Each cell is a Ray task (`num_cpus` each) on the cluster at `address`."""

    def __init__(
        self,
        address: str,
        *,
        slots: int = 2,
        num_cpus: float = 1.0,
        engine_factory: str | None = None,
    ):
        try:
            import ray
        except ImportError as exc:
            raise ImportError("--ray needs Ray: pip install -e '.[ray]' (the `ray` extra)") from exc
        self.ray = ray
        self.slots = slots
        self.engine_factory = engine_factory
        env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
        ray.init(
            address=address,
            runtime_env={"env_vars": env} if env else None,
            ignore_reinit_error=True,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        self.remote = ray.remote(num_cpus=num_cpus, max_retries=0)(_ray_cell)

    def _submit(self, task: CellTask) -> Future:
        ref = self.remote.remote(task.model_dump_json(), self.engine_factory)
        future: Future = ref.future()
        wrapped: Future = Future()

        def done(f: Future) -> None:
            try:
                wrapped.set_result(CellResult.model_validate_json(f.result()))
            except BaseException as exc:
                wrapped.set_exception(exc)

        future.add_done_callback(done)
        return wrapped

    def close(self) -> None:
        self.ray.shutdown()
