"""Score generated code: does it parse, define the expected function, and pass the tests?

| component          | value                                                                 |
|--------------------|-----------------------------------------------------------------------|
| `parses`           | 1 if `ast.parse` accepts the code, else 0 (and the others are 0)      |
| `defines_function` | 1 if a top-level `def`/`async def` defines the entry point            |
| `tests_passed`     | fraction of the example's tests that pass in the sandbox              |

The entry point is the gold IR's signature name. Tests run with `liftdspy.sandbox.run_tests`
(code, then `test_setup`, then each test), never in this process. A single markdown code fence
around the whole answer is stripped first (`liftdspy.fences`); "defines" is decided by
`liftdspy.code_check`, as in the IR -> code program.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy import pyast
from liftdspy.code_check import function_names
from liftdspy.fences import strip_code_fence
from liftdspy.metrics.base import BreakdownMetric
from liftdspy.metrics.breakdown import MetricBreakdown, weighted_total
from liftdspy.metrics.fields import (
    GoldDataError,
    example_label,
    get_field,
    has_value,
    read_gold_ir,
)
from liftdspy.sandbox import IsolationUnavailable, SandboxLimits, SandboxResult, run_tests
from liftdspy.sandbox.report import cut, failure_lines

logger = logging.getLogger(__name__)


class CodeMetricWeights(BaseModel):
    """Weights of the code metric's components; the total is their weighted mean."""

    model_config = ConfigDict(extra="forbid")

    parses: float = Field(default=0.1, ge=0)
    defines_function: float = Field(default=0.1, ge=0)
    tests_passed: float = Field(default=0.8, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> CodeMetricWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("code metric weights must not all be zero")
        return self


def _finish(
    components: dict[str, float],
    weights: CodeMetricWeights,
    lines: list[str],
    details: dict[str, float] | None = None,
) -> MetricBreakdown:
    total = weighted_total(components, weights.model_dump())
    body = "\n".join(f"- {line}" for line in lines)
    return MetricBreakdown(
        total=total,
        components=components,
        details=details or {},
        feedback=f"Score {total:.2f}.\n{body}",
    )


def score_code(
    code: Any,
    tests: list[str],
    *,
    entry_point: str,
    setup: str = "",
    weights: CodeMetricWeights | None = None,
    limits: SandboxLimits | None = None,
    run: Callable[..., SandboxResult] = run_tests,
) -> MetricBreakdown:
    """Score `code` against `tests`; a bad prediction scores low, it never raises. A sandbox
    failure (e.g. a result line of the wrong shape) scores the tests 0 with the reason in the
    feedback (`details["sandbox_error"]`), instead of aborting the experiment.

    `run` is the sandbox call (`run_tests`-compatible); `CodeMetric` passes a caching one.
    """
    weights = weights or CodeMetricWeights()
    zero = dict.fromkeys(CodeMetricWeights.model_fields, 0.0)
    if not isinstance(code, str) or not code.strip():
        return _finish(zero, weights, ["No code was produced."])
    source = strip_code_fence(code)
    try:
        tree = pyast.parse(source)
    except SyntaxError as exc:
        return _finish(
            zero, weights, [f"The code does not parse: line {exc.lineno}: {cut(exc.msg or '')}"]
        )
    names = function_names(tree)
    defines = entry_point in names
    lines: list[str] = []
    if not defines:
        found = ", ".join(names) or "no function"
        lines.append(
            f"The code must define a top-level function {entry_point!r}; it defines {found}."
        )
    try:
        result: SandboxResult = run(source, tests, setup=setup, limits=limits)
    except IsolationUnavailable:
        raise  # no isolation is the user's to fix, never a silent score of 0
    except Exception as exc:  # a malformed sandbox result is an error result, never a crash
        logger.warning("sandbox result unusable: %s: %s", type(exc).__name__, exc)
        message = f"the sandbox returned an unusable result ({type(exc).__name__}: {cut(str(exc))})"
        lines.append(f"0/{len(tests)} tests passed: {message}.")
        components = {"parses": 1.0, "defines_function": 1.0 if defines else 0.0}
        components["tests_passed"] = 0.0
        details = {"tests_total": float(len(tests)), "tests_passing": 0.0, "sandbox_error": 1.0}
        return _finish(components, weights, lines, details)
    lines += failure_lines(result)
    components = {
        "parses": 1.0,
        "defines_function": 1.0 if defines else 0.0,
        "tests_passed": result.pass_rate,
    }
    details = {"tests_total": float(result.total), "tests_passing": float(result.passed)}
    return _finish(components, weights, lines, details)


class CodeMetric(BreakdownMetric):
    """The code metric as a DSPy metric: code from `prediction.<code_field>`, tests and setup
    from `example.<tests_field>` / `example.<setup_field>`, the entry point from the gold IR.

    Sandbox results are cached per (code, tests, setup) so that GEPA, which scores a candidate
    and then asks for feedback on the same outputs, runs each program once (`cache_size=0`
    turns this off).
    """

    def __init__(
        self,
        weights: CodeMetricWeights | None = None,
        *,
        limits: SandboxLimits | None = None,
        gold_ir_field: str = "ir",
        code_field: str = "code",
        tests_field: str = "tests",
        setup_field: str = "test_setup",
        bootstrap_threshold: float | None = None,
        cache_size: int = 256,
    ):
        self.weights = weights or CodeMetricWeights()
        self.limits = limits
        self.gold_ir_field = gold_ir_field
        self.code_field = code_field
        self.tests_field = tests_field
        self.setup_field = setup_field
        self.bootstrap_threshold = bootstrap_threshold
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, tuple[str, ...], str], SandboxResult] = OrderedDict()
        self._lock = threading.Lock()

    def _run(
        self, code: str, tests: list[str], *, setup: str, limits: SandboxLimits | None
    ) -> SandboxResult:
        key = (code, tuple(tests), setup)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = run_tests(code, tests, setup=setup, limits=limits)
        if self.cache_size > 0:
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return result

    def breakdown(self, example: Any, prediction: Any) -> MetricBreakdown:
        gold = read_gold_ir(example, self.gold_ir_field)
        tests = get_field(example, self.tests_field)
        if not has_value(tests) or not isinstance(tests, list | tuple) or not tests:
            raise GoldDataError(
                f"{example_label(example)} has no test list in field {self.tests_field!r}"
            )
        setup = get_field(example, self.setup_field)
        setup = setup if has_value(setup) and isinstance(setup, str) else ""
        code = get_field(prediction, self.code_field)
        return score_code(
            code if has_value(code) else None,
            [str(t) for t in tests],
            entry_point=gold.signature.name,
            setup=setup,
            weights=self.weights,
            limits=self.limits,
            run=self._run,
        )
