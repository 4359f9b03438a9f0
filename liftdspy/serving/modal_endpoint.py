"""Where the Modal deployment lives and how to reach it, without importing `modal`.

`ModalDeployment` is the one description of the deployment: read by `modal_app` (to build the
app), by `liftdspy modal ...` (to deploy it and print its URL) and by `modal_base_url` (where
`LMConfig(kind="modal")` and `liftdspy.lm.shortcuts.modal_lm` call it). Settings come from
environment variables so `modal deploy` and the container agree:

| variable                     | default           |
|------------------------------|-------------------|
| LIFTDSPY_MODAL_APP           | liftdspy-vllm     |
| LIFTDSPY_MODAL_PRESET        | qwen-coder-7b     |
| LIFTDSPY_MODAL_GPU           | the preset's GPU (L40S for 7B, H100 for 32B) |
| LIFTDSPY_MODAL_SECRET        | liftdspy-vllm     |
| LIFTDSPY_MODAL_VOLUME        | liftdspy-hf-cache |
| LIFTDSPY_MODAL_WORKSPACE     | (none; needed only to build the URL offline) |
| LIFTDSPY_MODAL_ENVIRONMENT   | (none = the workspace's default environment) |
| LIFTDSPY_MODAL_MIN_CONTAINERS | 0 (scale to zero when idle)  |
| LIFTDSPY_MODAL_MAX_CONTAINERS | 4                           |
| LIFTDSPY_MODAL_MAX_INPUTS    | 32 (concurrent requests per container) |
| LIFTDSPY_MODAL_SCALEDOWN_WINDOW | 600 (idle seconds before a container stops) |
| LIFTDSPY_MODAL_URL           | (none; clients: the `.../v1` URL `liftdspy modal url` prints) |

Scaling: Modal routes up to `max_inputs` concurrent requests to one container (vLLM batches them)
and starts another container when all are full, up to `max_containers`. An evaluation with
`num_threads: N` keeps N requests in flight, so it needs ceil(N / max_inputs) containers.

Modal's documented URL for a web function is
`https://<workspace>[-<environment>]--<app>-<function>.modal.run`; labels longer than 63
characters are shortened by Modal, so `modal.Function.get_web_url()` is the authority when
credentials are available (`liftdspy modal url`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liftdspy.errors import LiftdspyError
from liftdspy.serving.vllm_command import MODEL_PRESETS, VLLMServeConfig
from liftdspy.validation_errors import validation_problems
from liftdspy.versioning import Version

MODAL_URL_ENV = "LIFTDSPY_MODAL_URL"
FUNCTION_NAME = "serve"
VOLUME_MOUNT = "/models"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class ModalEndpointError(LiftdspyError, ValueError):
    """The endpoint cannot be determined; the message says which setting is missing."""


class ModalDeployment(BaseModel):
    """The Modal deployment of the vLLM server, as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Version = "1"
    app_name: str = "liftdspy-vllm"
    preset: str = "qwen-coder-7b"
    gpu: str | None = Field(default=None, description="Modal GPU type; None = the preset's.")
    secret_name: str = "liftdspy-vllm"
    volume_name: str = "liftdspy-hf-cache"
    workspace: str | None = None
    environment: str | None = None
    scaledown_window: int = Field(
        default=600, ge=2, le=3600, description="Idle seconds before shutdown (Modal: 2-3600)."
    )
    startup_timeout: int = Field(default=1200, ge=60, description="Seconds vLLM may take to load.")
    max_inputs: int = Field(
        default=32, ge=1, le=1000, description="Concurrent requests per container."
    )
    min_containers: int = Field(default=0, ge=0, description="Containers kept warm when idle.")
    max_containers: int = Field(default=4, ge=1, description="Most containers at once.")

    @model_validator(mode="after")
    def _check_scaling(self) -> ModalDeployment:
        if self.min_containers > self.max_containers:
            raise ValueError(
                f"min_containers ({self.min_containers}) exceeds max_containers "
                f"({self.max_containers})"
            )
        return self

    def containers_for(self, num_threads: int) -> int:
        """Containers an evaluation with `num_threads` in flight keeps busy (capped by max)."""
        if num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        return min(
            self.max_containers, max(self.min_containers, -(-num_threads // self.max_inputs))
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModalDeployment:
        environ = os.environ if environ is None else environ
        names = {
            "app_name": "LIFTDSPY_MODAL_APP",
            "preset": "LIFTDSPY_MODAL_PRESET",
            "gpu": "LIFTDSPY_MODAL_GPU",
            "secret_name": "LIFTDSPY_MODAL_SECRET",
            "volume_name": "LIFTDSPY_MODAL_VOLUME",
            "workspace": "LIFTDSPY_MODAL_WORKSPACE",
            "environment": "LIFTDSPY_MODAL_ENVIRONMENT",
            "min_containers": "LIFTDSPY_MODAL_MIN_CONTAINERS",
            "max_containers": "LIFTDSPY_MODAL_MAX_CONTAINERS",
            "max_inputs": "LIFTDSPY_MODAL_MAX_INPUTS",
            "scaledown_window": "LIFTDSPY_MODAL_SCALEDOWN_WINDOW",
            "startup_timeout": "LIFTDSPY_MODAL_STARTUP_TIMEOUT",
        }
        values = {field: environ[var] for field, var in names.items() if environ.get(var)}
        try:
            deployment = cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                validation_problems(
                    exc, place=lambda loc: names.get(str(loc[0]), "settings") if loc else "settings"
                )
            )
            raise ModalEndpointError(f"invalid Modal deployment settings: {problems}") from None
        if deployment.preset not in MODEL_PRESETS:
            raise ModalEndpointError(
                f"LIFTDSPY_MODAL_PRESET={deployment.preset!r} is not a preset; "
                f"choose one of {sorted(MODEL_PRESETS)}"
            )
        return deployment

    @property
    def gpu_type(self) -> str:
        return self.gpu or MODEL_PRESETS[self.preset][1]

    def serve_config(self) -> VLLMServeConfig:
        """The vLLM server this deployment runs: weights on the volume, key from the secret."""
        return VLLMServeConfig.from_preset(
            self.preset, download_dir=f"{VOLUME_MOUNT}/hf/hub", port=8000
        )

    @property
    def served_model_name(self) -> str:
        return self.serve_config().name_for_clients

    def web_url(self) -> str:
        """The documented Modal URL pattern for this app's `serve` function (no network)."""
        if not self.workspace:
            raise ModalEndpointError(
                "the Modal workspace is unknown: set LIFTDSPY_MODAL_WORKSPACE (your Modal "
                "workspace name) or LIFTDSPY_MODAL_URL, or run `liftdspy modal url` with "
                "credentials"
            )
        prefix = self.workspace if not self.environment else f"{self.workspace}-{self.environment}"
        label = f"{self.app_name}-{FUNCTION_NAME}".lower()
        if len(label) > 63 or not _DNS_LABEL.match(label):
            raise ModalEndpointError(
                f"app name {self.app_name!r} gives the label {label!r}, which Modal shortens or "
                "rejects; use `liftdspy modal url` to ask Modal for the real address"
            )
        return f"https://{prefix.lower()}--{label}.modal.run"

    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`.../v1`) clients use."""
        return f"{self.web_url()}/v1"


def modal_base_url(
    environ: Mapping[str, str] | None = None, *, workspace: str | None = None
) -> str:
    """The `.../v1` endpoint clients call: `$LIFTDSPY_MODAL_URL` when set, else the URL built from
    the deployment settings, with `workspace` (if given) replacing `$LIFTDSPY_MODAL_WORKSPACE`."""
    environ = os.environ if environ is None else environ
    url = environ.get(MODAL_URL_ENV, "").strip()
    if url:
        return url
    deployment = ModalDeployment.from_env(environ)
    if workspace is not None:
        deployment = deployment.model_copy(update={"workspace": workspace})
    return deployment.base_url()
