"""Write an exported program: `program.json`, the prompt pack, plain-text prompts, a manifest.

programs/NAME/
  manifest.json          what is here (files with sha256), program name, versions
  program.json           compiled.save() - load with build_program(...).load(path)
  prompt_pack.json       PromptPack (format 1) - what liftdspy.runtime runs
  prompts/<predictor>.system.txt  system message
  prompts/<predictor>.user.txt    last user message, with {{input}} placeholders
  prompts/<predictor>.chat.txt    the whole message sequence (demos included)
  lm_config.json         the program's LM config, redacted (`liftdspy.export.lm_config`)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict, Field

import liftdspy
from liftdspy.export.lm_config import LM_CONFIG_FILE, redacted_lm_config
from liftdspy.export.prompt_pack import ExportError, build_prompt_pack
from liftdspy.lm.config import LMConfig
from liftdspy.lm.recorder import RecorderMode
from liftdspy.runtime.pack import PACK_FILE, ModelTarget, PredictorPrompt, PromptPack
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
PROGRAM_FILE = "program.json"
PROMPTS_DIR = "prompts"


class ExportedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Relative to the export directory, '/'-separated")
    sha256: str
    bytes: int


class ExportManifest(BaseModel):
    """What an export directory holds and how to rebuild the program from it."""

    model_config = ConfigDict(extra="forbid")

    format_version: Version = "1"
    program: str | None = Field(None, description="Registry name for build_program()")
    predictor_kind: str | None = None
    program_options: dict[str, Any] = Field(
        default_factory=dict, description="Extra build_program() options, e.g. repair_rounds"
    )
    predictors: list[str]
    model: ModelTarget | None = None
    source_run_id: str | None = Field(None, description="The MLflow run the program came from")
    lm_config: str | None = Field(
        None, description="The file holding the program's LM config, redacted (lm_config.json)"
    )
    created_at: str
    versions: dict[str, str]
    files: list[ExportedFile]


def chat_text(prompt: PredictorPrompt) -> str:
    """All messages of a predictor as plain text, one `=== role ===` header per message."""
    return "\n\n".join(f"=== {m.role} ===\n{m.content}" for m in prompt.messages) + "\n"


def _write(out_dir: Path, relative: str, text: str, written: list[ExportedFile]) -> None:
    path = out_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(data)
    written.append(
        ExportedFile(path=relative, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    )


def _check_no_secret(out_dir: Path, files: list[ExportedFile], key_env: str | None) -> None:
    secret = os.environ.get(key_env) if key_env else None
    if not secret or len(secret) < 8:
        return
    for file in files:
        if secret in (out_dir / file.path).read_text(encoding="utf-8"):
            (out_dir / file.path).unlink()
            raise ExportError(
                f"{out_dir / file.path}: contains the value of ${key_env}; file removed"
            )


def write_export(
    program: dspy.Module,
    out_dir: Path,
    *,
    lm_config: LMConfig | None = None,
    program_name: str | None = None,
    predictor: str | None = None,
    program_options: dict[str, Any] | None = None,
    source_run_id: str | None = None,
    recorder_mode: RecorderMode | None = None,
) -> ExportManifest:
    """Export `program` into `out_dir` (created; files of the same name overwritten).

    `program_name`, `predictor` and `program_options` are how the caller built the program
    (`build_program(program_name, predictor, **program_options)`); the manifest records them so
    `load_exported_program` can rebuild it. Without a name the export has prompts but names no
    program to rebuild. `recorder_mode` is the experiment file's own recorder mode, when known
    (`liftdspy.export.lm_config`: what the exported LM config's recorder says)."""
    from liftdspy.programs.registry import program_spec

    out_dir = Path(out_dir)
    options = dict(program_options or {})
    if program_name is not None:
        options = program_spec(program_name).resolve_options(options)  # defaults; unknown refused
    out_dir.mkdir(parents=True, exist_ok=True)
    # Everything below sees the LM config without credentials (the pack names its endpoint too).
    exported_lm = (
        redacted_lm_config(lm_config, file_mode=recorder_mode) if lm_config is not None else None
    )
    safe_lm = exported_lm.lm if exported_lm is not None else None
    pack = build_prompt_pack(
        program,
        lm_config=safe_lm,
        program_name=program_name,
        predictor_kind=predictor,
        adapter=options.get("adapter"),
    )
    written: list[ExportedFile] = []

    program.save(str(out_dir / PROGRAM_FILE))
    program_bytes = (out_dir / PROGRAM_FILE).read_bytes()
    written.append(
        ExportedFile(
            path=PROGRAM_FILE,
            sha256=hashlib.sha256(program_bytes).hexdigest(),
            bytes=len(program_bytes),
        )
    )
    _write(out_dir, PACK_FILE, pack.model_dump_json(indent=2) + "\n", written)
    for prompt in pack.predictors:
        stem = f"{PROMPTS_DIR}/{prompt.file_stem()}"
        system = next((m.content for m in prompt.messages if m.role == "system"), "")
        _write(out_dir, f"{stem}.system.txt", system + "\n", written)
        _write(out_dir, f"{stem}.user.txt", prompt.messages[-1].content + "\n", written)
        _write(out_dir, f"{stem}.chat.txt", chat_text(prompt), written)
    if exported_lm is not None:
        _write(out_dir, LM_CONFIG_FILE, exported_lm.model_dump_json(indent=2) + "\n", written)
    elif (out_dir / LM_CONFIG_FILE).is_file():
        (out_dir / LM_CONFIG_FILE).unlink()  # an earlier export's LM is not this program's
    _check_no_secret(out_dir, written, lm_config.api_key_env if lm_config else None)

    manifest = ExportManifest(
        program=program_name,
        predictor_kind=predictor,
        program_options=options,
        predictors=[prompt.name for prompt in pack.predictors],
        model=pack.model,
        source_run_id=source_run_id,
        lm_config=LM_CONFIG_FILE if exported_lm is not None else None,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions={
            "liftdspy": liftdspy.__version__,
            "dspy": dspy.__version__,
            "python": platform.python_version(),
            "prompt_pack": pack.format_version,
        },
        files=written,
    )
    (out_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    logger.info("exported %s (%d predictors) to %s", program_name, len(pack.predictors), out_dir)
    return manifest


def read_manifest(out_dir: Path) -> ExportManifest:
    path = Path(out_dir) / MANIFEST_FILE
    return ExportManifest.model_validate_json(path.read_text(encoding="utf-8"))


def load_exported_program(out_dir: Path) -> dspy.Module:
    """Rebuild the program named in the manifest and load `program.json` into it."""
    from liftdspy.programs import build_program

    manifest = read_manifest(out_dir)
    if manifest.program is None:
        raise ExportError(f"{out_dir / MANIFEST_FILE}: names no program to rebuild")
    program = build_program(
        manifest.program, manifest.predictor_kind or "predict", **manifest.program_options
    )
    program.load(str(Path(out_dir) / PROGRAM_FILE))
    return program


__all__ = [
    "ExportManifest",
    "ExportedFile",
    "PromptPack",
    "load_exported_program",
    "read_manifest",
    "write_export",
]
