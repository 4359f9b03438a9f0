"""The LM config an export carries (`programs/NAME/lm_config.json`), redacted.

`liftdspy evaluate programs/NAME --dataset D` runs the program on this LM when no `--lm` is
given. What is written is the program's `LMConfig` without credentials: values under secret-named
keys and credentials inside URLs (`?api_key=...`) become `<redacted>` (`liftdspy.redaction`),
userinfo (`user:token@`) is dropped; the API key itself is never in an `LMConfig` (only
`api_key_env`, the NAME of its variable). The recorder keeps its `name` and `mode` (which
recording replays it) but not its `path` (a directory on the exporting machine).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liftdspy.export.prompt_pack import ExportError
from liftdspy.lm.config import LMConfig
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


def redacted_lm_config(config: LMConfig) -> ExportedLMConfig:
    """`config` without credentials or machine-local paths, still a valid `LMConfig`."""
    data = config.model_dump(mode="json")
    data["recorder"].pop("path", None)
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
