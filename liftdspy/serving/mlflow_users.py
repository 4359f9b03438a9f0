"""Users and per-experiment permissions on the team server, through MLflow's own auth client.

`mlflow.server.auth.client.AuthServiceClient` talks to the basic-auth app's REST API; it takes
its credentials where every MLflow client does (`MLFLOW_TRACKING_USERNAME` /
`MLFLOW_TRACKING_PASSWORD`).
`as_user` sets those two for the duration of one admin operation and restores the caller's
values, so the admin's identity is never mixed with the one the caller's shell logs runs as.
Nothing here logs or returns a password.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from liftdspy.errors import LiftdspyError
from liftdspy.redaction import redact_url
from liftdspy.serving.mlflow_auth import check_password

logger = logging.getLogger(__name__)

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
GrantedPermission = Literal["READ", "EDIT", "MANAGE"]


class ServerUsersError(LiftdspyError, RuntimeError):
    """A user or permission operation the server refused; says which and what to do."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<redacted>)"


@contextlib.contextmanager
def as_user(credentials: Credentials) -> Iterator[None]:
    """MLflow's clients in this process authenticate as `credentials` inside the block."""
    saved = {name: os.environ.get(name) for name in (USERNAME_ENV, PASSWORD_ENV)}
    os.environ[USERNAME_ENV] = credentials.username
    os.environ[PASSWORD_ENV] = credentials.password
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _refused(exc: Exception, url: str, admin: Credentials, action: str) -> ServerUsersError:
    """The server's refusal as a `ServerUsersError` naming `action` and what to check."""
    from mlflow.exceptions import MlflowException

    status = exc.get_http_status_code() if isinstance(exc, MlflowException) else None
    where = redact_url(url)
    if status == 401:
        return ServerUsersError(
            f"{action}: {where} refused the admin credentials of {admin.username!r} (401); "
            "check the admin password (LIFTDSPY_SERVER_ADMIN_PASSWORD or --admin-password-file: "
            "the one the server's admin user was created with)"
        )
    if status == 403:
        return ServerUsersError(f"{action}: {admin.username!r} is not an admin on {where} (403)")
    message = exc.message if isinstance(exc, MlflowException) else str(exc)
    return ServerUsersError(f"{action} on {where}: {message}")


def _auth_client(url: str):
    from mlflow.server.auth.client import AuthServiceClient

    return AuthServiceClient(url)


def add_user(url: str, admin: Credentials, username: str, password: str) -> None:
    """Create `username` on the server at `url` (it then has the server's default permission)."""
    check_password(password, f"the password for {username!r}")
    from mlflow.exceptions import MlflowException

    with as_user(admin):
        try:
            _auth_client(url).create_user(username, password)
        except MlflowException as exc:
            raise _refused(exc, url, admin, f"adding user {username!r}") from None
    logger.info("user %r added on %s", username, redact_url(url))


def set_password(url: str, admin: Credentials, username: str, password: str) -> None:
    """Replace `username`'s password (the admin's own included)."""
    check_password(password, f"the new password for {username!r}")
    from mlflow.exceptions import MlflowException

    with as_user(admin):
        try:
            _auth_client(url).update_user_password(username, password)
        except MlflowException as exc:
            raise _refused(exc, url, admin, f"changing the password of {username!r}") from None


def _experiment_id(url: str, experiment: str, *, create: bool) -> tuple[str, bool]:
    """The id of the experiment named `experiment` (or with that id); created when asked."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        with contextlib.suppress(MlflowException):
            found = client.get_experiment(experiment)
    if found is not None:
        return found.experiment_id, False
    if not create:
        raise ServerUsersError(
            f"no experiment named {experiment!r} on {redact_url(url)}; pass --create to create "
            "it (owned by the admin), or grant after its first run"
        )
    return client.create_experiment(experiment), True


def grant(
    url: str,
    admin: Credentials,
    username: str,
    experiment: str,
    permission: GrantedPermission,
    *,
    create: bool = False,
) -> tuple[str, bool]:
    """Give `username` `permission` on `experiment` (a name, or an id); (experiment id, created).

    READ: see runs; EDIT: also create, log to and change runs; MANAGE: also delete runs and the
    experiment, and grant others."""
    from mlflow.exceptions import MlflowException

    with as_user(admin):
        try:
            experiment_id, created = _experiment_id(url, experiment, create=create)
            client = _auth_client(url)
            client.get_user(username)  # a clear error for an unknown user
            client.grant_user_permission(username, "experiment", experiment_id, permission)
        except MlflowException as exc:
            raise _refused(exc, url, admin, f"granting {permission} on {experiment!r}") from None
    logger.info(
        "%s may now %s experiment %r (%s) on %s",
        username,
        permission,
        experiment,
        experiment_id,
        redact_url(url),
    )
    return experiment_id, created


def revoke(url: str, admin: Credentials, username: str, experiment: str) -> str:
    """Remove `username`'s grant on `experiment`: the server's default permission applies again."""
    from mlflow.exceptions import MlflowException

    with as_user(admin):
        try:
            experiment_id, _ = _experiment_id(url, experiment, create=False)
            _auth_client(url).revoke_user_permission(username, "experiment", experiment_id)
        except MlflowException as exc:
            raise _refused(exc, url, admin, f"revoking {username!r} on {experiment!r}") from None
    return experiment_id
