"""Data that crosses the sandbox boundary: limits, jobs and results (pydantic models)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from liftdspy.versioning import FROM_INT


class TestOutcome(StrEnum):
    """What happened to one test."""

    __test__ = False  # not a pytest test class

    passed = "passed"
    failed = "failed"  # the assertion was false (or the test raised AssertionError)
    error = "error"  # the test raised any other exception (or never ran, see the message)
    timeout = "timeout"  # the test exceeded its own or the program's time limit


class Verdict(StrEnum):
    """Who decided a test's outcome."""

    # Every judgement of the test (each `assert`, whatever the test's shape) was decided in the
    # trusted parent process from plain-data values the sandbox returned; the sandbox never saw
    # the expected values the parent could evaluate itself.
    parent = "parent"
    # A counted exception (`TestResult.verdict_reason` says why): part of the test's judgement
    # was made inside the sandbox, e.g. an `if` on a value of the code (on a plain-data copy)
    # or identity (`is`) between objects, which copies cannot keep.
    in_sandbox = "in-sandbox"


class TestResult(BaseModel):
    """The outcome of one test statement."""

    __test__: ClassVar[bool] = False

    index: int
    source: str
    outcome: TestOutcome
    verdict: Verdict = Verdict.in_sandbox
    verdict_reason: str | None = None  # why the verdict is in-sandbox
    error_type: str | None = None
    message: str | None = None
    duration_s: float = 0.0


class SandboxLimits(BaseModel):
    """Resource limits for one sandboxed program run."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(10.0, gt=0, description="Wall clock limit for the whole process.")
    test_timeout_s: float = Field(3.0, gt=0, description="Wall clock limit for each test.")
    memory_mb: int = Field(512, ge=64, description="Address-space limit (RLIMIT_AS).")
    cpu_s: int = Field(10, ge=1, description="CPU-time limit (RLIMIT_CPU).")
    max_output_bytes: int = Field(8192, ge=0, description="stdout/stderr are cut to this size.")


class SandboxJob(BaseModel):
    """One program to check: `code`, then `setup`, then each test statement."""

    model_config = ConfigDict(extra="forbid")

    code: str
    tests: list[str]
    setup: str = ""
    limits: SandboxLimits | None = None


class SandboxResult(BaseModel):
    """Everything observed while running one job."""

    version: Annotated[Literal["2"], FROM_INT] = "2"  # the format's second layout
    loaded: bool  # the code compiled and its top level (and the setup) ran without error
    load_error: str | None = None  # e.g. "SyntaxError: invalid syntax (line 3)"
    tests: list[TestResult] = Field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    duration_s: float = 0.0
    isolation: str = "bubblewrap"  # "bubblewrap", or "none" for an --unsafe-no-isolation run

    @computed_field  # type: ignore[prop-decorator]
    @property
    def in_sandbox_verdicts(self) -> int:
        """How many tests were (partly) decided inside the sandbox (see `Verdict.in_sandbox`)."""
        return sum(1 for test in self.tests if test.verdict is Verdict.in_sandbox)

    @property
    def passed(self) -> int:
        return sum(1 for test in self.tests if test.outcome is TestOutcome.passed)

    @property
    def total(self) -> int:
        return len(self.tests)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.tests else 0.0

    @property
    def unsafe(self) -> bool:
        """True when the code ran without OS isolation (`sandbox.isolation: none`)."""
        return self.isolation == "none"
