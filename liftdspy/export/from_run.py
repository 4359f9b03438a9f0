"""Export the compiled program of an MLflow experiment run (as logged by the experiment runner).

The run is read as a `RunRecord`: it must carry the artifact `program/program.json`
(`compiled.save()`) and its resolved config `config/resolved.json` (every liftdspy experiment run
logs both), which says the program (`program.name`, `predictor`, `repair_rounds`) and the LM.
The experiment file as given (`config/<file>.yaml`, logged by `liftdspy run`) says the recorder
mode the export's LM config keeps (`liftdspy.export.lm_config`: not the run's `--recorder`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from liftdspy.errors import LiftdspyError
from liftdspy.export.writer import ExportManifest, write_export
from liftdspy.lm.config import LMConfig
from liftdspy.lm.recorder import RecorderMode
from liftdspy.tracking.layout import CONFIG_DIR, PROGRAM_ARTIFACT

if TYPE_CHECKING:
    import dspy

logger = logging.getLogger(__name__)


class RunExportError(LiftdspyError, ValueError):
    """A run that cannot be exported: unknown id, no program artifact, no resolved config."""


class RunProgram(BaseModel):
    """What the run says about its program."""

    run_id: str
    name: str
    predictor: str
    options: dict[str, Any]
    lm: LMConfig | None
    file_recorder_mode: RecorderMode | None = None  # the experiment file's own, when logged


def _client(tracking_uri: str | None):
    from mlflow.tracking import MlflowClient

    from liftdspy.tracking import resolve_tracking_uri

    return MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))


def resolve_run_id(client, run: str) -> str:
    """The id of the run `run` names: a run id, a run name, or `latest` (the most recent
    liftdspy experiment run)."""
    from liftdspy.tracking.runs import RunLookupError, resolve_run

    try:
        return resolve_run(client, run, client.tracking_uri).info.run_id
    except RunLookupError as exc:
        raise RunExportError(str(exc)) from None


def _file_recorder_mode(client, run_id: str, work_dir: Path) -> RecorderMode | None:
    """The recorder mode of the experiment file the run logged under `config/` (None: none)."""
    from liftdspy.export.lm_config import file_recorder_mode

    logged = client.list_artifacts(run_id, CONFIG_DIR)
    files = sorted(a.path for a in logged if not a.is_dir and a.path.endswith((".yaml", ".yml")))
    if not files:
        return None
    local = client.download_artifacts(run_id, files[0], str(work_dir))
    return file_recorder_mode(Path(local).read_text(encoding="utf-8"))


def read_run_program(client, run_id: str, work_dir: Path) -> tuple[RunProgram, Path]:
    """The run's program description (from its resolved config) and the downloaded
    `program.json`."""
    from liftdspy.tracking.run_record import RunRecordError, download_program, read_run

    try:
        record = read_run(run_id, client=client)
        program_file = download_program(record, work_dir, client=client)
        config = record.require_config()
    except RunRecordError as exc:
        raise RunExportError(str(exc)) from None
    program = config.program
    options = program.options()
    description = RunProgram(
        run_id=run_id,
        name=program.name,
        predictor=program.predictor,
        options=options,
        lm=config.lm,
        file_recorder_mode=_file_recorder_mode(client, run_id, work_dir),
    )
    return description, program_file


def rebuild_program(description: RunProgram, program_file: Path) -> dspy.Module:
    """The run's program: built from the registry as the run built it, its saved state loaded."""
    from liftdspy.programs import build_program

    run_id = description.run_id
    try:
        program = build_program(description.name, description.predictor, **description.options)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise RunExportError(f"run {run_id}: cannot rebuild the program: {exc}") from exc
    try:
        program.load(str(program_file))
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise RunExportError(
            f"run {run_id}: {PROGRAM_ARTIFACT} does not fit a {description.name!r} "
            f"program with predictor {description.predictor!r}: {exc}"
        ) from exc
    return program


def write_run_export(
    program: dspy.Module, description: RunProgram, out_dir: Path
) -> ExportManifest:
    """Export the run's rebuilt program, the manifest naming the run and how it was built."""
    return write_export(
        program,
        out_dir,
        lm_config=description.lm,
        program_name=description.name,
        predictor=description.predictor,
        program_options=description.options,
        source_run_id=description.run_id,
        recorder_mode=description.file_recorder_mode,
    )


def export_run(run: str, out_dir: Path, *, tracking_uri: str | None = None) -> ExportManifest:
    """Rebuild the run's program, load its saved state and write the export to `out_dir`."""
    client = _client(tracking_uri)
    run_id = resolve_run_id(client, run)
    with tempfile.TemporaryDirectory() as tmp:
        description, program_file = read_run_program(client, run_id, Path(tmp))
        program = rebuild_program(description, program_file)
    return write_run_export(program, description, out_dir)
