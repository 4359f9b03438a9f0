"""Opt-in: the real vLLM OpenAI server on the CPU, started with the SAME command builder the
Modal app uses, called through OpenAIEngine.

Run with `pytest -m vllm` after installing vLLM's CPU build (not part of any extra; see the
vLLM docs, "CPU installation"). Skipped unless vLLM is importable AND the `vllm` marker was
selected (or LIFTDSPY_TEST_VLLM=1). The model defaults to a small one; override with
LIFTDSPY_TEST_VLLM_MODEL.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import LMAuthError
from fixtures_server import free_port

from liftdspy.lm.openai_engine import openai_lm
from liftdspy.serving.vllm_command import VLLMServeConfig, build_vllm_serve

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

KEY_ENV = "LIFTDSPY_TEST_VLLM_KEY"
KEY = "sk-vllm-cpu-test-0123456789"
SERVED_NAME = "cpu-test-model"
START_TIMEOUT_S = 900


def _selected(config: pytest.Config) -> bool:
    return "vllm" in (config.option.markexpr or "") or os.environ.get("LIFTDSPY_TEST_VLLM") == "1"


@pytest.fixture(scope="module")
def vllm_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if not _selected(request.config):
        pytest.skip("opt-in: run with `pytest -m vllm` (or LIFTDSPY_TEST_VLLM=1)")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (install its CPU build to run this test)")
    port = free_port()
    config = VLLMServeConfig(
        model=os.environ.get("LIFTDSPY_TEST_VLLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct"),
        served_model_name=SERVED_NAME,
        host="127.0.0.1",
        port=port,
        device="cpu",
        dtype="bfloat16",
        max_model_len=2048,
        cpu_kv_cache_gib=2,
        api_key_env=KEY_ENV,
    )
    executable = shutil.which("vllm") or str(Path(sys.executable).with_name("vllm"))
    command = build_vllm_serve(config, {KEY_ENV: KEY}, executable=executable)
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **command.env},
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"vllm did not come up in {START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=2
                ) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def test_vllm_cpu_answers_and_requires_the_key(
    vllm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    lm = openai_lm(vllm_server, SERVED_NAME, api_key_env=KEY_ENV, cache=False, max_tokens=16)
    outputs = lm("Say hello.")
    assert isinstance(outputs[0], str) and outputs[0].strip()
    assert lm.history[-1]["usage"]["completion_tokens"] > 0

    monkeypatch.setenv(KEY_ENV, "wrong-key")
    with pytest.raises(LMAuthError, match=r"127\.0\.0\.1"):
        lm("Say hello.")


def test_vllm_cpu_json_schema_is_enforced(
    vllm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)

    class Capital(dspy.Signature):
        """Name the capital city of the country."""

        country: str = dspy.InputField()
        city: str = dspy.OutputField()
        population_millions: float = dspy.OutputField()

    lm = openai_lm(vllm_server, SERVED_NAME, api_key_env=KEY_ENV, cache=False, max_tokens=128)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(Capital)(country="France")
    assert isinstance(prediction.city, str) and prediction.city
    assert isinstance(prediction.population_millions, float)
