"""MLflow's basic-auth app for the team server: its settings, its admin secret, its config file.

`liftdspy server` runs `mlflow server --app-name basic-auth`, MLflow's own authentication: every
request but `/health` and the static files needs HTTP basic auth with a user of the server's
user store; a user gets `default_permission` (READ unless told otherwise) on every experiment
nobody granted them anything on, and the permissions an admin grants per experiment.

- **The admin's password** comes from the environment variable named by `admin_password_env`
  (default `LIFTDSPY_SERVER_ADMIN_PASSWORD`) or from a file (`admin_password_file`), never from a
  command line. MLflow reads it only to create the admin user the first time the server starts
  on an empty user store; afterwards the stored (hashed) password is the one that counts.
- **The config file** MLflow reads (`MLFLOW_AUTH_CONFIG_PATH`, an ini) holds that password, so it
  is written mode 0600 in a private (0700) temporary directory and deleted when the server stops.
- **The user store** (`database_uri`) is a PostgreSQL database, by default the tracking store's
  own (MLflow's auth tables `users`, `roles`, `role_permissions`, `user_role_assignments` and its
  `alembic_version_auth` sit beside the tracking tables; passwords are stored as salted hashes).
  Like the tracking store's URI it carries no password: libpq reads `PGPASSWORD`.
- **The Flask secret key** (`MLFLOW_FLASK_SERVER_SECRET_KEY`, for the CSRF token of MLflow's
  sign-up form) is the caller's if set, else random per server start.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import io
import os
import re
import secrets
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from liftdspy.errors import LiftdspyError
from liftdspy.serving.health import answers
from liftdspy.versioning import Version

DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD_ENV = "LIFTDSPY_SERVER_ADMIN_PASSWORD"
DEFAULT_PERMISSION = "READ"
# The admin password MLflow shipped in basic_auth.ini before 3.x (GHSA-gq3w-7jj3-x7gr): public.
MLFLOW_DEFAULT_ADMIN_PASSWORD = "password1234"
MIN_PASSWORD_LENGTH = 12  # MLflow's own rule (mlflow.utils.validation._validate_password)
# MLflow's environment overrides of the ini's admin settings: never inherited by the server.
MLFLOW_ADMIN_ENV = ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD")
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
CONFIG_PATH_ENV = "MLFLOW_AUTH_CONFIG_PATH"
INI_NAME = "basic_auth.ini"
AUTH_CACHE_TTL_SECONDS = 60

Permission = Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ServerAuthError(LiftdspyError, ValueError):
    """The server's authentication cannot be set up as configured; the message names the setting
    (and never holds a password)."""


def read_secret(
    what: str, *, env: str | None, file: Path | None, environ: Mapping[str, str] | None = None
) -> str:
    """A password from `file` (one line; a trailing newline is dropped) or else from the
    environment variable `env`; checked against MLflow's rules. `what` names it in errors."""
    environ = os.environ if environ is None else environ
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ServerAuthError(f"{what}: cannot read {file}: {exc.strerror}") from None
        source = f"the file {file}"
    elif env is not None:
        value = environ.get(env, "")
        source = f"${env}"
    else:
        raise ServerAuthError(f"{what}: name a file or an environment variable")
    check_password(value, f"{what} (from {source})")
    return value


def check_password(value: str, where: str) -> None:
    """Refuse an empty, short, multi-line or publicly known password (`where` names its source)."""
    if not value:
        raise ServerAuthError(f"{where} is empty or unset")
    if "\n" in value or "\r" in value:
        raise ServerAuthError(f"{where} spans several lines; put the password on one line")
    if value == MLFLOW_DEFAULT_ADMIN_PASSWORD:
        raise ServerAuthError(
            f"{where} is MLflow's old default admin password, which is public "
            "(GHSA-gq3w-7jj3-x7gr); choose another"
        )
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ServerAuthError(
            f"{where} is shorter than {MIN_PASSWORD_LENGTH} characters (MLflow's minimum)"
        )


class ServerAuthConfig(BaseModel):
    """How the team server authenticates (no secret in it: only where to read them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Version = "1"
    admin_username: str = DEFAULT_ADMIN_USERNAME
    admin_password_env: str = DEFAULT_ADMIN_PASSWORD_ENV
    admin_password_file: Path | None = None
    default_permission: Permission = DEFAULT_PERMISSION
    database_uri: str | None = Field(
        default=None,
        description="The user store (postgresql://USER@HOST:PORT/DB, no password); "
        "None: the tracking store's database.",
    )

    @field_validator("admin_username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value or value != value.strip() or ":" in value:
            raise ValueError(f"admin username {value!r}: non-empty, no spaces around, no ':'")
        return value

    @field_validator("admin_password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"admin_password_env must be an environment variable NAME: {value!r}")
        return value

    def admin_password(self, environ: Mapping[str, str] | None = None) -> str:
        return read_secret(
            f"the admin password of {self.admin_username!r}",
            env=None if self.admin_password_file else self.admin_password_env,
            file=self.admin_password_file,
            environ=environ,
        )

    def describe(self) -> str:
        """One line for the server's log: where the password comes from, never the password."""
        source = self.admin_password_file or f"${self.admin_password_env}"
        return (
            f"basic auth: admin {self.admin_username!r} (password from {source}), "
            f"users get {self.default_permission} on experiments nobody granted them"
        )


def auth_ini(config: ServerAuthConfig, database_uri: str, admin_password: str) -> str:
    """The text of MLflow's basic-auth ini for `config` (holds the admin password).

    MLflow reads it with configparser's default `%` interpolation and stripped values, so `%` is
    doubled and a password with spaces at either end (which would be cut) is refused."""
    if admin_password != admin_password.strip():
        raise ServerAuthError(
            f"the admin password of {config.admin_username!r} starts or ends with whitespace, "
            "which MLflow's config file would cut off; remove it"
        )
    parser = configparser.ConfigParser(interpolation=None)
    parser["mlflow"] = {
        "default_permission": config.default_permission,
        "database_uri": database_uri.replace("%", "%%"),
        "admin_username": config.admin_username.replace("%", "%%"),
        "admin_password": admin_password.replace("%", "%%"),
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access": "false",
        # MLflow checks the salted password hash on every request unless this cache is on; with
        # it, a changed password may still work for up to this long on the other workers.
        "auth_cache_ttl_seconds": str(AUTH_CACHE_TTL_SECONDS),
    }
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


@contextlib.contextmanager
def auth_files(
    config: ServerAuthConfig,
    database_uri: str,
    environ: Mapping[str, str] | None = None,
) -> Iterator[dict[str, str]]:
    """Write the ini (0600, in a fresh 0700 directory), yield the environment additions for
    `mlflow server --app-name basic-auth`, and delete the directory afterwards."""
    environ = os.environ if environ is None else environ
    password = config.admin_password(environ)
    text = auth_ini(config, database_uri, password)
    directory = Path(tempfile.mkdtemp(prefix="liftdspy-server-auth-"))  # mode 0700
    try:
        path = directory / INI_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield {
            CONFIG_PATH_ENV: str(path),
            SECRET_KEY_ENV: environ.get(SECRET_KEY_ENV) or secrets.token_urlsafe(32),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def login_accepted(url: str, username: str, password: str, timeout: float = 10.0) -> bool:
    """True when the server at `url` accepts `username`/`password` (`GET .../users/current`)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/2.0/mlflow/users/current",
        headers={"Authorization": f"Basic {token}"},
    )
    return answers(request, timeout=timeout)
