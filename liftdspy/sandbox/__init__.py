"""Sandboxed execution of generated code against test statements.

Generated code is hostile until proven otherwise: it never runs in the caller's process. See
`runner` (process control), `harness` (the in-sandbox side) and `isolation` (OS mechanisms).
"""

from liftdspy.sandbox.isolation import Isolation, detect_isolation
from liftdspy.sandbox.models import (
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    TestResult,
)
from liftdspy.sandbox.runner import run_job, run_many, run_tests

__all__ = [
    "Isolation",
    "SandboxJob",
    "SandboxLimits",
    "SandboxResult",
    "TestOutcome",
    "TestResult",
    "detect_isolation",
    "run_job",
    "run_many",
    "run_tests",
]
