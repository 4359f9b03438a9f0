"""`liftdspy evaluate PROGRAM --dataset PATH`: a saved program on held-out labelled data."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from liftdspy.cli import logs, output
from liftdspy.cli.recorder_flag import recorder_env, recorder_option
from liftdspy.lm.recorder import RecorderMode


def _export_lm_file(program: str) -> Path | None:
    """The LM config file of the export PROGRAM names (a directory or its program.json)."""
    from liftdspy.export import LM_CONFIG_FILE

    path = Path(program)
    folder = path if path.is_dir() else path.parent
    found = folder / LM_CONFIG_FILE
    return found if (folder / "manifest.json").is_file() and found.is_file() else None


def _lm_config(path: Path | None, overrides: list[str], program: str):
    """An LM config from a YAML file (an LM config, or any config with an `lm:` section); without
    `--lm`, `--set` applies to the LM config of the export PROGRAM names."""
    from pydantic import ValidationError

    from liftdspy.experiments.yaml_config import ConfigError, apply_overrides
    from liftdspy.lm.config import LMConfig
    from liftdspy.validation_errors import validation_problems

    if path is None:
        if not overrides:
            return None
        path = _export_lm_file(program)
        if path is None:
            raise ConfigError(
                "--set needs --lm FILE (the LM config the keys apply to), or an export "
                "directory that carries its LM config"
            )
    if not path.is_file():
        raise ConfigError(f"--lm {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--lm {path}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("lm"), dict):
        data = data["lm"]
    data = apply_overrides(data, overrides)
    try:
        return LMConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--lm {path}: " + "; ".join(validation_problems(exc))) from None


def _table(outcome, split: str) -> Table:
    table = Table(title=escape(f"{outcome.source} on {', '.join(outcome.dataset)} [{split}]"))
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
    return table


def evaluate(
    program: str = typer.Argument(
        ..., help="An MLflow run (id, name or 'latest'), programs/NAME/ or a program.json."
    ),
    dataset: list[Path] = typer.Option(..., "--dataset", help="Labelled JSONL file(s) or dirs."),
    split: str = typer.Option(
        "test", "--split", help="Which split of the dataset: train|dev|test."
    ),
    lm: Path | None = typer.Option(
        None,
        "--lm",
        help="LM config YAML (or an experiment/study YAML: its `lm`). Default: the LM the run "
        "or the export (its lm_config.json) carries.",
    ),
    set_: list[str] = typer.Option([], "--set", help="Override an LM key: --set max_tokens=300."),
    recorder: RecorderMode | None = recorder_option(),
    runtime: bool = typer.Option(
        False, "--runtime", help="Also score the exported prompt pack through liftdspy.runtime."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N examples."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Score a saved program on a labelled dataset; log an evaluation run linked to its run."""
    from liftdspy.studies.heldout import evaluate_heldout

    overrides = list(set_)
    if recorder is not None and (lm is not None or overrides):
        overrides.append(f"recorder.mode={recorder.value}")
    lm_config = _lm_config(lm, overrides, program)
    with recorder_env(recorder), logs.captured_prints():
        outcome = evaluate_heldout(
            program,
            dataset,
            split=split,
            lm=lm_config,
            runtime=runtime,
            limit=limit,
            tracking_uri=tracking_uri,
        )
    logs.log_to_run(outcome.run_id, tracking_uri)
    if as_json:
        output.print_json(outcome)
        return
    out = output.out()
    out.print(_table(outcome, split))
    if outcome.identical_requests is not None:
        ci = outcome.report.score
        out.print(f"runtime requests identical to DSPy's: {outcome.identical_requests}/{ci.n}")
    link = f" (program run {outcome.source_run_id})" if outcome.source_run_id else ""
    out.print(f"evaluation run: {outcome.run_id}{link}")
