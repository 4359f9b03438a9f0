"""`liftdspy modal ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="modal commands.", no_args_is_help=True)
