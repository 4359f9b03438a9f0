"""Export the compiled program of an MLflow experiment run (as logged by the experiment runner).

The run must carry the artifact `program/program.json` (`compiled.save()`) and the params
`program.name`, `program.predictor` (and `program.repair_rounds` for the pipeline). The LM config
comes from the `config/resolved.json` artifact, or else from the `lm.*` params.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.export.writer import ExportManifest, write_export
from liftdspy.lm.config import LMConfig

if TYPE_CHECKING:
    import dspy

logger = logging.getLogger(__name__)

PROGRAM_ARTIFACT = "program/program.json"
CONFIG_ARTIFACT = "config/resolved.json"


class RunExportError(LiftdspyError, ValueError):
    """A run that cannot be exported: unknown id, no program artifact, missing params."""


class RunProgram(BaseModel):
    """What the run says about its program."""

    run_id: str
    name: str
    predictor: str
    options: dict[str, Any]
    lm: LMConfig | None


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


def _download(client, run_id: str, artifact: str, dst: Path) -> Path | None:
    folder = artifact.rpartition("/")[0]
    listed = {item.path for item in client.list_artifacts(run_id, folder)}
    if artifact not in listed:
        return None
    return Path(client.download_artifacts(run_id, artifact, str(dst)))


def _lm_from_params(params: dict[str, str]) -> LMConfig | None:
    nested: dict[str, Any] = {}
    for key, value in params.items():
        # `version` is the Literal 1, which the string "1" does not satisfy; the rest coerce.
        if not key.startswith("lm.") or key == "lm.version" or value in ("", "None", "<redacted>"):
            continue
        target = nested
        *parents, leaf = key.removeprefix("lm.").split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    if not nested:
        return None
    return LMConfig.model_validate(nested)


def _options_from_params(run_id: str, params: dict[str, str]) -> dict[str, Any]:
    """The build options the run's program took, from its `program.<option>` params."""
    from liftdspy.programs.registry import ProgramError, program_spec

    logged = {k.removeprefix("program."): v for k, v in params.items() if k.startswith("program.")}
    try:
        return program_spec(params["program.name"]).parse_options(logged)
    except ProgramError as exc:
        raise RunExportError(f"run {run_id}: {exc}") from None


def read_run_program(client, run_id: str, work_dir: Path) -> tuple[RunProgram, Path]:
    """The run's program description and the downloaded `program.json`."""
    run = client.get_run(run_id)
    params = run.data.params
    program_file = _download(client, run_id, PROGRAM_ARTIFACT, work_dir)
    if program_file is None:
        raise RunExportError(
            f"run {run_id} has no {PROGRAM_ARTIFACT} artifact (did the compile phase finish?)"
        )
    missing = [key for key in ("program.name", "program.predictor") if not params.get(key)]
    if missing:
        raise RunExportError(f"run {run_id} lacks the params {missing}")
    options = _options_from_params(run_id, params)
    lm: LMConfig | None
    config_file = _download(client, run_id, CONFIG_ARTIFACT, work_dir)
    try:
        if config_file is not None:
            data = json.loads(config_file.read_text(encoding="utf-8"))
            lm = LMConfig.model_validate(data["lm"]) if data.get("lm") else None
        else:
            lm = _lm_from_params(params)
    except (ValidationError, KeyError, json.JSONDecodeError) as exc:
        raise RunExportError(f"run {run_id}: the LM config is not valid: {exc}") from exc
    description = RunProgram(
        run_id=run_id,
        name=params["program.name"],
        predictor=params["program.predictor"],
        options=options,
        lm=lm,
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
    )


def export_run(run: str, out_dir: Path, *, tracking_uri: str | None = None) -> ExportManifest:
    """Rebuild the run's program, load its saved state and write the export to `out_dir`."""
    client = _client(tracking_uri)
    run_id = resolve_run_id(client, run)
    with tempfile.TemporaryDirectory() as tmp:
        description, program_file = read_run_program(client, run_id, Path(tmp))
        program = rebuild_program(description, program_file)
    return write_run_export(program, description, out_dir)
