"""`liftdspy server user add|password`, `liftdspy server grant|revoke`: the team server's users
and their per-experiment permissions, as the server's admin (MLflow's `AuthServiceClient`).

The admin's password comes from `$LIFTDSPY_SERVER_ADMIN_PASSWORD` (or `--admin-password-env`) or
`--admin-password-file`; a user's new password from `--password-file`, `$LIFTDSPY_USER_PASSWORD`
or a hidden prompt. No password is ever a command-line argument or printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from liftdspy.errors import LiftdspyError
from liftdspy.serving.mlflow_auth import (
    DEFAULT_ADMIN_PASSWORD_ENV,
    DEFAULT_ADMIN_USERNAME,
    read_secret,
)
from liftdspy.serving.mlflow_users import Credentials, add_user, set_password
from liftdspy.serving.mlflow_users import grant as grant_permission
from liftdspy.serving.mlflow_users import revoke as revoke_permission
from liftdspy.tracking import resolve_tracking_uri

console = Console(stderr=True)

USER_PASSWORD_ENV = "LIFTDSPY_USER_PASSWORD"
PERMISSIONS = ("READ", "EDIT", "MANAGE")

user_app = typer.Typer(no_args_is_help=True)

TRACKING_URI = typer.Option(
    None, "--tracking-uri", help="The server (default: $MLFLOW_TRACKING_URI)."
)
ADMIN_USERNAME = typer.Option(
    DEFAULT_ADMIN_USERNAME, "--admin-username", help="The server's admin user."
)
ADMIN_PASSWORD_ENV = typer.Option(
    DEFAULT_ADMIN_PASSWORD_ENV,
    "--admin-password-env",
    help="Environment variable holding the admin's password.",
)
ADMIN_PASSWORD_FILE = typer.Option(
    None, "--admin-password-file", help="Read the admin's password from this file instead."
)


def _fail(exc: LiftdspyError) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(code=1)


def _server(tracking_uri: str | None) -> str:
    uri = resolve_tracking_uri(tracking_uri)
    if not uri.startswith(("http://", "https://")):
        console.print(
            f"[red]error:[/red] {escape(uri)} is not a tracking server: pass --tracking-uri "
            "http://HOST:PORT or set MLFLOW_TRACKING_URI to the `liftdspy server` address"
        )
        raise typer.Exit(code=2)
    return uri


def _admin(username: str, env: str, file: Path | None) -> Credentials:
    password = read_secret(
        f"the admin password of {username!r}", env=None if file else env, file=file
    )
    return Credentials(username, password)


def _new_password(username: str, file: Path | None) -> str:
    if file is not None or os.environ.get(USER_PASSWORD_ENV):
        return read_secret(
            f"the password for {username!r}", env=None if file else USER_PASSWORD_ENV, file=file
        )
    if not sys.stdin.isatty():
        raise typer.BadParameter(
            f"no password for {username!r}: pass --password-file or set ${USER_PASSWORD_ENV}",
            param_hint="--password-file",
        )
    return typer.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="The new user's name."),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        help=f"Read the new user's password from this file (else ${USER_PASSWORD_ENV}, else "
        "a hidden prompt).",
    ),
    tracking_uri: str | None = TRACKING_URI,
    admin_username: str = ADMIN_USERNAME,
    admin_password_env: str = ADMIN_PASSWORD_ENV,
    admin_password_file: Path | None = ADMIN_PASSWORD_FILE,
) -> None:
    """Add a user to the team server (it gets the server's default permission: READ)."""
    url = _server(tracking_uri)
    try:
        admin = _admin(admin_username, admin_password_env, admin_password_file)
        add_user(url, admin, username, _new_password(username, password_file))
    except LiftdspyError as exc:
        raise _fail(exc) from None
    console.print(
        f"added {escape(username)}: it logs in with MLFLOW_TRACKING_USERNAME={escape(username)} "
        "and MLFLOW_TRACKING_PASSWORD; grant it experiments with `liftdspy server grant`"
    )


@user_app.command("password")
def user_password(
    username: str = typer.Argument(..., help="The user (the admin included)."),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        help=f"Read the new password from this file (else ${USER_PASSWORD_ENV}, else a prompt).",
    ),
    tracking_uri: str | None = TRACKING_URI,
    admin_username: str = ADMIN_USERNAME,
    admin_password_env: str = ADMIN_PASSWORD_ENV,
    admin_password_file: Path | None = ADMIN_PASSWORD_FILE,
) -> None:
    """Change a user's password."""
    url = _server(tracking_uri)
    try:
        admin = _admin(admin_username, admin_password_env, admin_password_file)
        set_password(url, admin, username, _new_password(username, password_file))
    except LiftdspyError as exc:
        raise _fail(exc) from None
    console.print(f"changed the password of {escape(username)}")


def grant(
    username: str = typer.Argument(..., help="The user."),
    experiment: str = typer.Argument(..., help="The experiment's name (or id)."),
    permission: str = typer.Option(
        ...,
        "--permission",
        help="READ (see runs), EDIT (also create, log to and change runs), MANAGE (also "
        "delete runs and the experiment, and grant others).",
    ),
    create: bool = typer.Option(
        False, "--create", help="Create the experiment if it does not exist yet."
    ),
    tracking_uri: str | None = TRACKING_URI,
    admin_username: str = ADMIN_USERNAME,
    admin_password_env: str = ADMIN_PASSWORD_ENV,
    admin_password_file: Path | None = ADMIN_PASSWORD_FILE,
) -> None:
    """Give a user READ, EDIT or MANAGE on one experiment."""
    level = permission.upper()
    if level not in PERMISSIONS:
        raise typer.BadParameter(
            f"{permission!r}: one of {', '.join(PERMISSIONS)}", param_hint="--permission"
        )
    url = _server(tracking_uri)
    try:
        admin = _admin(admin_username, admin_password_env, admin_password_file)
        experiment_id, created = grant_permission(
            url, admin, username, experiment, level, create=create
        )
    except LiftdspyError as exc:
        raise _fail(exc) from None
    made = " (created)" if created else ""
    console.print(
        f"{escape(username)}: {level} on experiment {escape(experiment)!r} "
        f"(id {experiment_id}){made}"
    )


def revoke(
    username: str = typer.Argument(..., help="The user."),
    experiment: str = typer.Argument(..., help="The experiment's name (or id)."),
    tracking_uri: str | None = TRACKING_URI,
    admin_username: str = ADMIN_USERNAME,
    admin_password_env: str = ADMIN_PASSWORD_ENV,
    admin_password_file: Path | None = ADMIN_PASSWORD_FILE,
) -> None:
    """Remove a user's grant on one experiment (the server's default permission applies again)."""
    url = _server(tracking_uri)
    try:
        admin = _admin(admin_username, admin_password_env, admin_password_file)
        experiment_id = revoke_permission(url, admin, username, experiment)
    except LiftdspyError as exc:
        raise _fail(exc) from None
    console.print(f"{escape(username)}: grant on experiment {experiment_id} removed")
