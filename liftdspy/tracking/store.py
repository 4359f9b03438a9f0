"""Where MLflow writes: a local SQLite store in the project by default, any URI by config/env."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liftdspy.redaction import REDACTED, is_secret_key, redact_text, redact_url

DEFAULT_DB = Path("mlflow.db")
DEFAULT_ARTIFACTS_DIR = Path("mlartifacts")
MAX_PARAM_CHARS = 6000
SQLITE_PREFIX = "sqlite:///"
# MLflow prints "View run ... at: <tracking URI>/#/..." when a run ends, credentials and all.
SUPPRESS_RUN_LINKS_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """`uri`, else `$MLFLOW_TRACKING_URI`, else `sqlite:///<cwd>/mlflow.db`."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"{SQLITE_PREFIX}{DEFAULT_DB.resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store (as written: relative paths stay relative),
    None for any other store."""
    return Path(uri.removeprefix(SQLITE_PREFIX)) if uri.startswith(SQLITE_PREFIX) else None


def artifacts_dir(uri: str) -> Path:
    """Where a store's artifacts go, absolute: `mlartifacts/` beside a SQLite file (beside the
    path as written, a symlink not followed), else in the cwd. Runs (`configure_tracking`) and
    the UI server (`liftdspy ui`) both use it."""
    db_path = sqlite_path(uri)
    folder = db_path.parent if db_path is not None else Path()
    return (folder / DEFAULT_ARTIFACTS_DIR).resolve()


def configure_tracking(uri: str | None, experiment: str) -> str:
    """Point MLflow at the store and make sure `experiment` exists; returns its id.

    With the default SQLite store, artifacts go to `mlartifacts/` beside it. A URI with
    credentials (`http://USER:TOKEN@HOST`) turns off MLflow's run links on stdout (they would
    print it whole).
    """
    import mlflow

    resolved = resolve_tracking_uri(uri)
    if redact_url(resolved) != resolved:
        os.environ[SUPPRESS_RUN_LINKS_ENV] = "true"
    mlflow.set_tracking_uri(resolved)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        mlflow.set_experiment(experiment_id=found.experiment_id)
        return found.experiment_id
    artifact_location = (
        artifacts_dir(resolved).as_uri() if sqlite_path(resolved) is not None else None
    )
    try:
        experiment_id = mlflow.create_experiment(experiment, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException as exc:
        # Another process (a concurrent run, a study worker) created it since the lookup.
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        found = mlflow.get_experiment_by_name(experiment)
        if found is None:
            raise
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def flatten_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `{"a.b.c": "value"}` for `mlflow.log_params`, so runs of one experiment
    compare key by key in the UI. Values under secret keys (`api_key`, `token`, ... but not
    `max_tokens` or `api_key_env`) and credentials inside URLs are redacted; long values cut."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, f"{name}."))
            continue
        if is_secret_key(str(key)) and value not in (None, ""):
            text = REDACTED
        elif isinstance(value, list | tuple):
            text = ",".join(redact_text(str(v)) for v in value)
        else:
            text = "" if value is None else redact_text(str(value))
        out[name] = text[:MAX_PARAM_CHARS]
    return out
