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
# MLflow prints "View run ... at: <tracking URI>/#/..." when a run ends, credentials and all.
SUPPRESS_RUN_LINKS_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """`uri`, else `$MLFLOW_TRACKING_URI`, else `sqlite:///<cwd>/mlflow.db`."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{DEFAULT_DB.resolve()}"


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
    artifact_location = None
    if resolved.startswith("sqlite:///"):
        db_path = Path(resolved.removeprefix("sqlite:///"))
        artifact_location = (db_path.parent / DEFAULT_ARTIFACTS_DIR).resolve().as_uri()
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
