"""The `liftdspy` command line (typer + rich). Each command group lives in its own module.

Output rules (`liftdspy.cli.output`), exit codes (`liftdspy.cli.exit_codes`) and where log
records go (`liftdspy.cli.logs`) are decided once, for every command.
"""

from __future__ import annotations

from importlib import metadata

import click
import typer
from typer.core import TyperGroup

import liftdspy
from liftdspy.cli import (
    cache_cmd,
    compare_cmd,
    datasets_cmd,
    evaluate_cmd,
    export_cmd,
    lm_cmd,
    logs,
    modal_cmd,
    output,
    run_cmd,
    sandbox_cmd,
    serve_cmd,
    server_cmd,
    study_cmd,
    ui_cmd,
)
from liftdspy.cli.exit_codes import code_for_error
from liftdspy.errors import LiftdspyError


class LiftdspyGroup(TyperGroup):
    """The root command group: a `LiftdspyError` from any command is printed to stderr; the
    exit code says its class (`code_for_error`: 2 for bad input, 1 for a failure).

    Only liftdspy's own errors are caught here; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LiftdspyError as exc:
            output.error(str(exc))
            raise typer.Exit(code_for_error(exc)) from None


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


def package_version() -> str:
    """liftdspy's version from the installed package's metadata (the source's if not installed)."""
    try:
        return metadata.version("liftdspy")
    except metadata.PackageNotFoundError:
        return liftdspy.__version__


def _print_version(value: bool) -> None:
    if value:
        output.print_text(f"liftdspy {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Show every log record (DEBUG), library output and progress bar on the terminal.",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print liftdspy's version and exit.",
    ),
) -> None:
    logs.setup(verbose)
    ctx.call_on_close(logs.teardown)


@app.command()
def version() -> None:
    """Print liftdspy's version."""
    output.print_text(package_version())


def main() -> None:
    app()
