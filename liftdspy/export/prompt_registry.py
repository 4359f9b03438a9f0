"""Register a prompt pack's predictors in MLflow's Prompt Registry (`mlflow.genai`).

Each predictor becomes one chat prompt named `<prefix>.<predictor>`, whose template is the
pack's message list (MLflow uses the same `{{input}}` placeholders), with the response format
and sampling parameters attached. Registering again adds a new version.
"""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel

from liftdspy.runtime.pack import PromptPack
from liftdspy.tracking.layout import PROGRAM_TAG, SOURCE_RUN_ID_TAG

logger = logging.getLogger(__name__)

_NAME_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


class RegisteredPrompt(BaseModel):
    predictor: str
    name: str
    version: int
    uri: str


def prompt_name(prefix: str, predictor: str) -> str:
    """A registry-safe name: letters, digits, '-', '_', '.' only."""
    return _NAME_ALLOWED.sub("_", f"{prefix}.{predictor}")


def register_prompts(
    pack: PromptPack,
    name_prefix: str,
    *,
    source_run_id: str | None = None,
    commit_message: str | None = None,
) -> list[RegisteredPrompt]:
    """Register every predictor of `pack` (uses the current MLflow tracking URI)."""
    import mlflow.genai

    registered = []
    for prompt in pack.predictors:
        tags = {
            "liftdspy.predictor": prompt.name,
            "liftdspy.prompt_pack_format": pack.format_version,
        }
        if pack.program:
            tags[PROGRAM_TAG] = pack.program
        if source_run_id:
            tags[SOURCE_RUN_ID_TAG] = source_run_id
        model_config = prompt.sampling.body()
        if pack.model is not None:
            model_config["model_name"] = pack.model.model
        version = mlflow.genai.register_prompt(
            name=prompt_name(name_prefix, prompt.name),
            template=[message.model_dump() for message in prompt.messages],
            commit_message=commit_message or f"liftdspy export of {pack.program or 'program'}",
            tags=tags,
            response_format=prompt.response_format,
            model_config=model_config or None,
        )
        logger.info("registered prompt %s version %s", version.name, version.version)
        registered.append(
            RegisteredPrompt(
                predictor=prompt.name,
                name=version.name,
                version=int(version.version),
                uri=f"prompts:/{version.name}/{version.version}",
            )
        )
    return registered
