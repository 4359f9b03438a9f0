"""Turn benchmark problems into labelled tasks: run each reference against its own tests in the
sandbox (observing the entry function's types), keep the ones that pass, report the rest."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from liftdspy.datasets.importers.derive import (
    DerivationError,
    SourceProblem,
    build_task,
    find_entry_point,
    top_level_functions,
)
from liftdspy.datasets.importers.observe import Observations, instrument, read_observations
from liftdspy.datasets.importers.report import ImportReport, InSandboxVerdict, SkippedRow
from liftdspy.datasets.row import LabelledTask
from liftdspy.sandbox import SandboxJob, SandboxLimits, SandboxResult, Verdict, run_many
from liftdspy.sandbox.report import first_failure

logger = logging.getLogger(__name__)

# Benchmark references are trusted to be quick, but loops of 100 random cases exist (HumanEval),
# and the observation lines need room on stdout.
IMPORT_LIMITS = SandboxLimits(timeout_s=30.0, test_timeout_s=10.0, cpu_s=30, max_output_bytes=65536)


def describe_failure(result: SandboxResult) -> str | None:
    """Why a reference did not pass all its tests (None when it did)."""
    return first_failure(result, subject="reference")


def check_references(
    tasks: Sequence[LabelledTask],
    *,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
) -> dict[str, str]:
    """Run every task's reference against its tests; `{task id: why it fails}` for the failures.
    A task without a reference is not run."""
    runnable = [t for t in tasks if t.reference]
    jobs = [
        SandboxJob(code=t.reference or "", tests=t.tests, setup=t.test_setup, limits=limits)
        for t in runnable
    ]
    failures: dict[str, str] = {}
    for task, result in zip(runnable, run_many(jobs, workers=workers), strict=True):
        why = describe_failure(result)
        if why is not None:
            failures[task.id] = why
    return failures


def _entry_point(problem: SourceProblem) -> str:
    if problem.entry_point is None:
        return find_entry_point(problem.reference, problem.tests)
    if problem.entry_point not in top_level_functions(problem.reference):
        raise DerivationError(f"reference defines no top-level function {problem.entry_point!r}")
    return problem.entry_point


def import_problems(
    problems: Sequence[SourceProblem],
    *,
    source: str,
    workers: int | None = None,
    limits: SandboxLimits = IMPORT_LIMITS,
) -> tuple[list[LabelledTask], ImportReport]:
    """Labelled tasks for the problems whose reference passes its own tests, in input order, and
    the report of what was left out and why (each also logged as a warning)."""
    report = ImportReport(source=source, read=len(problems))

    def skip(problem: SourceProblem, reason: str) -> None:
        logger.warning("skipping %s: %s", problem.source_id, reason)
        report.skipped.append(SkippedRow(source_id=problem.source_id, reason=reason))

    candidates: list[tuple[SourceProblem, str]] = []
    for problem in problems:
        try:
            candidates.append((problem, _entry_point(problem)))
        except DerivationError as exc:
            skip(problem, str(exc))

    jobs = [
        SandboxJob(
            code=instrument(p.reference, entry), tests=p.tests, setup=p.test_setup, limits=limits
        )
        for p, entry in candidates
    ]
    observed = run_many(jobs, workers=workers)

    # A reference that fails while observed is run once more as is, so the wrapper cannot be
    # what made it fail; if it then passes, it is kept with the types its annotations give.
    failed = [i for i, result in enumerate(observed) if describe_failure(result) is not None]
    plain_jobs = [
        SandboxJob(
            code=candidates[i][0].reference, tests=jobs[i].tests, setup=jobs[i].setup, limits=limits
        )
        for i in failed
    ]
    plain = dict(zip(failed, run_many(plain_jobs, workers=workers), strict=True))

    tasks: list[LabelledTask] = []
    for i, ((problem, entry), result) in enumerate(zip(candidates, observed, strict=True)):
        observations = read_observations(result.stdout)
        decided = plain.get(i, result)
        if i in plain:
            why = describe_failure(plain[i])
            if why is not None:
                skip(problem, why)
                continue
            logger.warning(
                "%s: types not observed (the reference fails only when wrapped)", problem.source_id
            )
            observations = Observations()
        try:
            tasks.append(build_task(problem, entry, observations))
        except (DerivationError, ValidationError) as exc:
            skip(problem, f"derived row is invalid: {' '.join(str(exc).split())[:300]}")
            continue
        report.in_sandbox += [
            InSandboxVerdict(
                source_id=problem.source_id, test=t.index, reason=t.verdict_reason or ""
            )
            for t in decided.tests
            if t.verdict is Verdict.in_sandbox
        ]
    report.written = len(tasks)
    return tasks, report
