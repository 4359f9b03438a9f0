"""Read the per-example reports of liftdspy experiment runs (runs are found by
`liftdspy.tracking.runs.resolve_run`)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from liftdspy.experiments.evaluation import EvaluationReport
from liftdspy.tracking.runs import RunLookupError

logger = logging.getLogger(__name__)


def load_report(client: MlflowClient, run: Run, which: str) -> EvaluationReport | None:
    """The run's `reports/<which>.json` artifact, or None when the run has none."""
    artifact = f"reports/{which}.json"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run.info.run_id, artifact, tmp)
        except (MlflowException, OSError) as exc:
            logger.debug("%s: no %s: %s", run.info.run_id, artifact, exc)
            return None
        text = Path(local).read_text(encoding="utf-8")
    try:
        return EvaluationReport.model_validate(json.loads(text))
    except ValueError as exc:
        raise RunLookupError(
            f"run {run.info.run_name!r} ({run.info.run_id}): {artifact} is not an evaluation "
            f"report: {exc}"
        ) from exc


def require_report(client: MlflowClient, run: Run, which: str) -> EvaluationReport:
    report = load_report(client, run, which)
    if report is None:
        raise RunLookupError(
            f"run {run.info.run_name!r} ({run.info.run_id}, status {run.info.status}) has no "
            f"reports/{which}.json artifact; it may have stopped before the {which} evaluation "
            f"(try --which baseline) or not be a liftdspy experiment run"
        )
    return report
