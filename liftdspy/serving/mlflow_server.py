"""The team's MLflow tracking server on PostgreSQL: the `mlflow server` command line, built once.

`liftdspy server` runs it; clients (experiments, studies, `compare`, `export`, `evaluate`,
`liftdspy ui`) reach it through `tracking.uri` / `MLFLOW_TRACKING_URI=http://HOST:PORT` and never
see the database.

The database password never appears on a command line, in a log or in a URI: the backend store
URI is given without it (`postgresql://mlflow@db.example:5432/mlflow`) and the password is read
from the environment variable named by `password_env` and handed to the server as `PGPASSWORD`,
which libpq (psycopg2) reads when the URI has none. A URI that carries a password is refused.

The server runs MLflow's basic-auth app (`liftdspy.serving.mlflow_auth`): clients authenticate
with `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`. `auth=None` (`liftdspy server
--no-auth`) is accepted only on a loopback address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from liftdspy.errors import LiftdspyError
from liftdspy.serving.mlflow_auth import MLFLOW_ADMIN_ENV, ServerAuthConfig, auth_files
from liftdspy.versioning import Version

DEFAULT_PASSWORD_ENV = "LIFTDSPY_DB_PASSWORD"
_SCHEMES = ("postgresql", "postgresql+psycopg2", "postgres")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class TrackingServerError(LiftdspyError, ValueError):
    """The server cannot be started as configured; the message names the setting."""


def redact_db_uri(uri: str) -> str:
    """The URI with any password replaced by `***` (user, host, port, database kept)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_backend_store_uri(uri: str) -> str:
    """A PostgreSQL URI without a password, normalised to SQLAlchemy's `postgresql://` scheme."""
    parts = urlsplit(uri)
    if parts.scheme not in _SCHEMES:
        raise TrackingServerError(
            f"--backend-store-uri must be a postgresql://USER@HOST:PORT/DB URI, got scheme "
            f"{parts.scheme or '(none)'!r} (for a local SQLite store use `liftdspy ui`)"
        )
    if parts.password is not None:
        raise TrackingServerError(
            f"--backend-store-uri {redact_db_uri(uri)} carries a password; remove it and put the "
            f"password in the environment variable named by --password-env "
            f"(default {DEFAULT_PASSWORD_ENV})"
        )
    if not parts.hostname:
        raise TrackingServerError(f"--backend-store-uri {uri} names no host")
    if not parts.path.strip("/"):
        raise TrackingServerError(f"--backend-store-uri {uri} names no database (…/DBNAME)")
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


class TrackingServerConfig(BaseModel):
    """Everything `mlflow server` needs for the team store, validated."""

    # A refused URI may carry a password: errors must not echo the input.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    version: Version = "1"
    backend_store_uri: str
    artifacts_destination: Path
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1)
    password_env: str = DEFAULT_PASSWORD_ENV
    allowed_hosts: str | None = Field(
        default=None, description="MLflow's --allowed-hosts when serving beyond localhost."
    )
    auth: ServerAuthConfig | None = Field(
        default_factory=ServerAuthConfig,
        description="MLflow's basic-auth app; None only on a loopback address.",
    )

    @field_validator("backend_store_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return check_backend_store_uri(value)

    @model_validator(mode="after")
    def _auth(self) -> TrackingServerConfig:
        if self.auth is None and not is_loopback(self.host):
            raise ValueError(
                f"--no-auth with --host {self.host}: a server without authentication must stay "
                "on a loopback address (127.0.0.1); anyone who reaches it could write or delete "
                "runs"
            )
        if self.auth is not None and self.auth.database_uri is not None:
            check_backend_store_uri(self.auth.database_uri)
        return self

    @property
    def auth_database_uri(self) -> str:
        """The user store's URI (the tracking database unless `auth.database_uri` says)."""
        if self.auth is not None and self.auth.database_uri:
            return check_backend_store_uri(self.auth.database_uri)
        return self.backend_store_uri

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"password_env must be an environment variable NAME, got {value!r}")
        return value

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerCommand(BaseModel):
    """argv to exec (no shell) plus environment additions (may hold the password: not shown)
    and the caller's variables the server must not inherit."""

    model_config = ConfigDict(frozen=True)

    argv: tuple[str, ...]
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    unset: tuple[str, ...] = ()

    def display(self) -> str:
        return shlex.join(self.argv)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The server's environment: `base` without `unset`, plus `env`."""
        return {
            **{k: v for k, v in base.items() if k not in self.unset},
            **self.env,
        }


def build_mlflow_server(
    config: TrackingServerConfig,
    environ: Mapping[str, str] | None = None,
    *,
    python: str = sys.executable,
) -> ServerCommand:
    """`python -m mlflow server ...` for `config`; the password travels as PGPASSWORD."""
    environ = os.environ if environ is None else environ
    password = environ.get(config.password_env)
    if not password:
        raise TrackingServerError(
            f"no database password: the environment variable {config.password_env} is empty or "
            "unset (set it, or name another with --password-env)"
        )
    argv = [
        python,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        config.backend_store_uri,
        "--artifacts-destination",
        str(config.artifacts_destination.resolve()),
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--workers",
        str(config.workers),
    ]
    if config.allowed_hosts:
        argv += ["--allowed-hosts", config.allowed_hosts]
    env = {
        "PGPASSWORD": password,
        # MLflow imports LiteLLM, which fetches a price table at import time without this.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    unset: tuple[str, ...] = (config.password_env,)  # it travels as PGPASSWORD
    if config.auth is not None:
        config.auth.admin_password(environ)  # refused here, before anything starts
        argv += ["--app-name", "basic-auth"]
        # The ini holds the admin settings: MLflow's env overrides and ours stay out.
        unset += (*MLFLOW_ADMIN_ENV, config.auth.admin_password_env)
    return ServerCommand(argv=tuple(argv), env=env, unset=unset)


@contextlib.contextmanager
def prepared_server(
    config: TrackingServerConfig,
    environ: Mapping[str, str] | None = None,
    *,
    python: str = sys.executable,
) -> Iterator[ServerCommand]:
    """`build_mlflow_server`, with the basic-auth ini written (0600, private directory) for as
    long as the block runs, and its path and the Flask secret key in the command's env."""
    environ = os.environ if environ is None else environ
    command = build_mlflow_server(config, environ, python=python)
    if config.auth is None:
        yield command
        return
    with auth_files(config.auth, config.auth_database_uri, environ) as auth_env:
        yield command.model_copy(update={"env": {**command.env, **auth_env}})
