"""`liftdspy run EXPERIMENT.yaml`: one optimization experiment, tracked in MLflow."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from liftdspy.cli import logs, output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.cli.recorder_flag import recorder_env, recorder_option
from liftdspy.experiments.config import ConfigError, load_config
from liftdspy.experiments.evaluation import ExampleResult
from liftdspy.experiments.runner import ExperimentOutcome, run_experiment
from liftdspy.experiments.runner import Progress as RunProgress
from liftdspy.lm.recorder import RecorderMode
from liftdspy.sandbox import UNSAFE_WARNING

logger = logging.getLogger(__name__)


class RichProgress(RunProgress):
    """Progress bars for the evaluation phases; a spinner while the optimizer compiles."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def phase(self, name: str, total: int | None) -> None:
        if self.task is not None:
            finished = self.progress.tasks[-1]
            if finished.total is None:
                self.progress.update(self.task, total=1, completed=1)
            self.progress.stop_task(self.task)
        description = {"compile": "compiling (optimizer)"}.get(name, f"evaluating {name}")
        self.task = self.progress.add_task(description, total=total)

    def advance(self, result: ExampleResult | None = None) -> None:
        if self.task is not None:
            self.progress.advance(self.task)


def _exit_now(code: int) -> None:
    """Leave at once after Ctrl-C. The run is already marked FAILED and every finished call is
    recorded; what is left are the LM calls in flight in abandoned evaluation threads, and the
    interpreter's teardown of the loaded modules (MLflow, DSPy, SQLAlchemy: seconds on a busy
    machine), which would keep a user waiting for nothing."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _summary(outcome: ExperimentOutcome) -> Table:
    floor = outcome.optimized.floor
    table = Table(title=f"run {outcome.run_id}")
    table.add_column("program")
    table.add_column("score", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("floor-normalised", justify="right")
    for report in (outcome.baseline, outcome.optimized):
        ci, norm = report.score, report.score_normalised
        table.add_row(
            report.label,
            f"{ci.mean:.3f}",
            f"[{ci.low:.3f}, {ci.high:.3f}]",
            "" if norm is None else f"{norm.mean:.3f} [{norm.low:.3f}, {norm.high:.3f}]",
        )
    diff = outcome.comparison.difference
    scale = 1.0 - floor.floor if floor is not None and floor.floor < 1.0 else None
    table.add_row(
        "gain",
        f"{diff.mean:+.3f}",
        f"[{diff.low:+.3f}, {diff.high:+.3f}] p={outcome.comparison.p_value:.3f}",
        "" if scale is None else f"{diff.mean / scale:+.3f}",
    )
    if floor is not None:
        table.add_row(f"floor ({floor.winner})", f"{floor.floor:.3f}", "constant answer", "0.000")
    return table


def run(
    experiment: Path = typer.Argument(..., help="Experiment config (YAML)."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Override a config key: --set optimizer.compile.num_trials=5 (repeatable).",
    ),
    recorder: RecorderMode | None = recorder_option(),
    unsafe_no_isolation: bool = typer.Option(
        False,
        "--unsafe-no-isolation",
        help="Run generated code WITHOUT OS isolation (sandbox.isolation=none); tagged in MLflow.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the outcome (scores, comparison, cost) as JSON."
    ),
) -> None:
    """Evaluate the program, optimize it, evaluate the result; everything goes to MLflow."""
    overrides = list(set_)
    if recorder is not None:
        overrides.append(f"lm.recorder.mode={recorder.value}")
    if unsafe_no_isolation:
        overrides.append("sandbox.isolation=none")
    with recorder_env(recorder):
        _run(experiment, overrides, recorder, as_json)


def _run(
    experiment: Path, overrides: list[str], recorder: RecorderMode | None, as_json: bool
) -> None:
    try:
        config = load_config(experiment, overrides)
        if recorder is not None and config.reflection_lm is not None:
            config.reflection_lm.recorder.mode = config.lm.recorder.mode
    except ConfigError as exc:
        output.error(str(exc))
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    run_ids: list[str] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with (
            Progress(
                *columns,
                console=output.err(),
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as bars,
            logs.captured_prints(),
        ):
            outcome = run_experiment(
                config,
                config_path=experiment,
                progress=RichProgress(bars),
                on_run_started=run_ids.append,
            )
    except KeyboardInterrupt:
        where = f" (MLflow run {run_ids[0]} marked FAILED, finished work kept)" if run_ids else ""
        output.err().print(
            f"[yellow]interrupted{where}; re-run to replay finished LM calls[/yellow]"
        )
        _exit_now(ExitCode.INTERRUPTED)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as exc:
        _keep_log(run_ids, config.tracking.uri)
        output.error(str(exc))
        raise typer.Exit(ExitCode.FINDING) from None
    logs.log_to_run(outcome.run_id, config.tracking.uri)
    if config.sandbox.isolation == "none":
        output.err().print(f"[bold red]warning:[/bold red] {UNSAFE_WARNING}")
    if as_json:
        output.print_json(outcome)
        return
    out = output.out()
    out.print(_summary(outcome))
    out.print(f"MLflow run: {outcome.run_id} (liftdspy ui to browse, liftdspy compare to compare)")


def _keep_log(run_ids: list[str], tracking_uri: str | None) -> None:
    """A failed run keeps its log too: in the run when it was started, on disk in any case."""
    if run_ids:
        logs.log_to_run(run_ids[0], tracking_uri)
    path = logs.flush()
    if path is not None:
        output.err().print(f"full log: {path}", markup=False)
