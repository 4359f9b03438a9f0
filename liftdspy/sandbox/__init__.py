"""Sandboxed execution of generated code against test statements.

Generated code is hostile until proven otherwise: it never runs in the caller's process, and
every run is isolated by bubblewrap (`isolation`). Tests are split so that this process, not the
code, decides pass or fail (`split`). See `runner` (plan, run, decide), `backend` (the runner
interface and the local bubblewrap backend) and `harness` (the in-sandbox side).
"""

from liftdspy.sandbox.backend import IsolationMode, LocalBackend, RawRun, SandboxBackend
from liftdspy.sandbox.isolation import (
    Isolation,
    IsolationUnavailable,
    detect_isolation,
    require_isolation,
)
from liftdspy.sandbox.models import (
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    TestResult,
    Verdict,
)
from liftdspy.sandbox.runner import (
    UNSAFE_WARNING,
    configure,
    isolation_mode,
    run_job,
    run_many,
    run_tests,
)

__all__ = [
    "UNSAFE_WARNING",
    "Isolation",
    "IsolationMode",
    "IsolationUnavailable",
    "LocalBackend",
    "RawRun",
    "SandboxBackend",
    "SandboxJob",
    "SandboxLimits",
    "SandboxResult",
    "TestOutcome",
    "TestResult",
    "Verdict",
    "configure",
    "detect_isolation",
    "isolation_mode",
    "require_isolation",
    "run_job",
    "run_many",
    "run_tests",
]
