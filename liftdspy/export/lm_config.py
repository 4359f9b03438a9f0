"""The LM config an export carries (`programs/NAME/lm_config.json`), redacted.

`liftdspy evaluate programs/NAME --dataset D` runs the program on this LM when no `--lm` is
given. What is written is the program's `LMConfig` without credentials: values under secret-named
keys and credentials inside URLs (`?api_key=...`) become `<redacted>` (`liftdspy.redaction`),
userinfo (`user:token@`) is dropped; the API key itself is never in an `LMConfig` (only
`api_key_env`, the NAME of its variable). The recorder keeps its `name` (which recording
replays it) but not its `path` (a directory on the exporting machine).

The recorder `mode` is the one a later user of the export needs, not the one the exporting run
happened to use (`exported_recorder_mode`): the experiment file's own mode when the run logged
the file (`liftdspy run` logs it as `config/<file>.yaml`; `--recorder`/`--set` overrides are not
in it), else the run's mode; then `record` and `offline` become `replay`. `record` would
re-record every call live and `offline` would fail on any input outside the recording, while
`replay` reuses the recording the program was made with and records only what is new. `off`
and `replay` are kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liftdspy.export.prompt_pack import ExportError
from liftdspy.lm.config import LMConfig, RecorderConfig
from liftdspy.lm.recorder import RecorderMode
from liftdspy.redaction import REDACTED, redact_data
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

LM_CONFIG_FILE = "lm_config.json"


class ExportedLMConfig(BaseModel):
    """`lm_config.json`: the LM of an exported program. `--lm programs/NAME/lm_config.json` reads
    it like any file with an `lm:` section."""

    model_config = ConfigDict(extra="forbid")

    version: Version = "1"
    lm: LMConfig
    redacted: list[str] = Field(
        default_factory=list, description="Dotted keys whose value had a credential removed"
    )


def _changed_keys(before: object, after: object, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys: list[str] = []
        for key in before:
            keys += _changed_keys(before[key], after.get(key), f"{prefix}{key}.")
        return keys
    return [prefix.rstrip(".")] if before != after else []


def file_recorder_mode(text: str) -> RecorderMode | None:
    """The recorder mode an experiment file (YAML text) asks for: its `lm.recorder.mode`, the
    default when its `lm` sets none; None when the text has no readable `lm` section."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    lm = data.get("lm") if isinstance(data, dict) else None
    recorder = lm.get("recorder", {}) if isinstance(lm, dict) else None
    if not isinstance(recorder, dict):
        return None
    given = {"mode": recorder["mode"]} if "mode" in recorder else {}
    try:
        return RecorderConfig.model_validate(given).mode
    except ValidationError:
        return None


def exported_recorder_mode(
    run_mode: RecorderMode, file_mode: RecorderMode | None = None
) -> RecorderMode:
    """The mode the export's LM config says (see the module doc): the file's, else the run's;
    `record` and `offline` become `replay`."""
    mode = RecorderMode(file_mode if file_mode is not None else run_mode)
    return RecorderMode.REPLAY if mode in (RecorderMode.RECORD, RecorderMode.OFFLINE) else mode


def redacted_lm_config(
    config: LMConfig, *, file_mode: RecorderMode | None = None
) -> ExportedLMConfig:
    """`config` without credentials or machine-local paths, still a valid `LMConfig`; its
    recorder mode the one a user of the export needs (`exported_recorder_mode`; `file_mode`: the
    experiment file's own, when known)."""
    data = config.model_dump(mode="json")
    data["recorder"].pop("path", None)
    data["recorder"]["mode"] = exported_recorder_mode(config.recorder.mode, file_mode).value
    clean = redact_data(data)
    if isinstance(clean.get("base_url"), str):
        # LMConfig refuses userinfo in base_url: drop it rather than keep `<redacted>@`.
        clean["base_url"] = clean["base_url"].replace(f"{REDACTED}@", "", 1)
    redacted = _changed_keys(data, clean)
    if redacted:
        logger.warning("LM config of the export: credentials removed from %s", ", ".join(redacted))
    try:
        lm = LMConfig.model_validate(clean)
    except ValidationError as exc:
        raise ExportError(f"the LM config without its credentials is not valid: {exc}") from None
    return ExportedLMConfig(lm=lm, redacted=redacted)


def read_lm_config(export_dir: Path) -> LMConfig | None:
    """The LM config an export carries, or None for an export made before it carried one."""
    path = Path(export_dir) / LM_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return ExportedLMConfig.model_validate_json(path.read_text(encoding="utf-8")).lm
    except ValidationError as exc:
        raise ExportError(f"{path}: not a valid LM config: {exc}") from None
