"""The `liftdspy` command line (typer + rich). Each command group lives in its own module."""

from __future__ import annotations

import logging

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

import liftdspy
from liftdspy.cli import (
    cache_cmd,
    compare_cmd,
    datasets_cmd,
    evaluate_cmd,
    export_cmd,
    lm_cmd,
    modal_cmd,
    run_cmd,
    sandbox_cmd,
    serve_cmd,
    server_cmd,
    study_cmd,
    ui_cmd,
)
from liftdspy.errors import LiftdspyError


class LiftdspyGroup(TyperGroup):
    """The root command group: a `LiftdspyError` from any command is printed to stderr (exit 1).

    Only liftdspy's own errors are caught here; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LiftdspyError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=LiftdspyGroup,
    name="liftdspy",
    help="DSPy optimization research for natural language -> IR -> Python code.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(
    datasets_cmd.app, name="datasets", help="Validate, inspect and import labelled datasets."
)
app.add_typer(sandbox_cmd.app, name="sandbox", help="Run code against tests in the sandbox.")
app.add_typer(lm_cmd.app, name="lm", help="Talk to the configured language models.")
app.add_typer(cache_cmd.app, name="cache", help="Inspect and move recorded LM responses.")
app.add_typer(modal_cmd.app, name="modal", help="Deploy and reach the vLLM server on Modal.")
app.add_typer(serve_cmd.app, name="serve", help="Serve a model locally (vLLM, OpenAI API).")
app.add_typer(server_cmd.app, name="server")
app.add_typer(study_cmd.app, name="study", help="Studies: arms x seeds with honest statistics.")
app.command(name="run")(run_cmd.run)
app.command(name="evaluate")(evaluate_cmd.evaluate)
app.command(name="compare")(compare_cmd.compare)
app.command(name="export")(export_cmd.export)
app.command(name="ui")(ui_cmd.ui)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=True)],
    )


@app.command()
def version() -> None:
    """Print liftdspy's version."""
    typer.echo(liftdspy.__version__)


def main() -> None:
    app()
