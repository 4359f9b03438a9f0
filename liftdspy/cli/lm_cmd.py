"""`liftdspy lm ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="lm commands.", no_args_is_help=True)
