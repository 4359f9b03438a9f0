"""`liftdspy study run|report`: arms x seeds of experiments, honest statistics, a report.

`study run` exits 3 (incomplete) when the budget stopped the study or some cells did not finish,
naming them on stderr; re-running resumes (finished cells are skipped).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.table import Table

from liftdspy.cli import logs, output, study_plan_cmd
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.cli.recorder_flag import recorder_env, recorder_option
from liftdspy.errors import LiftdspyError
from liftdspy.lm.recorder import RecorderMode

logger = logging.getLogger(__name__)
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
    recorder: RecorderMode | None = recorder_option(),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (one LM each)."),
    concurrent_cells: int = typer.Option(
        1,
        "--concurrent-cells",
        min=1,
        help="Cells run at once in this process, sharing its one LM (the embedded engine "
        "decodes their requests in one batch).",
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="Run each cell as a Ray task on the cluster at ADDRESS."
    ),
    plan_only: bool = typer.Option(False, "--plan", help="Print the plan and stop."),
    report_dir: Path | None = typer.Option(
        None, "--report", help="Also write the HTML report to this directory."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the plan, the outcome and the report's figures as JSON."
    ),
) -> None:
    """Run every unfinished cell of the study (plan first), then log its report.

    Exits 3 when the budget stopped it or some cells did not finish (re-run to resume)."""
    from liftdspy.studies import load_study
    from liftdspy.studies.executors import (
        InProcessExecutor,
        ProcessPoolCellExecutor,
        RayCellExecutor,
        ThreadCellExecutor,
    )
    from liftdspy.studies.runner import prepare_study, run_study

    if concurrent_cells > 1 and (ray or workers > 1):
        output.err().print(
            "--concurrent-cells runs cells in this process: use it without --workers and --ray",
            markup=False,
        )
        raise typer.Exit(ExitCode.BAD_INPUT)
    config = load_study(study, list(set_))
    if recorder is not None:
        for lm in [config.lm, config.reflection_lm, *config.lms.values()]:
            if lm is not None:
                lm.recorder.mode = recorder
    prepared = prepare_study(config)
    # With --json, stdout holds the JSON document only; the human lines go to stderr.
    say = output.err() if as_json else output.out()
    say.print(_plan_table(prepared.plan))
    if prepared.expected_mde:
        # Said before any LM call: what this size can detect, from the study's earlier runs.
        say.print(prepared.expected_mde, markup=False)
    if prepared.plan.skipped:
        say.print(f"finished before, skipped: {', '.join(prepared.plan.skipped)}")
    budget = config.budget
    if budget.max_lm_calls or budget.max_output_tokens:
        say.print(
            f"budget: max_lm_calls={budget.max_lm_calls} "
            f"max_output_tokens={budget.max_output_tokens} (live calls; replays are free)"
        )
    if plan_only:
        if as_json:
            output.print_json({"plan": prepared.plan, "expected_mde": prepared.expected_mde})
        return
    if ray:
        executor = RayCellExecutor(ray, slots=max(workers, 1))
    elif workers > 1:
        executor = ProcessPoolCellExecutor(workers, worker_setup=logs.worker_setup())
    elif concurrent_cells > 1:
        executor = ThreadCellExecutor(concurrent_cells)
    else:
        executor = InProcessExecutor()

    def show(result) -> None:
        mean = f"{result.mean:.3f}" if result.status == "finished" else "-"
        output.err().print(
            f"cell {result.cell.id}: {result.status} score {mean} "
            f"({result.cost.live_calls} live calls, {result.cost.replayed} replayed)"
            + (f" — {result.error}" if result.error else ""),
            markup=False,
        )

    try:
        with recorder_env(recorder), logs.captured_prints():
            outcome = run_study(prepared, executor, on_result=show)
    except KeyboardInterrupt:
        output.err().print("[yellow]interrupted; re-run to skip finished cells[/yellow]")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    from liftdspy.studies.report import build_report, write_report

    parity = None
    if config.parity.enabled and any(r.status == "finished" for r in outcome.results):
        from liftdspy.studies.parity import run_study_parity

        with logs.captured_prints():
            parity = run_study_parity(prepared)
        if parity is not None:
            output.err().print(
                f"export parity ({parity.arm}): {parity.identical_requests}/{parity.requests} "
                "runtime requests identical to DSPy's"
            )
    incomplete = bool(outcome.stopped_by_budget or outcome.not_run)
    report = index = None
    try:
        with logs.captured_prints():
            report = build_report(config.tracking.uri, outcome.parent_run_id)
            target = report_dir or Path("reports") / f"study-{config.name}"
            index = write_report(report, target, log_to_run=True)
    except LiftdspyError as exc:
        if not incomplete:
            raise
        # An unfinished study may lack what the report compares (e.g. its baseline arm).
        output.err().print(f"no report yet: {exc}", markup=False)
    logs.log_to_run(outcome.parent_run_id, config.tracking.uri)
    if as_json:
        output.print_json(
            {"plan": prepared.plan, "outcome": outcome, "parity": parity, "report": report}
        )
    elif report is not None:
        say.print(summary_table(report))
        if report.mde_sentence:
            say.print(report.mde_sentence)
        say.print(f"study run: {outcome.parent_run_id}; report: {index}")
    else:
        say.print(f"study run: {outcome.parent_run_id}")
    if incomplete:
        _incomplete(outcome)
        raise typer.Exit(ExitCode.INCOMPLETE)


def _incomplete(outcome) -> None:
    """Why the study is incomplete, on stderr (the exit code is 3)."""
    err = output.err()
    if outcome.stopped_by_budget:
        err.print(f"incomplete: stopped by the budget: {outcome.stopped_by_budget}", markup=False)
    if outcome.not_run:
        err.print(
            f"incomplete: {len(outcome.not_run)} cell(s) not run or not finished: "
            + ", ".join(outcome.not_run),
            markup=False,
        )
    err.print("re-run the same command to resume (finished cells are skipped)")


def summary_table(report) -> Table:
    table = Table(title=f"study {report.study}: gain over {report.baseline}")
    columns = ("arm", "score", "95% CI", "floor-normalised", "gain", "gain 95% CI", "p (Holm)")
    for column in (*columns, "W/L/T"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for row in report.rows:
        table.add_row(
            row.arm,
            f"{row.mean:.3f}",
            f"[{row.low:.3f}, {row.high:.3f}]",
            ""
            if row.mean_normalised is None
            else f"{row.mean_normalised:+.3f} [{row.low_normalised:+.3f}, "
            f"{row.high_normalised:+.3f}]",
            "" if row.gain is None else f"{row.gain:+.3f}",
            "" if row.gain is None else f"[{row.gain_low:+.3f}, {row.gain_high:+.3f}]",
            "" if row.p_holm is None else f"{row.p_holm:.3f}",
            "" if row.wins is None else f"{row.wins}/{row.losses}/{row.ties}",
        )
    if report.floor is not None:
        f = report.floor
        table.caption = (
            f"floor {f.floor:.3f}: the best constant answer ({f.winner}, no LM) on the same "
            f"{f.n} examples; floor-normalised = (score − floor) / (1 − floor)"
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
    with logs.captured_prints():
        built = build_report(tracking_uri, name)
    if as_json:
        output.print_json(built)
        return
    say = output.out()
    say.print(summary_table(built))
    if built.mde_sentence:
        say.print(built.mde_sentence)
    with logs.captured_prints():
        index = write_report(built, out or Path("reports") / f"study-{built.study}", log_to_run=log)
    say.print(f"report: {index}")
