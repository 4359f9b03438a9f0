"""Benchmark data imported at run time: a dataset config's `imports:` (MBPP, HumanEval).

An experiment or study can name a benchmark file to import instead of committing the imported
rows (MBPP's files live beside the checkout, `../shared/data/mbpp`, and are never copied into
the project):

    dataset:
      paths: [datasets/core]
      imports:
        - importer: mbpp
          path: ../shared/data/mbpp/validation.jsonl
          split: test          # every imported task in this split (default: the importer's own)

The import runs each reference against its own tests in the sandbox (`liftdspy.datasets.
importers`), which takes a while, so its result is cached as a JSONL dataset under
`~/.cache/liftdspy/imports/`, keyed by the source file's bytes, the importer, the split, the
limit and the liftdspy version: a changed file or a new liftdspy imports again. The cached file
is read back through the ordinary loader (validated row by row), never trusted as code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liftdspy.datasets.loader import load_tasks, write_tasks
from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.errors import LiftdspyError

logger = logging.getLogger(__name__)

ImporterName = Literal["mbpp", "humaneval"]
CACHE_ENV = "LIFTDSPY_IMPORT_CACHE"


class DatasetImportError(LiftdspyError, ValueError):
    """A dataset import cannot run (its file is missing, its importer is not installed)."""


class DatasetImport(BaseModel):
    """One benchmark file to import when the dataset is loaded."""

    model_config = ConfigDict(extra="forbid")

    importer: ImporterName
    path: Path | None = Field(
        None, description="the source file (mbpp: required; humaneval: the package's own if unset)"
    )
    split: Split | None = Field(
        None, description="put every imported task in this split (unset: the importer's own)"
    )
    limit: int | None = Field(None, gt=0, description="import the first LIMIT rows only")

    def describe(self) -> str:
        return f"{self.importer} {self.path or '(package data)'}"


def cache_dir() -> Path:
    """Where imported datasets are cached: `$LIFTDSPY_IMPORT_CACHE`, else
    `$XDG_CACHE_HOME/liftdspy/imports` (`~/.cache/liftdspy/imports`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "liftdspy" / "imports"


def _source_file(spec: DatasetImport) -> Path:
    if spec.path is not None:
        path = spec.path
    elif spec.importer == "humaneval":
        from liftdspy.datasets.importers.humaneval import HumanEvalNotInstalledError, data_file

        try:
            path = data_file()
        except HumanEvalNotInstalledError as exc:
            raise DatasetImportError(f"dataset import {spec.describe()}: {exc}") from None
    else:
        raise DatasetImportError(f"dataset import {spec.importer}: `path` is required")
    if not path.is_file():
        raise DatasetImportError(
            f"dataset import {spec.describe()}: no such file (benchmark data is not shipped; "
            "MBPP's files are beside the checkout in ../shared/data/mbpp)"
        )
    return path


def cache_key(spec: DatasetImport, source: Path) -> str:
    import liftdspy

    digest = hashlib.sha256()
    for part in (spec.importer, str(spec.split), str(spec.limit), liftdspy.__version__):
        digest.update(part.encode() + b"\0")
    digest.update(source.read_bytes())
    return digest.hexdigest()[:20]


def _run_import(spec: DatasetImport, source: Path) -> list[LabelledTask]:
    if spec.importer == "mbpp":
        from liftdspy.datasets.importers.mbpp import import_mbpp

        tasks, report = import_mbpp(source, split=spec.split or "auto", limit=spec.limit)
    else:
        from liftdspy.datasets.importers.humaneval import import_humaneval

        tasks, report = import_humaneval(path=source, split=spec.split or "test", limit=spec.limit)
    logger.info(
        "imported %s: %d of %d rows (%d skipped)",
        spec.describe(),
        report.written,
        report.read,
        len(report.skipped),
    )
    return tasks


def imported_tasks(spec: DatasetImport) -> list[LabelledTask]:
    """The tasks `spec` imports: from the cache when this exact import ran before, else imported
    now (references run in the sandbox) and cached (written whole, then renamed into place)."""
    source = _source_file(spec)
    cached = cache_dir() / f"{spec.importer}-{cache_key(spec, source)}.jsonl"
    if cached.is_file():
        logger.debug("dataset import %s from the cache %s", spec.describe(), cached)
        return load_tasks([cached])
    tasks = _run_import(spec, source)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".part", delete=False) as tmp:
        partial = Path(tmp.name)
    write_tasks(tasks, partial)
    partial.replace(cached)
    return tasks


def load_dataset(paths: list[Path], imports: list[DatasetImport]) -> list[LabelledTask]:
    """The tasks of `paths` (files, or `*.jsonl` under directories) followed by those of each
    import, in order. Task ids must be unique across all of them."""
    tasks = load_tasks(paths)
    for spec in imports:
        tasks.extend(imported_tasks(spec))
    seen: dict[str, int] = {}
    for task in tasks:
        seen[task.id] = seen.get(task.id, 0) + 1
    duplicated = sorted(task_id for task_id, n in seen.items() if n > 1)
    if duplicated:
        raise DatasetImportError(f"task ids appear more than once: {', '.join(duplicated[:10])}")
    return tasks
