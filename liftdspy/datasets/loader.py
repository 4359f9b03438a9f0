"""Load and validate JSONL files of labelled tasks, reporting bad rows as `file:line: problem`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.errors import LiftdspyError
from liftdspy.validation_errors import validation_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowError:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class DatasetError(LiftdspyError, ValueError):
    """One or more rows of a dataset are invalid; `errors` lists every one found."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        head = "\n".join(str(e) for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} invalid row(s):\n{head}{more}")


@dataclass
class LoadResult:
    tasks: list[LabelledTask]
    errors: list[RowError]


def _describe(exc: ValidationError) -> str:
    return "; ".join(validation_problems(exc, root="(row)"))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and every `*.jsonl` under any directory given (sorted)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(path.rglob("*.jsonl")))
        else:
            out.append(path)
    return out


def read_tasks(paths: Iterable[str | Path]) -> LoadResult:
    """Read every row of every file, collecting (not raising) errors, including duplicate ids."""
    tasks: list[LabelledTask] = []
    errors: list[RowError] = []
    seen: dict[str, RowError] = {}
    for path in expand_paths(paths):
        if not path.is_file():
            errors.append(RowError(path, 0, "no such file"))
            continue
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    errors.append(
                        RowError(path, lineno, f"not valid JSON: {exc.msg} (col {exc.colno})")
                    )
                    continue
                try:
                    task = LabelledTask.model_validate(data)
                except ValidationError as exc:
                    errors.append(RowError(path, lineno, _describe(exc)))
                    continue
                here = RowError(path, lineno, "")
                if task.id in seen:
                    first = seen[task.id]
                    errors.append(
                        RowError(
                            path,
                            lineno,
                            f"duplicate id {task.id!r} (first at {first.path}:{first.line})",
                        )
                    )
                    continue
                seen[task.id] = here
                tasks.append(task)
    return LoadResult(tasks, errors)


def load_tasks(
    paths: Iterable[str | Path],
    *,
    splits: Iterable[Split] | None = None,
    keep_going: bool = False,
) -> list[LabelledTask]:
    """Load labelled tasks. Any bad row raises `DatasetError` unless `keep_going`, in which case
    bad rows are logged and skipped. `splits` keeps only those splits."""
    result = read_tasks(paths)
    if result.errors:
        if not keep_going:
            raise DatasetError(result.errors)
        for err in result.errors:
            logger.warning("skipping bad row: %s", err)
    tasks = result.tasks
    if splits is not None:
        wanted = set(splits)
        tasks = [t for t in tasks if t.split in wanted]
    return tasks


def write_tasks(tasks: Iterable[LabelledTask], path: str | Path) -> int:
    """Write tasks as JSONL (one compact object per line). Returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(task.model_dump_json(exclude_defaults=False) + "\n")
            n += 1
    return n
