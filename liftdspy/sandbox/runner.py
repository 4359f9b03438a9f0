"""Run untrusted code and its tests: plan, execute in a backend, decide in this process.

`run_job` rewrites each test (`split.py`), sends the code, the setup and the rewritten tests to
a backend (`backend.py`: bubblewrap by default), validates the result channel (`records.py`)
and decides every judgement of every test here, from plain-data values (`decide.py`). A missing,
malformed or out-of-order record becomes a crash result for the affected tests; nothing the
sandbox writes can raise in the caller.

Isolation is never silently dropped: with bubblewrap unavailable, `run_job` raises
`IsolationUnavailable`, unless `configure(isolation="none")` was called (the CLI's
`--unsafe-no-isolation`, the config's `sandbox.isolation: none`); such results say
`isolation: none` and a warning is logged.
"""

from __future__ import annotations

import ast
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from liftdspy import pyast
from liftdspy.sandbox.backend import MAX_FILE_MB, IsolationMode, LocalBackend, RawRun
from liftdspy.sandbox.backend import SandboxBackend as SandboxBackend
from liftdspy.sandbox.decide import decide
from liftdspy.sandbox.models import (
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    TestResult,
    Verdict,
)
from liftdspy.sandbox.records import MAX_LINE_BYTES, Checks, Done, Loaded, Start, parse_record
from liftdspy.sandbox.split import TestPlan, plan_test, sandbox_setup
from liftdspy.sandbox.values import names_read

logger = logging.getLogger(__name__)

UNSAFE_WARNING = (
    "UNSAFE: sandbox isolation is off (--unsafe-no-isolation / sandbox.isolation: none); "
    "generated code runs as you, can read your files and secrets and reach the network"
)

_lock = threading.Lock()
_mode: IsolationMode = "bubblewrap"
_warned = False


def configure(*, isolation: IsolationMode) -> None:
    """Choose the process-wide isolation: "bubblewrap" (default) or "none" (UNSAFE)."""
    global _mode
    if isolation not in ("bubblewrap", "none"):
        raise ValueError(f"sandbox isolation must be 'bubblewrap' or 'none', not {isolation!r}")
    with _lock:
        _mode = isolation


def isolation_mode() -> IsolationMode:
    return _mode


def default_backend() -> SandboxBackend:
    global _warned
    if _mode == "none":
        with _lock:
            if not _warned:
                logger.warning(UNSAFE_WARNING)
                _warned = True
    return LocalBackend(_mode)


def plan_tests(tests: Sequence[str], setup: str, code: str = "") -> list[TestPlan]:
    """Each test's plan: the program the sandbox runs and the judgements decided here."""
    reads = [_reads(source) for source in tests]
    return [
        plan_test(
            source,
            code=code,
            setup=setup,
            keep=frozenset().union(*(r for j, r in enumerate(reads) if j != i)),
        )
        for i, source in enumerate(tests)
    ]


def _reads(source: str) -> frozenset[str]:
    """The names a test reads and does not bind itself (tests share one namespace: one may read
    what another binds)."""
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return frozenset()
    bound = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    return frozenset(names_read(tree) - bound)


def run_job(job: SandboxJob, *, backend: SandboxBackend | None = None) -> SandboxResult:
    """Run one job in a fresh sandbox and return what happened (never raises for bad code)."""
    limits = job.limits or SandboxLimits()
    backend = backend or default_backend()
    plans = plan_tests(job.tests, job.setup, job.code)
    payload = {
        "code": job.code,
        "setup": sandbox_setup(job.setup, code=job.code, programs=[plan.program for plan in plans]),
        "tests": [{"program": plan.program} for plan in plans],
        "test_timeout_s": limits.test_timeout_s,
        "memory_mb": limits.memory_mb,
        "cpu_s": limits.cpu_s,
        "max_file_mb": MAX_FILE_MB,
    }
    started = time.perf_counter()
    raw = backend.execute(payload, limits)
    return _build_result(job, plans, limits, raw, time.perf_counter() - started, backend.name)


def run_tests(
    code: str,
    tests: list[str],
    *,
    setup: str = "",
    limits: SandboxLimits | None = None,
    backend: SandboxBackend | None = None,
) -> SandboxResult:
    """Run `code`, then `setup`, then each test statement, in a sandbox."""
    job = SandboxJob(code=code, tests=list(tests), setup=setup, limits=limits)
    return run_job(job, backend=backend)


def run_many(
    jobs: Sequence[SandboxJob],
    *,
    workers: int | None = None,
    backend: SandboxBackend | None = None,
) -> list[SandboxResult]:
    """Run many jobs in parallel sandboxes; results come back in the order of `jobs`."""
    if not jobs:
        return []
    backend = backend or default_backend()
    workers = max(1, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(lambda job: run_job(job, backend=backend), jobs))


# --- reading the channel ---------------------------------------------------------------------


