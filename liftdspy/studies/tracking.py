"""The study's MLflow parent run, and the cell runs already finished under it.

A study run is tagged `liftdspy.role=study`, `liftdspy.study=NAME` and the hash of what decides
its results; running the same study again resumes that run. Cell runs are its children, tagged
with the cell id and the hash of the cell's config.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.redaction import redact_url
from liftdspy.studies.cell_runner import CELL_HASH_TAG, CELL_TAG, STATUS_TAG, STUDY_TAG
from liftdspy.studies.results import CELL_ARTIFACT, CellResult
from liftdspy.tracking.layout import PARENT_RUN_TAG, ROLE_TAG, STUDY_ROLE

logger = logging.getLogger(__name__)

HASH_TAG = "liftdspy.study.hash"


class StudyLookupError(LiftdspyError, LookupError):
    """No study run by that name or id in the tracking store."""


def find_study_run(client: MlflowClient, name: str, identity: str | None = None) -> Run | None:
    """The most recent study run of `name` (with that identity hash, if given)."""
    experiments = [e.experiment_id for e in client.search_experiments(ViewType.ACTIVE_ONLY)]
    if not experiments:
        return None
    clause = f"tags.`{ROLE_TAG}` = '{STUDY_ROLE}' and tags.`{STUDY_TAG}` = '{name}'"
    if identity:
        clause += f" and tags.`{HASH_TAG}` = '{identity}'"
    runs = client.search_runs(experiments, clause, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def resolve_study_run(client: MlflowClient, study: str) -> Run:
    """A study run by run id or study name (the latest run of that name)."""
    if len(study) == 32 and all(c in "0123456789abcdef" for c in study):
        run = client.get_run(study)
        if run.data.tags.get(ROLE_TAG) != STUDY_ROLE:
            raise StudyLookupError(f"run {study} is not a study run")
        return run
    run = find_study_run(client, study)
    if run is None:
        raise StudyLookupError(
            f"no study named {study!r} in {redact_url(client.tracking_uri)}; run "
            "`liftdspy study run studies/NAME.yaml` first, or pass --tracking-uri"
        )
    return run


def cell_runs(client: MlflowClient, parent: Run) -> list[Run]:
    return client.search_runs(
        [parent.info.experiment_id],
        f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )


def load_cell_result(client: MlflowClient, run: Run) -> CellResult | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, CELL_ARTIFACT, tmp)
        except Exception:  # no artifact: the cell did not get to the end
            return None
        try:
            return CellResult.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
        except (ValidationError, json.JSONDecodeError) as exc:
            logger.warning("run %s: unreadable %s: %s", run.info.run_id, CELL_ARTIFACT, exc)
            return None


def finished_cells(client: MlflowClient, parent: Run) -> dict[str, CellResult]:
    """Finished cell results by cell id (the latest finished run of each cell)."""
    found: dict[str, CellResult] = {}
    for run in cell_runs(client, parent):
        tags = run.data.tags
        if CELL_TAG not in tags or tags.get(STATUS_TAG) != "finished":
            continue
        if run.info.status != "FINISHED":
            continue
        result = load_cell_result(client, run)
        if result is not None and result.cell_hash == tags.get(CELL_HASH_TAG):
            found[tags[CELL_TAG]] = result
    return found


def close_interrupted(client: MlflowClient, parent: Run) -> list[str]:
    """Mark cell runs left RUNNING by a killed worker as KILLED; their cells run again."""
    closed = []
    for run in cell_runs(client, parent):
        if run.info.status == "RUNNING" and CELL_TAG in run.data.tags:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.data.tags[CELL_TAG])
    return closed
