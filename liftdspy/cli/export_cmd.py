"""`liftdspy export RUN --out programs/NAME/`: an MLflow run's compiled program, ready to ship.

Registered in `liftdspy/cli/__init__.py` as a single command: `app.command("export")(export)`.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from liftdspy.cli import logs, output
from liftdspy.cli.exit_codes import ExitCode


def export(
    run: str = typer.Argument(
        ..., help="An MLflow run id, or 'latest' for the most recent liftdspy experiment run."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Export directory, e.g. programs/NAME/."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)."
    ),
    register: bool = typer.Option(
        False, "--register", help="Also register each predictor's prompt in MLflow's registry."
    ),
    prompt_prefix: str | None = typer.Option(
        None, "--prompt-prefix", help="Registry name prefix (default: the --out folder's name)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the manifest (and registered prompts) as JSON."
    ),
) -> None:
    """Export the compiled program of RUN: program.json, prompt pack, prompts, its LM config
    (lm_config.json, redacted: `liftdspy evaluate programs/NAME` runs on it) and a manifest."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from liftdspy.export.from_run import RunExportError, export_run
    from liftdspy.export.prompt_pack import ExportError

    try:
        with logs.captured_prints():
            manifest = export_run(run, out, tracking_uri=tracking_uri)
    except (RunExportError, ExportError) as exc:
        output.error(str(exc), label="export failed")
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    registered = _register(out, manifest, tracking_uri, prompt_prefix) if register else []
    if as_json:
        output.print_json({"out": str(out), "manifest": manifest, "registered": registered})
        return
    console = output.out()
    table = Table(
        title=f"{manifest.program} ({manifest.predictor_kind}) from run {manifest.source_run_id}"
    )
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for file in manifest.files:
        table.add_row(file.path, str(file.bytes))
    console.print(table)
    for prompt in registered:
        console.print(f"registered [bold]{escape(prompt.uri)}[/bold] ({escape(prompt.predictor)})")
    console.print(f"[green]exported to {escape(str(out))}[/green]")


def _register(out: Path, manifest, tracking_uri: str | None, prompt_prefix: str | None) -> list:
    """Each predictor's prompt in MLflow's prompt registry (`--register`)."""
    import mlflow

    from liftdspy.export.prompt_registry import register_prompts
    from liftdspy.runtime.pack import load_pack
    from liftdspy.tracking import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    prefix = prompt_prefix or out.resolve().name
    with logs.captured_prints():
        return register_prompts(load_pack(out), prefix, source_run_id=manifest.source_run_id)
