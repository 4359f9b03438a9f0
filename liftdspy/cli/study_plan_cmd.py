"""`liftdspy study plan STUDY.yaml --mde 0.05 [--pilot STUDY]`: the eval tasks × seeds reaching a
minimum detectable effect, from a pilot study's variance and cost (`studies.power_plan`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def _table(plan) -> Table:
    pool = f" of {plan.eval_pool}" if plan.eval_pool is not None else ""
    table = Table(
        title=(
            f"study {plan.study}: designs reaching MDE ≤ {plan.target_mde:g} at "
            f"{plan.power:.0%} power, Holm over {plan.comparisons} arms "
            f"(α = {plan.alpha_per_test:.3g} per test); pilot {plan.pilot}"
        )
    )
    for column in ("seeds", f"eval tasks{pool}", "MDE", "limiting arm", "LM calls", "LM time"):
        table.add_column(column, justify="left" if column == "limiting arm" else "right")
    for option in plan.options:
        mark = " ←" if option == plan.recommended else ""
        if option.n_examples is None:
            table.add_row(str(option.n_seeds), "unreachable", "", "", "", "")
            continue
        tasks = f"{option.n_examples}" + ("" if option.within_pool else " (> pool)")
        table.add_row(
            str(option.n_seeds) + mark,
            tasks,
            f"{option.mde:.3f}",
            option.limiting_arm or "",
            f"{option.lm_calls:,}",
            _hours(option.lm_hours),
        )
    return table


def plan(
    study: Path = typer.Argument(..., help="Study config to size (studies/NAME.yaml)."),
    mde: float = typer.Option(..., "--mde", help="Target minimum detectable gain (0-1 scale)."),
    pilot: str | None = typer.Option(
        None, "--pilot", help="Pilot study name or run id (default: this study's latest run)."
    ),
    power: float = typer.Option(0.8, "--power", help="Power of each arm's test."),
    alpha: float = typer.Option(0.05, "--alpha", help="Family-wise level (Holm over the arms)."),
    min_seeds: int = typer.Option(2, "--min-seeds", min=1, help="Fewest seeds to consider."),
    max_seeds: int = typer.Option(10, "--max-seeds", min=1, help="Most seeds to consider."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """How many eval tasks x seeds reach --mde, with the LM calls and time it will cost."""
    from liftdspy.studies import load_study
    from liftdspy.studies.pilot import read_pilot
    from liftdspy.studies.power_plan import eval_pool, plan_power

    config = load_study(study)
    measurements = read_pilot(config, pilot, tracking_uri)
    try:
        planned = plan_power(
            config,
            measurements,
            mde,
            alpha=alpha,
            power=power,
            min_seeds=min_seeds,
            max_seeds=max(max_seeds, min_seeds),
            eval_pool=eval_pool(config),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(planned.model_dump(mode="json"), indent=2))
        return
    out = Console()
    out.print(_table(planned))
    best = planned.recommended
    if best is None:
        out.print(f"[yellow]no design up to {max_seeds} seeds reaches MDE {mde:g}[/yellow]")
    else:
        out.print(
            f"plan: {best.n_examples} eval tasks × {best.n_seeds} seeds "
            f"(dataset.max_eval={best.n_examples}, seeds: {list(range(best.n_seeds))}): "
            f"~{best.lm_calls:,} LM calls, ~{_hours(best.lm_hours)} of LM time at the pilot's "
            f"{planned.seconds_per_call or 0:.1f} s per call"
        )
    for note in planned.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