class _Channel:
    """The records of one run, checked against the protocol; stops at the first bad one."""

    def __init__(self, raw: RawRun, plans: list[TestPlan]) -> None:
        self.loaded: Loaded | None = None
        self.started: set[int] = set()
        self.results: dict[int, Checks] = {}
        self.done = False
        self.broken: str | None = "the result channel overflowed" if raw.result_overflow else None
        expected = 0
        lines = raw.result_bytes.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        for number, line in enumerate(complete, start=1):
            problem = self._take(line, plans, expected)
            if problem:
                self.broken = self.broken or f"result record {number}: {problem}"
                return
            if isinstance(self.results.get(expected), Checks):
                expected += 1
        if tail and not self.broken and not self.done:
            self.broken = "the last result record is incomplete"

    def _take(self, line: bytes, plans: list[TestPlan], expected: int) -> str | None:
        if len(line) > MAX_LINE_BYTES:
            return "too long"
        try:
            record = parse_record(line)
        except (ValidationError, ValueError) as exc:
            return f"malformed ({str(exc).splitlines()[0][:200]})"
        if self.done:
            return "a record after 'done'"
        if isinstance(record, Loaded):
            if self.loaded is not None:
                return "a second 'loaded' record"
            self.loaded = record
            return None
        if self.loaded is None:
            return f"'{record.event}' before 'loaded'"
        if isinstance(record, Done):
            if self.loaded.ok and expected != len(plans):
                return f"'done' after {expected} of {len(plans)} tests"
            self.done = True
            return None
        if not self.loaded.ok:
            return f"'{record.event}' after a failed load"
        if record.index != expected:
            return f"'{record.event}' for test {record.index}, expected test {expected}"
        if isinstance(record, Start):
            if expected in self.started:
                return f"a second 'start' for test {expected}"
            self.started.add(expected)
            return None
        if expected not in self.started:
            return f"a result for test {expected} before its 'start'"
        judgements = plans[expected].judgements
        for check in record.checks:
            if check.id >= len(judgements):
                return f"a check of judgement {check.id}; test {expected} has {len(judgements)}"
            if len(check.items) != len(judgements[check.id].expressions):
                wanted = len(judgements[check.id].expressions)
                return f"{len(check.items)} values for {wanted} expressions"
        self.results[expected] = record
        return None


def _death_reason(raw: RawRun, limits: SandboxLimits) -> tuple[TestOutcome, str, str]:
    """Why the process stopped before reporting everything: (outcome, error type, message)."""
    if raw.timed_out:
        return (
            TestOutcome.timeout,
            "Timeout",
            f"the program exceeded its {limits.timeout_s:g} s limit",
        )
    number = raw.signal_number
    if number is not None:
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return (
                TestOutcome.timeout,
                "Timeout",
                f"the program was stopped by {name} (CPU limit {limits.cpu_s} s)",
            )
        return TestOutcome.error, "SandboxCrash", f"the sandbox process was killed by {name}"
    tail = raw.stderr.strip().splitlines()[-1:] or [""]
    return (
        TestOutcome.error,
        "SandboxCrash",
        f"the sandbox process exited with code {raw.exit_code} before finishing {tail[0]}".strip(),
    )


def _build_result(
    job: SandboxJob,
    plans: list[TestPlan],
    limits: SandboxLimits,
    raw: RawRun,
    duration_s: float,
    isolation: str,
) -> SandboxResult:
    channel = _Channel(raw, plans)
    complete = channel.done and channel.broken is None
    death = None if complete else _death_reason(raw, limits)
    if channel.broken and not raw.timed_out:
        # One bad record and nothing on the channel is believed: a crash result for the program.
        channel.results = {}
        death = (TestOutcome.error, "SandboxCrash", f"{channel.broken}; not believed")

    loaded = bool(channel.loaded and channel.loaded.ok)
    load_error: str | None = None
    if channel.loaded is None:
        load_error = f"{death[1]}: {death[2]}" if death else "the code did not report loading"
    elif not loaded:
        load_error = str(channel.loaded.error)

    tests: list[TestResult] = []
    for index, (source, plan) in enumerate(zip(job.tests, plans, strict=True)):
        verdict = Verdict.in_sandbox if plan.exception else Verdict.parent
        record = channel.results.get(index)
        common = {
            "index": index,
            "source": source,
            "verdict": verdict,
            "verdict_reason": plan.exception,
        }
        if isinstance(record, Checks):
            outcome, error_type, message = decide(plan, record)
            tests.append(
                TestResult(
                    **common,
                    outcome=outcome,
                    error_type=error_type,
                    message=message,
                    duration_s=record.duration_s,
                )
            )
        elif not loaded:
            tests.append(
                TestResult(
                    **common,
                    outcome=TestOutcome.error,
                    error_type="NotRun",
                    message=f"not run: the code did not load ({load_error})",
                )
            )
        else:
            outcome, error_type, message = death or (
                TestOutcome.error,
                "SandboxCrash",
                "no result reported",
            )
            if index not in channel.started:
                message = f"not run: {message}"
            tests.append(
                TestResult(**common, outcome=outcome, error_type=error_type, message=message)
            )
    return SandboxResult(
        loaded=loaded,
        load_error=load_error,
        tests=tests,
        stdout=raw.stdout,
        stderr=raw.stderr,
        timed_out=raw.timed_out or (death is not None and death[0] is TestOutcome.timeout),
        duration_s=round(duration_s, 6),
        isolation=isolation,
    )
