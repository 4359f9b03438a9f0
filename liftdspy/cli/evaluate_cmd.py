"""`liftdspy evaluate PROGRAM --dataset PATH`: a saved program on held-out labelled data."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table


def _lm_config(path: Path | None, overrides: list[str]):
    """An LM config from a YAML file (an LM config, or any config with an `lm:` section)."""
    from pydantic import ValidationError

    from liftdspy.experiments.yaml_config import ConfigError, apply_overrides
    from liftdspy.lm.config import LMConfig
    from liftdspy.validation_errors import validation_problems

    if path is None:
        if overrides:
            raise ConfigError("--set needs --lm FILE (the LM config the keys apply to)")
        return None
    if not path.is_file():
        raise ConfigError(f"--lm {path}: no such file")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and isinstance(data.get("lm"), dict):
        data = data["lm"]
    data = apply_overrides(data, overrides)
    try:
        return LMConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--lm {path}: " + "; ".join(validation_problems(exc))) from None


def evaluate(
    program: str = typer.Argument(
        ..., help="An MLflow run (id, name or 'latest'), programs/NAME/ or a program.json."
    ),
    dataset: list[Path] = typer.Option(..., "--dataset", help="Labelled JSONL file(s) or dirs."),
    split: str = typer.Option(
        "test", "--split", help="Which split of the dataset: train|dev|test."
    ),
    lm: Path | None = typer.Option(
        None, "--lm", help="LM config YAML (or an experiment/study YAML: its `lm`)."
    ),
    set_: list[str] = typer.Option([], "--set", help="Override an LM key: --set max_tokens=300."),
    recorder: str | None = typer.Option(None, "--recorder", help="off|record|replay|offline."),
    runtime: bool = typer.Option(
        False, "--runtime", help="Also score the exported prompt pack through liftdspy.runtime."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N examples."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store."),
) -> None:
    """Score a saved program on a labelled dataset; log an evaluation run linked to its run."""
    from liftdspy.studies.heldout import evaluate_heldout

    overrides = list(set_) + ([f"recorder.mode={recorder}"] if recorder and lm else [])
    lm_config = _lm_config(lm, overrides)
    outcome = evaluate_heldout(
        program,
        dataset,
        split=split,
        lm=lm_config,
        runtime=runtime,
        limit=limit,
        tracking_uri=tracking_uri,
    )
    table = Table(title=f"{outcome.source} on {', '.join(outcome.dataset)} [{split}]")
    table.add_column("program")
    table.add_column("n", justify="right")
    table.add_column("score", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("floor-normalised", justify="right")
    ci, norm = outcome.report.score, outcome.report.score_normalised
    table.add_row(
        "in DSPy",
        str(ci.n),
        f"{ci.mean:.3f}",
        f"[{ci.low:.3f}, {ci.high:.3f}]",
        "" if norm is None else f"{norm.mean:.3f} [{norm.low:.3f}, {norm.high:.3f}]",
    )
    floor = outcome.report.floor
    if floor is not None:
        table.add_row(f"floor ({floor.winner})", str(floor.n), f"{floor.floor:.3f}", "", "0.000")
    if outcome.runtime_comparison is not None:
        c = outcome.runtime_comparison
        d = c.difference
        table.add_row("runtime (prompt pack)", str(c.n), f"{c.mean_b:.3f}", "")
        table.add_row(
            "runtime − DSPy",
            "",
            f"{d.mean:+.3f}",
            f"[{d.low:+.3f}, {d.high:+.3f}] p={c.p_value:.3f}",
        )
    out = Console()
    out.print(table)
    if outcome.identical_requests is not None:
        out.print(f"runtime requests identical to DSPy's: {outcome.identical_requests}/{ci.n}")
    link = f" (program run {outcome.source_run_id})" if outcome.source_run_id else ""
    out.print(f"evaluation run: {outcome.run_id}{link}")
