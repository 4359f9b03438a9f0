"""`liftdspy server`: the team's MLflow tracking server on PostgreSQL.

Registered in `liftdspy/cli/__init__.py` as a single command: `app.command("server")(server)`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console

from liftdspy.cli.server_process import (
    raise_keyboard_interrupt,
    stop_process,
)
from liftdspy.serving.health import wait_until_ready
from liftdspy.serving.mlflow_server import (
    DEFAULT_PASSWORD_ENV,
    TrackingServerConfig,
    TrackingServerError,
    build_mlflow_server,
)

console = Console(stderr=True)

READY_TIMEOUT_SECONDS = 240.0


def server(
    backend_store_uri: str = typer.Option(
        ...,
        "--backend-store-uri",
        help="postgresql://USER@HOST:PORT/DB, without the password (that comes from "
        "--password-env).",
    ),
    artifacts_destination: Path = typer.Option(
        ..., "--artifacts-destination", help="Directory where the server stores run artifacts."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep it local)."),
    port: int = typer.Option(5000, "--port", help="Port to serve on."),
    workers: int = typer.Option(2, "--workers", help="Server worker processes."),
    password_env: str = typer.Option(
        DEFAULT_PASSWORD_ENV,
        "--password-env",
        help="Environment variable holding the database password.",
    ),
    allowed_hosts: str | None = typer.Option(
        None, "--allowed-hosts", help="Host names clients may use (when not on 127.0.0.1)."
    ),
) -> None:
    """Run the team MLflow tracking server (PostgreSQL backend) until Ctrl-C."""
    try:
        config = TrackingServerConfig(
            backend_store_uri=backend_store_uri,
            artifacts_destination=artifacts_destination,
            host=host,
            port=port,
            workers=workers,
            password_env=password_env,
            allowed_hosts=allowed_hosts,
        )
        command = build_mlflow_server(config)
    except (TrackingServerError, ValidationError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    config.artifacts_destination.mkdir(parents=True, exist_ok=True)
    console.print(
        f"starting MLflow on {config.backend_store_uri} (password from ${config.password_env}), "
        f"artifacts in {config.artifacts_destination.resolve()}"
    )
    process = subprocess.Popen(list(command.argv), env={**os.environ, **command.env})
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        if not wait_until_ready(f"{config.url}/health", process, READY_TIMEOUT_SECONDS):
            code = process.poll()
            reason = f"exited with code {code}" if code is not None else "did not answer"
            console.print(
                f"[red]mlflow server {reason} on {config.url}[/red]: is the database reachable "
                f"and the password in ${config.password_env} right? is port {port} free?"
            )
            raise typer.Exit(code=1)
        typer.echo(f"MLFLOW_TRACKING_URI={config.url}")
        console.print("set tracking.uri (or MLFLOW_TRACKING_URI) to that URL; Ctrl-C to stop")
        sys.stdout.flush()
        if process.wait() != 0:
            console.print(f"[red]mlflow server exited with code {process.returncode}[/red]")
            raise typer.Exit(code=1)
    except KeyboardInterrupt:
        console.print("stopping the MLflow server")
    finally:
        stop_process(process, grace_seconds=20)
