"""MBPP (Austin et al., 2021) from a local file in the published `mbpp.jsonl` format.

Each row has `task_id`, `text`, `code`, `test_list`, `test_setup_code` and
`challenge_test_list`. The reference is `code`; the tests are `test_list` (run after `code` and
`test_setup_code`); the challenge tests are not used, as in the paper's evaluation.

Splits, when not forced: MBPP's own ranges of `task_id` map onto ours as
1-10 (few-shot prompt examples) -> train, 11-510 (test) -> test, 511-600 (validation) -> dev,
601-974 (train) -> train.

The prompt is the task text followed by the first test, the way the MBPP paper prompts: without
it the function's name (which every test calls) cannot be known.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from liftdspy.datasets.importers.derive import SourceProblem
from liftdspy.datasets.importers.pipeline import import_problems
from liftdspy.datasets.importers.report import ImportReport, SkippedRow
from liftdspy.datasets.loader import RowError
from liftdspy.datasets.row import LabelledTask, Split

logger = logging.getLogger(__name__)

MbppSplit = Literal["auto", "train", "dev", "test"]

_MAX_EXAMPLE_IN_PROMPT = 400


class MbppRow(BaseModel):
    """One row of `mbpp.jsonl`."""

    task_id: int
    text: str
    code: str
    test_list: list[str]
    test_setup_code: str = ""
    challenge_test_list: list[str] = []


def split_of(task_id: int) -> Split:
    """Our split for an MBPP task id, following MBPP's published ranges (see the module doc)."""
    if 11 <= task_id <= 510:
        return "test"
    if 511 <= task_id <= 600:
        return "dev"
    return "train"  # 1-10 (prompt examples) and 601-974


def read_mbpp(path: str | Path) -> tuple[list[MbppRow], list[RowError]]:
    """Every row of an `mbpp.jsonl`-format file, and `file:line` errors for unreadable ones."""
    path = Path(path)
    rows: list[MbppRow] = []
    errors: list[RowError] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(MbppRow.model_validate_json(line))
            except ValidationError as exc:
                errors.append(RowError(path, lineno, " ".join(str(exc).split())[:300]))
    return rows, errors


def _normalise(code: str) -> str:
    return code.replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


def to_problem(row: MbppRow, split: MbppSplit = "auto") -> SourceProblem:
    text = " ".join(row.text.split())
    tests = [_normalise(t).strip() for t in row.test_list if t.strip()]
    example = tests[0] if tests else ""
    prompt = text
    if example and len(example) <= _MAX_EXAMPLE_IN_PROMPT:
        prompt = f"{text}\nYour code should pass this test:\n{example}"
    return SourceProblem(
        source="mbpp",
        source_id=f"mbpp/{row.task_id}",
        task_id=f"mbpp/{row.task_id}",
        prompt=prompt,
        summary=text,
        reference=_normalise(row.code),
        tests=tests,
        test_setup=_normalise(row.test_setup_code) if row.test_setup_code.strip() else "",
        split=split_of(row.task_id) if split == "auto" else split,
        tags=["mbpp"],
    )


def import_mbpp(
    source: str | Path,
    *,
    split: MbppSplit = "auto",
    limit: int | None = None,
    workers: int | None = None,
) -> tuple[list[LabelledTask], ImportReport]:
    """Labelled tasks from an `mbpp.jsonl`-format file (the first `limit` rows if given)."""
    rows, errors = read_mbpp(source)
    if limit is not None:
        rows = rows[:limit]
    problems = [to_problem(row, split) for row in rows if row.test_list]
    tasks, report = import_problems(problems, source="mbpp", workers=workers)
    for row in rows:
        if not row.test_list:
            logger.warning("skipping mbpp/%s: no tests", row.task_id)
            report.skipped.append(SkippedRow(source_id=f"mbpp/{row.task_id}", reason="no tests"))
    for err in errors:
        logger.warning("skipping unreadable row %s", err)
        report.skipped.append(SkippedRow(source_id=f"{err.path}:{err.line}", reason=err.message))
    report.read = len(rows) + len(errors)
    return tasks, report
