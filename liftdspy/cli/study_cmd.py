"""`liftdspy study run|report`: arms x seeds of experiments, honest statistics, a report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from liftdspy.cli import study_plan_cmd

logger = logging.getLogger(__name__)
console = Console(stderr=True)
app = typer.Typer(no_args_is_help=True)
app.command("plan")(study_plan_cmd.plan)


def _plan_table(plan) -> Table:
    table = Table(title=f"study {plan.study}: plan ({len(plan.cells)} cells to run)")
    for column in ("arm", "kind", "cells", "LM calls / cell", "LM calls", "output tokens ≤"):
        table.add_column(column, justify="left" if column in ("arm", "kind") else "right")
    for arm in plan.arms:
        table.add_row(
            arm.arm,
            arm.kind,
            str(arm.cells),
            "?" if arm.calls_per_cell is None else f"~{arm.calls_per_cell}",
            "?" if arm.calls is None else f"~{arm.calls}",
            "?" if arm.output_tokens_max is None else f"{arm.output_tokens_max:,}",
        )
    total = plan.calls
    table.add_row("total", "", str(len(plan.cells)), "", "?" if total is None else f"~{total}", "")
    return table


@app.command("run")
def run(
    study: Path = typer.Argument(..., help="Study config (studies/NAME.yaml)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a key: --set seeds=[0,1] (repeatable)."
    ),
    recorder: str | None = typer.Option(
        None, "--recorder", help="Recorder mode for every LM: off | record | replay | offline."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (one LM each)."),
    ray: str | None = typer.Option(
        None, "--ray", help="Run each cell as a Ray task on the cluster at ADDRESS."
    ),
    plan_only: bool = typer.Option(False, "--plan", help="Print the plan and stop."),
    report_dir: Path | None = typer.Option(
        None, "--report", help="Also write the HTML report to this directory."
    ),
) -> None:
    """Run every unfinished cell of the study (plan first), then log its report."""
    from liftdspy.studies import load_study
    from liftdspy.studies.executors import (
        InProcessExecutor,
        ProcessPoolCellExecutor,
        RayCellExecutor,
    )
    from liftdspy.studies.runner import prepare_study, run_study

    overrides = list(set_)
    config = load_study(study, overrides)
    if recorder is not None:
        for lm in [config.lm, config.reflection_lm, *config.lms.values()]:
            if lm is not None:
                lm.recorder.mode = recorder  # type: ignore[assignment]
    prepared = prepare_study(config)
    out = Console()
    out.print(_plan_table(prepared.plan))
    if prepared.plan.skipped:
        out.print(f"finished before, skipped: {', '.join(prepared.plan.skipped)}")
    budget = config.budget
    if budget.max_lm_calls or budget.max_output_tokens:
        out.print(
            f"budget: max_lm_calls={budget.max_lm_calls} "
            f"max_output_tokens={budget.max_output_tokens} (live calls; replays are free)"
        )
    if plan_only:
        return
    if ray:
        executor = RayCellExecutor(ray, slots=max(workers, 1))
    elif workers > 1:
        executor = ProcessPoolCellExecutor(workers)
    else:
        executor = InProcessExecutor()

    def show(result) -> None:
        mean = f"{result.mean:.3f}" if result.status == "finished" else "-"
        console.print(
            f"cell {result.cell.id}: {result.status} score {mean} "
            f"({result.cost.live_calls} live calls, {result.cost.replayed} replayed)"
            + (f" — {result.error}" if result.error else "")
        )

    try:
        outcome = run_study(prepared, executor, on_result=show)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; re-run to skip finished cells[/yellow]")
        raise typer.Exit(130) from None
    if outcome.stopped_by_budget:
        out.print(f"[yellow]stopped: {outcome.stopped_by_budget}[/yellow]")
    if outcome.not_run:
        out.print(f"[yellow]not run / not finished: {', '.join(outcome.not_run)}[/yellow]")
    from liftdspy.studies.report import build_report, write_report

    if config.parity.enabled and any(r.status == "finished" for r in outcome.results):
        from liftdspy.studies.parity import run_study_parity

        parity = run_study_parity(prepared)
        if parity is not None:
            console.print(
                f"export parity ({parity.arm}): {parity.identical_requests}/{parity.requests} "
                "runtime requests identical to DSPy's"
            )
    report = build_report(config.tracking.uri, outcome.parent_run_id)
    out.print(summary_table(report))
    if report.mde_sentence:
        out.print(report.mde_sentence)
    target = report_dir or Path("reports") / f"study-{config.name}"
    index = write_report(report, target, log_to_run=True)
    out.print(f"study run: {outcome.parent_run_id}; report: {index}")


def summary_table(report) -> Table:
    table = Table(title=f"study {report.study}: gain over {report.baseline}")
    for column in ("arm", "score", "95% CI", "gain", "gain 95% CI", "p (Holm)", "W/L/T"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for row in report.rows:
        table.add_row(
            row.arm,
            f"{row.mean:.3f}",
            f"[{row.low:.3f}, {row.high:.3f}]",
            "" if row.gain is None else f"{row.gain:+.3f}",
            "" if row.gain is None else f"[{row.gain_low:+.3f}, {row.gain_high:+.3f}]",
            "" if row.p_holm is None else f"{row.p_holm:.3f}",
            "" if row.wins is None else f"{row.wins}/{row.losses}/{row.ties}",
        )
    return table


@app.command("report")
def report(
    study: str = typer.Argument(..., help="Study name, study run id, or studies/NAME.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Directory for index.html + PNGs."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's figures as JSON."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store."),
    log: bool = typer.Option(True, "--log/--no-log", help="Log the report to the study run."),
) -> None:
    """The study's report: forest plot, per-seed scores, win/loss matrix, optimism, cost, MDE."""
    from liftdspy.studies.report import build_report, write_report

    name = study
    if study.endswith((".yaml", ".yml")):
        from liftdspy.studies import load_study

        config = load_study(study)
        name, tracking_uri = config.name, tracking_uri or config.tracking.uri
    built = build_report(tracking_uri, name)
    if as_json:
        typer.echo(json.dumps(built.model_dump(mode="json"), indent=2))
        return
    Console().print(summary_table(built))
    if built.mde_sentence:
        Console().print(built.mde_sentence)
    index = write_report(built, out or Path("reports") / f"study-{built.study}", log_to_run=log)
    Console().print(f"report: {index}")
