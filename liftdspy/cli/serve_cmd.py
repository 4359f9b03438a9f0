"""`liftdspy serve vllm`: vLLM's OpenAI-compatible server on this machine.

Registered in `liftdspy/cli/__init__.py` as `app.add_typer(serve_cmd.app, name="serve")`. The
command line comes from `build_vllm_serve`, the same builder the Modal app uses; the API key is
read from the environment (never on the command line). Once the server answers, it prints the
`/v1` URL and the `lm:` block for an experiment config (`lm.kind: openai`), then serves until
Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import typer
import yaml
from pydantic import ValidationError

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.cli.server_process import raise_keyboard_interrupt
from liftdspy.serving import local_vllm
from liftdspy.serving.server_identity import ServerIdentityError, probe_vllm
from liftdspy.serving.vllm_command import DEFAULT_MODEL, ServeCommandError, VLLMServeConfig

app = typer.Typer(no_args_is_help=True)


@app.command("vllm")
def vllm(
    model: str | None = typer.Option(
        None,
        "--model",
        help="Hugging Face id or local folder. Default: the SmolLM2 folder made by "
        "scripts/vllm_cpu_setup.sh on the CPU, else " + DEFAULT_MODEL + ".",
    ),
    port: int = typer.Option(8000, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep it local)."),
    served_model_name: str | None = typer.Option(
        None, "--served-model-name", help="Name clients send as `model` (default: --model)."
    ),
    device: str = typer.Option(
        "auto", "--device", help="cuda | cpu | auto (cpu when no NVIDIA GPU is visible)."
    ),
    api_key_env: str = typer.Option(
        "VLLM_API_KEY", "--api-key-env", help="Environment variable holding the server's API key."
    ),
    max_model_len: int = typer.Option(4096, "--max-model-len", help="Context length."),
    cpu_kv_cache_gib: int = typer.Option(2, "--cpu-kv-cache-gib", help="KV cache (CPU only)."),
    enforce_eager: bool | None = typer.Option(
        None,
        "--enforce-eager/--compile",
        help="Skip graph compilation (default on the CPU: starts ~3x faster).",
    ),
    startup_timeout: float = typer.Option(900, "--startup-timeout", help="Seconds to wait."),
    log_file: Path | None = typer.Option(None, "--log-file", help="Write vLLM's output here."),
) -> None:
    """Start `vllm serve` and print the /v1 URL for `lm.kind: openai`."""
    if device == "auto":
        device = "cuda" if shutil.which("nvidia-smi") else "cpu"
    if device not in ("cuda", "cpu"):
        output.error(f"--device must be cuda, cpu or auto, not {device!r}")
        raise typer.Exit(ExitCode.BAD_INPUT)
    if model is None:
        converted = local_vllm.cpu_model_dir()
        model = str(converted) if device == "cpu" and converted.exists() else DEFAULT_MODEL
    try:
        config = VLLMServeConfig(
            model=model,
            served_model_name=served_model_name,
            host=host,
            port=port,
            device=device,  # type: ignore[arg-type]
            dtype="bfloat16" if device == "cpu" else "auto",
            max_model_len=max_model_len,
            cpu_kv_cache_gib=cpu_kv_cache_gib,
            enforce_eager=(device == "cpu") if enforce_eager is None else enforce_eager,
            api_key_env=api_key_env,
        )
        command = local_vllm.serve_command(config)
    except (ServeCommandError, ValidationError) as exc:
        output.error(f"{exc}")
        raise typer.Exit(ExitCode.BAD_INPUT) from None

    reach = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base_url = f"http://{reach}:{port}/v1"
    if local_vllm.port_in_use(reach, port):
        # Otherwise the health check would find the other server and report it as ours.
        output.error(f"{reach}:{port} is already in use (try --port)")
        raise typer.Exit(ExitCode.FINDING)
    output.err().print(f"starting vLLM on the {device} (up to {startup_timeout:.0f} s)")
    process = local_vllm.start(command, log_file)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        if not local_vllm.wait_until_healthy(base_url, process, startup_timeout):
            code = process.poll()
            reason = f"exited with code {code}" if code is not None else "did not answer"
            where = f" (see {log_file})" if log_file else ""
            output.err().print(f"[red]vLLM {reason} on {base_url}[/red]{where}")
            raise typer.Exit(ExitCode.FINDING)
        try:
            identity = probe_vllm(
                base_url, config.name_for_clients, os.environ.get(api_key_env), timeout=30
            )
        except ServerIdentityError as exc:
            output.error(f"{exc}")
            raise typer.Exit(ExitCode.FINDING) from None
        lm_block = {
            "lm": {
                "kind": "openai",
                "model": config.name_for_clients,
                "base_url": base_url,
                "api_key_env": api_key_env,
                "server": identity.model_dump(mode="json", exclude={"version"}),
            }
        }
        typer.echo(f"OPENAI_BASE_URL={base_url}")
        typer.echo(yaml.safe_dump(lm_block, sort_keys=False).rstrip())
        output.err().print("serving; Ctrl-C to stop")
        sys.stdout.flush()
        code = process.wait()
        if code != 0:
            output.err().print(f"[red]vLLM exited with code {code}[/red]")
            raise typer.Exit(ExitCode.FINDING)
    except KeyboardInterrupt:
        output.err().print("stopping vLLM")
    finally:
        local_vllm.stop(process)
