"""`liftdspy modal ...`: deploy the vLLM server to Modal, run it ephemerally, print its URL.

`deploy` and `serve` wrap the `modal` CLI (`modal deploy|serve -m liftdspy.serving.modal_app`);
settings travel as `LIFTDSPY_MODAL_*` environment variables (see
`liftdspy.serving.modal_endpoint`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import typer

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.serving.modal_endpoint import FUNCTION_NAME, ModalDeployment, ModalEndpointError
from liftdspy.serving.vllm_command import MODEL_PRESETS

app = typer.Typer(help="Deploy and reach the vLLM server on Modal.", no_args_is_help=True)

MODAL_APP_MODULE = "liftdspy.serving.modal_app"

PresetOption = typer.Option(
    None, "--preset", help=f"Model preset: {', '.join(sorted(MODEL_PRESETS))}."
)
GpuOption = typer.Option(None, "--gpu", help="Modal GPU type (default: the preset's).")
AppOption = typer.Option(None, "--app", help="Modal app name (default liftdspy-vllm).")


def _settings_env(preset: str | None, gpu: str | None, app_name: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in (
        ("LIFTDSPY_MODAL_PRESET", preset),
        ("LIFTDSPY_MODAL_GPU", gpu),
        ("LIFTDSPY_MODAL_APP", app_name),
    ):
        if value:
            env[name] = value
    return env


def _fail(message: str, code: ExitCode = ExitCode.FINDING) -> typer.Exit:
    output.error(message)
    return typer.Exit(code)


def _modal_cli() -> list[str]:
    found = shutil.which("modal")
    if found:
        return [found]
    try:
        import modal  # noqa: F401
    except ImportError:
        raise _fail(
            "the modal package is not installed: pip install -e '.[modal]'", ExitCode.BAD_INPUT
        ) from None
    return [sys.executable, "-m", "modal"]


def _deployment(env: dict[str, str]) -> ModalDeployment:
    try:
        return ModalDeployment.from_env(env)
    except (ModalEndpointError, ValueError) as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None


def _run_modal(verb: str, env: dict[str, str]) -> int:
    command = [*_modal_cli(), verb, "-m", MODAL_APP_MODULE]
    output.err().print(f"$ {' '.join(command)}", style="dim", markup=False)
    return subprocess.run(command, env=env, check=False).returncode


def lookup_web_url(deployment: ModalDeployment) -> str:
    """Ask Modal for the deployed function's URL. Raises ModalEndpointError naming what is
    missing: the modal package, credentials, the network or the deployment."""
    try:
        import modal
        from modal.config import config as modal_config
    except ImportError:
        raise ModalEndpointError(
            "the modal package is not installed: pip install -e '.[modal]'"
        ) from None
    if not (modal_config.get("token_id") and modal_config.get("token_secret")):
        raise ModalEndpointError(
            "no Modal credentials: run `modal token new` or set MODAL_TOKEN_ID and "
            "MODAL_TOKEN_SECRET (or set LIFTDSPY_MODAL_WORKSPACE to build the URL offline)"
        )
    try:
        function = modal.Function.from_name(
            deployment.app_name, FUNCTION_NAME, environment_name=deployment.environment
        )
        url = function.get_web_url()
    except modal.exception.NotFoundError:
        raise ModalEndpointError(
            f"Modal has no deployed app {deployment.app_name!r} with function {FUNCTION_NAME!r}: "
            "run `liftdspy modal deploy` first"
        ) from None
    except modal.exception.AuthError:
        raise ModalEndpointError("Modal refused the credentials: run `modal token new`") from None
    except (modal.exception.ConnectionError, OSError, TimeoutError) as exc:
        raise ModalEndpointError(
            f"cannot reach the Modal API ({type(exc).__name__}): check the network"
        ) from None
    if not url:
        raise ModalEndpointError(f"{deployment.app_name}/{FUNCTION_NAME} has no web URL")
    return url


@app.command()
def deploy(
    preset: str | None = PresetOption,
    gpu: str | None = GpuOption,
    app_name: str | None = AppOption,
) -> None:
    """Deploy the vLLM server (`modal deploy`). Needs the secret: `modal secret create
    liftdspy-vllm VLLM_API_KEY=...`; clients export the same key as LIFTDSPY_API_KEY."""
    env = _settings_env(preset, gpu, app_name)
    deployment = _deployment(env)
    output.err().print(
        f"deploying {deployment.app_name}: {deployment.served_model_name} on {deployment.gpu_type}",
        markup=False,
    )
    code = _run_modal("deploy", env)
    if code != 0:
        raise _fail(f"`modal deploy` exited with code {code}")
    try:
        output.print_text(f"endpoint: {lookup_web_url(deployment)}/v1")
    except ModalEndpointError as exc:
        output.warning(f"deployed, but the URL lookup failed: {exc}")


@app.command()
def serve(
    preset: str | None = PresetOption,
    gpu: str | None = GpuOption,
    app_name: str | None = AppOption,
) -> None:
    """Run the server ephemerally with live reload (`modal serve`); Ctrl-C stops it."""
    env = _settings_env(preset, gpu, app_name)
    _deployment(env)
    code = _run_modal("serve", env)
    if code != 0:
        raise typer.Exit(code=code)


@app.command()
def url(
    app_name: str | None = AppOption,
    offline: bool = typer.Option(
        False, "--offline", help="Build the URL from LIFTDSPY_MODAL_WORKSPACE, no Modal API call."
    ),
) -> None:
    """Print the OpenAI-compatible base URL (…/v1) of the deployed server."""
    deployment = _deployment(_settings_env(None, None, app_name))
    try:
        web_url = deployment.web_url() if offline else lookup_web_url(deployment)
    except ModalEndpointError as exc:
        raise _fail(str(exc)) from None
    output.print_text(f"{web_url}/v1")
