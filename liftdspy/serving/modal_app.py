"""The Modal app serving vLLM's OpenAI-compatible server (needs the `modal` extra).

Deploy with `liftdspy modal deploy` (or `modal deploy -m liftdspy.serving.modal_app`). Before the
first deploy, create the secret holding the server's API key, and give clients the same value:

    modal secret create liftdspy-vllm VLLM_API_KEY=<a long random string>
    export LIFTDSPY_API_KEY=<the same string>

What runs: one `serve` web function on `ModalDeployment.gpu_type` (L40S for the 7B preset, H100
for 32B), vLLM `VLLM_VERSION` from PyPI on debian-slim, Hugging Face weights cached on a Modal
Volume, the command line from `liftdspy.serving.vllm_command.build_vllm_serve`. The endpoint
refuses requests without `Authorization: Bearer <key>` (vLLM's own check, key from the secret).

The deployment settings are read from `LIFTDSPY_MODAL_*` variables when deploying and shipped to
the container as JSON in the image environment, so both sides build the same app.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess

import modal

from liftdspy.serving.modal_endpoint import FUNCTION_NAME, VOLUME_MOUNT, ModalDeployment
from liftdspy.serving.vllm_command import MODAL_TORCH_VERSION, VLLM_VERSION, build_vllm_serve

logger = logging.getLogger(__name__)

DEPLOYMENT_ENV = "LIFTDSPY_MODAL_DEPLOYMENT"
HF_HOME = f"{VOLUME_MOUNT}/hf"


def _deployment() -> ModalDeployment:
    shipped = os.environ.get(DEPLOYMENT_ENV)
    if shipped:  # inside the container: exactly what was deployed
        return ModalDeployment.model_validate_json(shipped)
    return ModalDeployment.from_env()


deployment = _deployment()

image = (
    modal.Image.debian_slim(python_version="3.12")
    # vLLM 0.33 is built against torch 2.14.0: pin it so the resolver cannot pick another.
    .pip_install(
        f"torch=={MODAL_TORCH_VERSION}", f"vllm=={VLLM_VERSION}", "huggingface_hub[hf_transfer]"
    )
    # vLLM's docs for 0.33: fetch the prebuilt attention/MoE kernels at build time, not at start.
    .run_commands("vllm download-kernels")
    .env(
        {
            "HF_HOME": HF_HOME,
            "HF_HUB_ENABLE_HF_TRANSFER": "1",
            DEPLOYMENT_ENV: deployment.model_dump_json(),
        }
    )
    .add_local_python_source("liftdspy")
)

hf_cache = modal.Volume.from_name(deployment.volume_name, create_if_missing=True)
api_key_secret = modal.Secret.from_name(deployment.secret_name, required_keys=["VLLM_API_KEY"])

# The image carries the liftdspy source (add_local_python_source), so Modal's automatic
# mount of the entrypoint's package is switched off: one copy, one place that says so.
app = modal.App(deployment.app_name, image=image, include_source=False)


@app.function(
    name=FUNCTION_NAME,
    gpu=deployment.gpu_type,
    volumes={VOLUME_MOUNT: hf_cache},
    secrets=[api_key_secret],
    scaledown_window=deployment.scaledown_window,
    min_containers=deployment.min_containers,
    max_containers=deployment.max_containers,
    timeout=24 * 60 * 60,
)
@modal.concurrent(max_inputs=deployment.max_inputs)
@modal.web_server(port=8000, startup_timeout=deployment.startup_timeout)
def serve() -> None:
    """Start vLLM in the background; Modal routes HTTP to port 8000 once it answers."""
    command = build_vllm_serve(deployment.serve_config())
    logger.info("starting %s", command.display())
    subprocess.Popen(list(command.argv), env={**os.environ, **command.env})


def describe() -> dict[str, object]:
    """What this module configured, for `liftdspy modal` and tests (no network)."""
    return {
        "app": deployment.app_name,
        "function": FUNCTION_NAME,
        "gpu": deployment.gpu_type,
        "secret": deployment.secret_name,
        "volume": deployment.volume_name,
        "vllm": VLLM_VERSION,
        "torch": MODAL_TORCH_VERSION,
        "scaling": {
            "min_containers": deployment.min_containers,
            "max_containers": deployment.max_containers,
            "max_inputs": deployment.max_inputs,
            "scaledown_window": deployment.scaledown_window,
        },
        "serve_config": json.loads(deployment.serve_config().model_dump_json()),
    }
