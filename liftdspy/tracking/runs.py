"""Find liftdspy experiment runs in an MLflow store by run id, run name or `latest`.

`latest` is the most recently started liftdspy experiment run (tag `liftdspy.role=experiment`)
in any experiment of the store; candidate child runs are never picked.
"""

from __future__ import annotations

import logging
import re

from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from liftdspy.errors import LiftdspyError
from liftdspy.redaction import redact_url
from liftdspy.tracking.layout import EXPERIMENT_ROLE, ROLE_TAG

logger = logging.getLogger(__name__)

LATEST = "latest"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class RunLookupError(LiftdspyError, LookupError):
    """A run named on the command line is not in the store, or lacks what a comparison needs."""


def _experiment_ids(client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]


def _experiment_runs(client: MlflowClient, extra_filter: str = "", max_results: int = 1000):
    ids = _experiment_ids(client)
    if not ids:
        return []
    clause = f"tags.`{ROLE_TAG}` = '{EXPERIMENT_ROLE}'"
    if extra_filter:
        clause = f"{clause} and {extra_filter}"
    return client.search_runs(
        ids,
        filter_string=clause,
        run_view_type=ViewType.ACTIVE_ONLY,
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )


def _quoted(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise RunLookupError(f"run name {value!r} holds both quote characters; use its run id")


def resolve_run(client: MlflowClient, reference: str, tracking_uri: str) -> Run:
    """The run `reference` names: a run id, a run name, or `latest`.

    A name shared by several experiment runs resolves to the most recent one (logged).
    """
    if reference == LATEST:
        runs = _experiment_runs(client, max_results=1)
        if not runs:
            raise RunLookupError(
                f"'latest': no liftdspy experiment run (tag {ROLE_TAG}={EXPERIMENT_ROLE}) "
                f"in {redact_url(tracking_uri)}; run `liftdspy run EXPERIMENT.yaml` first "
                "or pass --tracking-uri"
            )
        return runs[0]
    if _RUN_ID.match(reference):
        try:
            return client.get_run(reference)
        except MlflowException:
            logger.debug(
                "%s is not a run id in %s; trying it as a run name",
                reference,
                redact_url(tracking_uri),
            )
    runs = _experiment_runs(client, f"attributes.run_name = {_quoted(reference)}")
    if not runs:
        raise RunLookupError(
            f"no liftdspy experiment run with id or name {reference!r} in "
            f"{redact_url(tracking_uri)}"
        )
    if len(runs) > 1:
        logger.warning(
            "%d runs are named %r; using the most recent (%s)",
            len(runs),
            reference,
            runs[0].info.run_id,
        )
    return runs[0]
