"""Evaluate a program on labelled examples: per-example scores, components and outputs.

Unlike `dspy.Evaluate`, every example's metric breakdown, IR, code and error is kept, for the
results table logged with the run and for paired comparisons between runs.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import dspy
from dspy.utils.exceptions import (
    LMAuthError,
    LMBillingError,
    LMConfigurationError,
    LMTransportError,
)
from pydantic import BaseModel, Field

from liftdspy.lm.store import RecordingStoreError
from liftdspy.metrics import BreakdownMetric
from liftdspy.metrics.floor import (
    MetricFloor,
    constant_prediction,
    gold_ir_field,
    metric_floor,
    normalised,
)
from liftdspy.stats import ConfidenceInterval, bootstrap_ci
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

MAX_TEXT = 4000

# Errors that say the setup is wrong (a recording missing in offline mode, a bad key, an
# unreachable server after retries, a malformed recording store): every later example would fail
# the same way, so they stop the evaluation instead of scoring 0 one by one.
FATAL_LM_ERRORS = (
    LMConfigurationError,
    LMAuthError,
    LMBillingError,
    LMTransportError,
    RecordingStoreError,
)


class ExampleResult(BaseModel):
    id: str
    score: float
    components: dict[str, float] = Field(default_factory=dict)
    feedback: str = ""
    ir: dict[str, Any] | None = None
    code: str | None = None
    tests_passed: int | None = None
    tests_total: int | None = None
    error: str | None = None
    truncated: bool = False  # an LM answer of this example ended at max_tokens (never parsed)
    budget_closed: bool | None = None  # the local engine forced the JSON closed (when it says)
    seconds: float = 0.0


class EvaluationReport(BaseModel):
    version: Version = "1"  # reports of older runs have none: version "1"
    label: str
    n: int
    score: ConfidenceInterval
    components: dict[str, float]
    results: list[ExampleResult]
    seconds: float
    # The metric's floor on exactly these examples (reports of older runs have none).
    floor: MetricFloor | None = None

    def scores(self) -> list[float]:
        return [r.score for r in self.results]

    @property
    def score_normalised(self) -> ConfidenceInterval | None:
        """The score and its interval floor-normalised, ``(s - floor) / (1 - floor)`` (the floor
        is a constant of the examples, so the interval maps with it); None without a floor."""
        return normalised_interval(self.score, self.floor)

    @property
    def truncated_rate(self) -> float:
        """Share of examples with an answer cut off at max_tokens."""
        if not self.results:
            return 0.0
        return sum(1 for r in self.results if r.truncated) / len(self.results)

    def table(self) -> dict[str, list[Any]]:
        """Column-wise results for `mlflow.log_table`."""
        columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "id",
                "score",
                "truncated",
                "budget_closed",
                "error",
                "tests_passed",
                "tests_total",
                "code",
                "ir",
            )
        }
        component_names = sorted({k for r in self.results for k in r.components})
        for name in component_names:
            columns[f"c.{name}"] = []
        columns["feedback"] = []
        for r in self.results:
            columns["id"].append(r.id)
            columns["score"].append(r.score)
            columns["truncated"].append(r.truncated)
            columns["budget_closed"].append(r.budget_closed)
            columns["error"].append(r.error or "")
            columns["tests_passed"].append(r.tests_passed)
            columns["tests_total"].append(r.tests_total)
            columns["code"].append((r.code or "")[:MAX_TEXT])
            columns["ir"].append(r.ir)
            for name in component_names:
                columns[f"c.{name}"].append(r.components.get(name))
            columns["feedback"].append(r.feedback[:MAX_TEXT])
        return columns


def normalised_interval(
    interval: ConfidenceInterval, floor: MetricFloor | None
) -> ConfidenceInterval | None:
    """`interval` floor-normalised (None without a floor, or with a floor of 1)."""
    if floor is None or normalised(interval.mean, floor.floor) is None:
        return None
    scale = 1.0 - floor.floor
    se = interval.standard_error
    return interval.model_copy(
        update={
            "mean": normalised(interval.mean, floor.floor),
            "low": normalised(interval.low, floor.floor),
            "high": normalised(interval.high, floor.floor),
            "standard_error": se / scale if se is not None else None,
        }
    )


def with_floor(
    report: EvaluationReport,
    metric: BreakdownMetric,
    train: list[dspy.Example],
    examples: list[dspy.Example],
    floor: MetricFloor | None = None,
) -> EvaluationReport:
    """`report` with the metric's floor on exactly the examples it scored (same ids, same
    order). `floor` is reused when it was computed on those examples already."""
    ids = [r.id for r in report.results]
    if not ids:
        return report
    if floor is None or floor.example_ids != ids:
        by_id = {str(e.id): e for e in examples}
        floor = metric_floor(metric, train, [by_id[i] for i in ids])
    report.floor = floor
    return report


def constant_report(
    floor: MetricFloor, metric: BreakdownMetric, examples: list[dspy.Example], *, label: str
) -> EvaluationReport:
    """The floor's winning constant answer scored like a program on `examples` (no LM call):
    every example's breakdown, IR and code, as an evaluation report (the `constant` study arm).
    """
    started = time.perf_counter()
    answer = floor.best().answer
    field = gold_ir_field(metric)
    results = []
    for example in examples:
        prediction = constant_prediction(answer, example, field)
        results.append(_result(example, prediction, metric, 0.0))
    report = _report(label, results, seed=0, started=started)
    report.floor = floor if floor.example_ids == [r.id for r in results] else None
    return report


def _report(
    label: str, results: list[ExampleResult], *, seed: int, started: float
) -> EvaluationReport:
    component_names = sorted({k for r in results for k in r.components})
    components = {
        name: sum(r.components.get(name, 0.0) for r in results) / len(results)
        for name in component_names
    }
    return EvaluationReport(
        label=label,
        n=len(results),
        score=bootstrap_ci([r.score for r in results], seed=seed),
        components=components,
        results=results,
        seconds=time.perf_counter() - started,
    )


def _result(example: dspy.Example, prediction: Any, metric: BreakdownMetric, seconds: float):
    breakdown = metric.breakdown(example, prediction)
    ir = getattr(prediction, "ir", None)
    execution = getattr(prediction, "execution", None)
    return ExampleResult(
        id=str(example.id),
        score=breakdown.total,
        components=breakdown.flat(),
        feedback=breakdown.feedback,
        ir=ir.model_dump(mode="json") if hasattr(ir, "model_dump") else None,
        code=getattr(prediction, "code", None),
        tests_passed=execution.passed if execution is not None else None,
        tests_total=execution.total if execution is not None else None,
        error=getattr(prediction, "error", None),
        truncated=bool(getattr(prediction, "truncated", False)),
        budget_closed=getattr(prediction, "budget_closed", None),
        seconds=seconds,
    )


def evaluate_program(
    program: dspy.Module,
    examples: list[dspy.Example],
    metric: BreakdownMetric,
    *,
    label: str,
    threads: int = 1,
    on_result: Callable[[ExampleResult], None] | None = None,
    seed: int = 0,
) -> EvaluationReport:
    """Run `program` on every example (in `threads` threads, keeping order) and score it.

    An exception from the program scores 0 for that example with its message kept; it does not
    stop the evaluation. `KeyboardInterrupt` and `FATAL_LM_ERRORS` do, at once: queued examples
    are never started, and the calls in flight are abandoned (see `_run_parallel`). `seed` is
    the bootstrap seed of the score's interval.
    """

    def one(example: dspy.Example) -> ExampleResult:
        started = time.perf_counter()
        try:
            prediction = program(**example.inputs())
        except FATAL_LM_ERRORS:
            raise
        except Exception as exc:  # the program's failure is a result, not a crash
            logger.warning("%s: %s failed: %s: %s", label, example.id, type(exc).__name__, exc)
            return ExampleResult(
                id=str(example.id),
                score=0.0,
                error=f"{type(exc).__name__}: {exc}"[:MAX_TEXT],
                seconds=time.perf_counter() - started,
            )
        return _result(example, prediction, metric, time.perf_counter() - started)

    started = time.perf_counter()
    results: list[ExampleResult] = []
    if threads <= 1:
        for example in examples:
            results.append(one(example))
            if on_result:
                on_result(results[-1])
    else:
        for result in _run_parallel(one, examples, threads):
            results.append(result)
            if on_result:
                on_result(result)
    return _report(label, results, seed=seed, started=started)


_POLL_SECONDS = 0.2


def _run_parallel(
    one: Callable[[dspy.Example], ExampleResult], examples: list[dspy.Example], threads: int
):
    """Yield `one(example)` for each example in order, computed by `threads` worker threads.

    The workers are daemon threads taking examples from a queue, each in a copy of the caller's
    context. When a worker raises (a fatal LM error) or the caller is interrupted (Ctrl-C), the
    stop flag is set so no queued example starts, and the exception is raised at once: the calls
    in flight are abandoned rather than awaited (a daemon thread does not hold up the process's
    exit, unlike `ThreadPoolExecutor`'s workers, which are joined at exit).
    """
    todo: queue.Queue[tuple[int, dspy.Example]] = queue.Queue()
    for item in enumerate(examples):
        todo.put(item)
    done: dict[int, ExampleResult] = {}
    failure: list[BaseException] = []
    stop = threading.Event()
    ready = threading.Condition()

    def work(context: contextvars.Context) -> None:
        while not stop.is_set():
            try:
                index, example = todo.get_nowait()
            except queue.Empty:
                return
            try:
                result = context.run(one, example)
            except BaseException as exc:  # handed to the caller, which re-raises it
                stop.set()
                with ready:
                    failure.append(exc)
                    ready.notify_all()
                return
            with ready:
                done[index] = result
                ready.notify_all()

    workers = [
        threading.Thread(
            target=work,
            args=(contextvars.copy_context(),),
            name=f"liftdspy-eval-{i}",
            daemon=True,
        )
        for i in range(min(threads, len(examples)))
    ]
    try:
        for worker in workers:
            worker.start()
        for index in range(len(examples)):
            with ready:
                while index not in done and not failure:
                    ready.wait(_POLL_SECONDS)
                if failure:
                    raise failure[0]
                result = done.pop(index)
            yield result
    finally:
        stop.set()
