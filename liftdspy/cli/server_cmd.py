"""`liftdspy server`: the team's MLflow tracking server on PostgreSQL, with MLflow's basic auth.

Registered in `liftdspy/cli/__init__.py` as a group: `app.add_typer(server_cmd.app, name="server")`.
`liftdspy server --backend-store-uri ...` runs the server; `liftdspy server user ...`,
`liftdspy server grant ...` and `liftdspy server revoke ...` manage its users
(`liftdspy/cli/server_users_cmd.py`).
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
from rich.markup import escape

from liftdspy.cli import server_users_cmd
from liftdspy.cli.server_process import (
    raise_keyboard_interrupt,
    stop_process,
)
from liftdspy.errors import LiftdspyError
from liftdspy.serving.health import wait_until_ready
from liftdspy.serving.mlflow_auth import (
    DEFAULT_ADMIN_PASSWORD_ENV,
    DEFAULT_ADMIN_USERNAME,
    DEFAULT_PERMISSION,
    ServerAuthConfig,
    login_accepted,
)
from liftdspy.serving.mlflow_server import (
    DEFAULT_PASSWORD_ENV,
    TrackingServerConfig,
    prepared_server,
)

console = Console(stderr=True)

READY_TIMEOUT_SECONDS = 240.0

app = typer.Typer(
    help="The team MLflow tracking server (PostgreSQL, MLflow's basic auth) and its users.",
    no_args_is_help=False,
)
app.add_typer(server_users_cmd.user_app, name="user", help="Add users, change passwords.")
app.command(name="grant")(server_users_cmd.grant)
app.command(name="revoke")(server_users_cmd.revoke)


@app.callback(invoke_without_command=True)
def server(
    ctx: typer.Context,
    backend_store_uri: str | None = typer.Option(
        None,
        "--backend-store-uri",
        help="postgresql://USER@HOST:PORT/DB, without the password (that comes from "
        "--password-env). Required to run the server.",
    ),
    artifacts_destination: Path | None = typer.Option(
        None,
        "--artifacts-destination",
        help="Directory where the server stores run artifacts. Required to run the server.",
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
    admin_username: str = typer.Option(
        DEFAULT_ADMIN_USERNAME, "--admin-username", help="The admin user MLflow creates."
    ),
    admin_password_env: str = typer.Option(
        DEFAULT_ADMIN_PASSWORD_ENV,
        "--admin-password-env",
        help="Environment variable holding the admin's password (there is no password flag).",
    ),
    admin_password_file: Path | None = typer.Option(
        None,
        "--admin-password-file",
        help="Read the admin's password from this file (one line) instead.",
    ),
    default_permission: str = typer.Option(
        DEFAULT_PERMISSION,
        "--default-permission",
        help="What every user may do on experiments nobody granted them anything on: "
        "READ (default), EDIT, MANAGE or NO_PERMISSIONS.",
    ),
    auth_database_uri: str | None = typer.Option(
        None,
        "--auth-database-uri",
        help="postgresql://USER@HOST:PORT/DB for the user store (default: the tracking "
        "database). No password: PGPASSWORD serves both.",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="No authentication (refused unless --host is a loopback address)."
    ),
) -> None:
    """Run the team MLflow tracking server (PostgreSQL backend, basic auth) until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        flag
        for flag, value in (
            ("--backend-store-uri", backend_store_uri),
            ("--artifacts-destination", artifacts_destination),
        )
        if value is None
    ]
    if missing:
        console.print(f"[red]error:[/red] liftdspy server needs {' and '.join(missing)}")
        raise typer.Exit(code=2)
    try:
        auth = None
        if not no_auth:
            auth = ServerAuthConfig(
                admin_username=admin_username,
                admin_password_env=admin_password_env,
                admin_password_file=admin_password_file,
                default_permission=default_permission,
                database_uri=auth_database_uri,
            )
        config = TrackingServerConfig(
            backend_store_uri=backend_store_uri,
            artifacts_destination=artifacts_destination,
            host=host,
            port=port,
            workers=workers,
            password_env=password_env,
            allowed_hosts=allowed_hosts,
            auth=auth,
        )
        with prepared_server(config) as command:
            _serve(config, command)
    except (LiftdspyError, ValidationError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from None


def _serve(config: TrackingServerConfig, command) -> None:
    config.artifacts_destination.mkdir(parents=True, exist_ok=True)
    console.print(
        f"starting MLflow on {config.backend_store_uri} (password from ${config.password_env}), "
        f"artifacts in {config.artifacts_destination.resolve()}"
    )
    if config.auth is not None:
        console.print(escape(config.auth.describe()))
    else:
        console.print("[yellow]no authentication[/yellow]: anyone who reaches the port may write")
    process = subprocess.Popen(list(command.argv), env=command.environment(os.environ))
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        if not wait_until_ready(f"{config.url}/health", process, READY_TIMEOUT_SECONDS):
            code = process.poll()
            reason = f"exited with code {code}" if code is not None else "did not answer"
            console.print(
                f"[red]mlflow server {reason} on {config.url}[/red]: is the database reachable "
                f"and the password in ${config.password_env} right? is port {config.port} free?"
            )
            raise typer.Exit(code=1)
        typer.echo(f"MLFLOW_TRACKING_URI={config.url}")
        console.print("set tracking.uri (or MLFLOW_TRACKING_URI) to that URL; Ctrl-C to stop")
        if config.auth is not None:
            _check_admin_login(config)
            console.print(
                "clients log in with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD; add "
                "users with `liftdspy server user add`, permissions with `liftdspy server grant`"
            )
        sys.stdout.flush()
        if process.wait() != 0:
            console.print(f"[red]mlflow server exited with code {process.returncode}[/red]")
            raise typer.Exit(code=1)
    except KeyboardInterrupt:
        console.print("stopping the MLflow server")
    finally:
        stop_process(process, grace_seconds=20)


def _check_admin_login(config: TrackingServerConfig) -> None:
    """Warn when the admin password given is not the stored one (MLflow uses it only to create
    the admin user on an empty user store)."""
    auth = config.auth
    if not login_accepted(config.url, auth.admin_username, auth.admin_password()):
        console.print(
            f"[yellow]warning:[/yellow] the server refused {auth.admin_username!r} with the "
            f"password from {auth.admin_password_file or '$' + auth.admin_password_env}: the admin "
            "user existed already with another password (MLflow reads it only to create the "
            "admin). `liftdspy server user ...` needs the stored one; change it with "
            "`liftdspy server user password`."
        )
