"""`liftdspy compare RUN [RUN ...]`: experiment runs side by side, with paired tests.

Registered in `liftdspy/cli/__init__.py` as a single command: `app.command("compare")(compare)`.
"""

from __future__ import annotations

import os

import typer
from rich.markup import escape
from rich.table import Table

from liftdspy.cli import logs, output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.compare import Comparison, RunSummary

MAX_EXAMPLE_ROWS = 40
COST_COLUMNS = (
    ("lm_calls", "LM calls"),
    ("lm_cache_hits", "cache hits"),
    ("lm_input_tokens", "input tokens"),
    ("lm_output_tokens", "output tokens"),
    ("wall_seconds.total", "wall s"),
)


def _ci(mean: float, low: float, high: float) -> str:
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _scores_table(comparison: Comparison) -> Table:
    table = Table(title=f"{comparison.which} scores (95% CI, crossed bootstrap)")
    for column in ("run", "experiment", "program", "optimizer", "n", "errors", "truncated"):
        table.add_column(
            column, justify="right" if column in ("n", "errors", "truncated") else "left"
        )
    table.add_column(f"{comparison.which} score")
    table.add_column("floor")
    table.add_column("floor-normalised")
    if comparison.which == "optimized":
        table.add_column("baseline score")
    for run in comparison.runs:
        row = [run.name, run.experiment, run.program, run.optimizer, str(run.n), str(run.errors)]
        row.append(f"{run.truncated_rate:.0%}")
        row.append(_ci(run.score.mean, run.score.low, run.score.high))
        row.append("-" if run.floor is None else f"{run.floor:.3f}")
        norm = run.score_normalised
        row.append(_ci(norm.mean, norm.low, norm.high) if norm else "-")
        if comparison.which == "optimized":
            b = run.baseline
            row.append(_ci(b.mean, b.low, b.high) if b else "-")
        table.add_row(*row)
    return table


def _components_table(runs: list[RunSummary]) -> Table:
    table = Table(title="metric components (mean over examples)")
    table.add_column("component")
    for run in runs:
        table.add_column(run.name, justify="right")
    names = sorted({name for run in runs for name in run.components})
    for name in names:
        values = [run.components.get(name) for run in runs]
        best = max((v for v in values if v is not None), default=None)
        cells = []
        for value in values:
            if value is None:
                cells.append("-")
            elif best is not None and value == best and len(runs) > 1:
                cells.append(f"[bold]{value:.3f}[/bold]")
            else:
                cells.append(f"{value:.3f}")
        table.add_row(name, *cells)
    return table


def _pairs_table(comparison: Comparison) -> Table:
    table = Table(title="paired bootstrap, B minus A (on examples both evaluated)")
    columns = ("A", "B", "n", "B - A (95% CI)", "normalised", "p", "B wins", "B losses", "ties")
    for column in columns:
        table.add_column(column, justify="left" if column in ("A", "B") else "right")
    for pair in comparison.pairs:
        test = pair.test
        if test is None:
            table.add_row(pair.name_a, pair.name_b, "0", "[yellow]not comparable[/yellow]")
            continue
        d = test.difference
        n = str(pair.n_common) + ("*" if pair.only_in_a or pair.only_in_b else "")
        table.add_row(
            pair.name_a,
            pair.name_b,
            n,
            _ci(d.mean, d.low, d.high),
            "-" if pair.difference_normalised is None else f"{pair.difference_normalised:+.3f}",
            f"{test.p_value:.4f}",
            str(test.wins),
            str(test.losses),
            str(test.ties),
        )
    if any(pair.only_in_a or pair.only_in_b for pair in comparison.pairs):
        table.caption = "* only the examples both runs evaluated (see the notes below)"
    return table


def _examples_table(comparison: Comparison) -> Table | None:
    """Examples where the runs disagree (a shown run scored differently from another)."""
    differing = [
        e
        for e in comparison.examples
        if len({s for s in e.scores.values()}) > 1  # includes None (not evaluated)
    ]
    if not differing:
        return None
    table = Table(title=f"per-example scores where runs differ ({len(differing)} examples)")
    table.add_column("example")
    for run in comparison.runs:
        table.add_column(run.name, justify="right")
    for example in differing[:MAX_EXAMPLE_ROWS]:
        values = [example.scores.get(run.run_id) for run in comparison.runs]
        best = max((v for v in values if v is not None), default=None)
        cells = [
            "-" if v is None else (f"[green]{v:.3f}[/green]" if v == best else f"{v:.3f}")
            for v in values
        ]
        table.add_row(example.id, *cells)
    if len(differing) > MAX_EXAMPLE_ROWS:
        table.caption = f"{len(differing) - MAX_EXAMPLE_ROWS} more; --json lists every example"
    return table


def _cost_table(runs: list[RunSummary]) -> Table:
    table = Table(title="cost")
    table.add_column("run")
    for _, label in COST_COLUMNS:
        table.add_column(label, justify="right")
    for run in runs:
        cells = []
        for key, _ in COST_COLUMNS:
            value = run.cost.get(key)
            cells.append(
                "-" if value is None else (f"{value:.1f}" if "seconds" in key else f"{value:,.0f}")
            )
        table.add_row(run.name, *cells)
    return table


def compare(
    runs: list[str] = typer.Argument(
        ...,
        help="Runs to compare: MLflow run ids, run names, or 'latest' (newest experiment run).",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)."
    ),
    which: str = typer.Option(
        "optimized", "--which", help="Which evaluation to compare: optimized or baseline."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare experiment runs: scores with 95% CIs, components, paired tests, cost."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from liftdspy.compare import RunLookupError, compare_runs

    if which not in ("optimized", "baseline"):
        output.error(f"--which must be optimized or baseline, not {which!r}")
        raise typer.Exit(ExitCode.BAD_INPUT)
    try:
        with logs.captured_prints():
            comparison = compare_runs(runs, tracking_uri=tracking_uri, which=which)  # type: ignore[arg-type]
    except RunLookupError as exc:
        output.error(str(exc), label="compare failed")
        raise typer.Exit(ExitCode.BAD_INPUT) from None

    if as_json:
        output.print_json(comparison)
        return
    console = output.out()
    console.print(_scores_table(comparison))
    if any(run.components for run in comparison.runs):
        console.print(_components_table(comparison.runs))
    if comparison.pairs:
        console.print(_pairs_table(comparison))
    examples = _examples_table(comparison)
    if examples is not None:
        console.print(examples)
    console.print(_cost_table(comparison.runs))
    for note in comparison.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
