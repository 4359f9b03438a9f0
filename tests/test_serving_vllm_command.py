"""`build_vllm_serve`: the one `vllm serve` command line (Modal, CPU test, by hand)."""

from __future__ import annotations

import json

import pytest
from fixtures_vllm import EVERY_SETTING
from pydantic import ValidationError

from liftdspy.serving.vllm_command import (
    DEFAULT_MODEL,
    MODEL_PRESETS,
    ServeCommandError,
    VLLMServeConfig,
    build_vllm_serve,
)

KEY = "vllm-key-abcdef0123456789"
ENV = {"VLLM_API_KEY": KEY}


def flag(argv: tuple[str, ...], name: str) -> str:
    """The value following `name` (fails the test if the flag is absent)."""
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def test_default_command_serves_the_7b_coder_with_xgrammar_and_prefix_caching() -> None:
    command = build_vllm_serve(VLLMServeConfig(), ENV)
    argv = command.argv
    assert argv[:3] == ("vllm", "serve", DEFAULT_MODEL)
    assert DEFAULT_MODEL == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert flag(argv, "--host") == "0.0.0.0"
    assert flag(argv, "--port") == "8000"
    assert flag(argv, "--served-model-name") == DEFAULT_MODEL
    assert flag(argv, "--dtype") == "auto"
    assert flag(argv, "--max-model-len") == "16384"
    assert flag(argv, "--gpu-memory-utilization") == "0.9"
    assert flag(argv, "--tensor-parallel-size") == "1"
    assert json.loads(flag(argv, "--structured-outputs-config")) == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert "--enable-prefix-caching" in argv
    # retired spellings of current vLLM must not appear
    assert "--guided-decoding-backend" not in argv
    assert "--device" not in argv


def test_the_key_travels_in_the_environment_never_on_the_command_line() -> None:
    command = build_vllm_serve(VLLMServeConfig(), ENV)
    assert command.env["VLLM_API_KEY"] == KEY
    assert "--api-key" not in command.argv
    assert KEY not in " ".join(command.argv)
    assert KEY not in command.display()
    assert KEY not in repr(command)


def test_key_can_come_from_another_variable() -> None:
    config = VLLMServeConfig(api_key_env="MY_SERVER_KEY")
    command = build_vllm_serve(config, {"MY_SERVER_KEY": "other-key"})
    assert command.env["VLLM_API_KEY"] == "other-key"


def test_missing_key_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ServeCommandError, match="VLLM_API_KEY"):
        build_vllm_serve(VLLMServeConfig(), {})
    command = build_vllm_serve(VLLMServeConfig(require_api_key=False), {})
    assert "VLLM_API_KEY" not in command.env


def test_extra_args_cannot_smuggle_the_key_onto_the_command_line() -> None:
    for extra in (("--api-key", "x"), ("--api-key=x",)):
        with pytest.raises(ServeCommandError, match="environment"):
            build_vllm_serve(VLLMServeConfig(extra_args=extra), ENV)


def test_every_setting_reaches_its_flag() -> None:
    config = EVERY_SETTING.model_copy(
        update={
            "structured_outputs_backend": "guidance",
            "structured_outputs_any_whitespace": True,
            "enable_prefix_caching": False,
            "enforce_eager": False,
            "extra_args": ("--enforce-eager",),  # extra arguments go last
        }
    )
    argv = build_vllm_serve(config, ENV, executable="/opt/bin/vllm").argv
    assert argv[:3] == ("/opt/bin/vllm", "serve", "org/model")
    assert flag(argv, "--revision") == "abc123"
    assert flag(argv, "--served-model-name") == "coder"
    assert flag(argv, "--host") == "127.0.0.1"
    assert flag(argv, "--port") == "9000"
    assert flag(argv, "--dtype") == "bfloat16"
    assert flag(argv, "--max-model-len") == "4096"
    assert flag(argv, "--gpu-memory-utilization") == "0.85"
    assert flag(argv, "--tensor-parallel-size") == "2"
    assert flag(argv, "--max-num-seqs") == "16"
    assert json.loads(flag(argv, "--structured-outputs-config")) == {"backend": "guidance"}
    assert flag(argv, "--download-dir") == "/models/hf/hub"
    assert "--no-enable-prefix-caching" in argv and "--enable-prefix-caching" not in argv
    assert argv[-1] == "--enforce-eager"


def test_cpu_drops_gpu_flags_and_sizes_the_kv_cache() -> None:
    config = VLLMServeConfig(device="cpu", cpu_kv_cache_gib=2, dtype="bfloat16")
    command = build_vllm_serve(config, ENV)
    assert "--gpu-memory-utilization" not in command.argv
    assert "--tensor-parallel-size" not in command.argv
    assert command.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    with pytest.raises(ValidationError, match="tensor_parallel_size"):
        VLLMServeConfig(device="cpu", tensor_parallel_size=2)


def test_presets_select_7b_and_32b() -> None:
    assert set(MODEL_PRESETS) == {"qwen-coder-7b", "qwen-coder-32b"}
    big = VLLMServeConfig.from_preset("qwen-coder-32b", served_model_name="coder")
    assert big.model == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert flag(build_vllm_serve(big, ENV).argv, "--served-model-name") == "coder"
    assert MODEL_PRESETS["qwen-coder-32b"][1] == "H100"
    with pytest.raises(ServeCommandError, match="qwen-coder-7b"):
        VLLMServeConfig.from_preset("llama-70b")


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 0},
        {"gpu_memory_utilization": 1.5},
        {"tensor_parallel_size": 0},
        {"dtype": "int4"},
        {"structured_outputs_backend": "lm-format-enforcer"},
        {"unknown_field": 1},
    ],
)
def test_invalid_settings_are_rejected_by_name(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        VLLMServeConfig(**bad)
    assert next(iter(bad)) in str(caught.value)


def test_config_round_trips_through_json() -> None:
    config = VLLMServeConfig.from_preset("qwen-coder-7b", download_dir="/models/hf/hub")
    assert VLLMServeConfig.model_validate_json(config.model_dump_json()) == config
