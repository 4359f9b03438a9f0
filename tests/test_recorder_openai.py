"""The recorder around the real OpenAIEngine, against `ScriptedChatServer` (a local
OpenAI-compatible stub server, tests/fixtures_server.py).

Proves on the real HTTP path that the API key reaches the server but never the recordings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_server import ScriptedChatServer

from liftdspy.lm import LMConfig, RecorderConfig, RecordingStore, build_lm, recorder_of
from liftdspy.lm.recorder import RECORDER_MODE_ENV

pytest.importorskip("openai")
pytest.importorskip("liftdspy.lm.openai_engine")

SECRET = "sk-test-9f8e7d6c5b4a39281706"


@pytest.fixture
def server() -> Iterator[ScriptedChatServer]:
    with ScriptedChatServer(script=[], reply="echo: the capital") as chat:
        yield chat


def test_real_openai_engine_key_reaches_server_never_recordings(
    server: ScriptedChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    monkeypatch.setenv("STUB_API_KEY", SECRET)
    config = LMConfig(
        kind="openai",
        model="stub-model",
        base_url=server.base_url,
        api_key_env="STUB_API_KEY",
        recorder=RecorderConfig(mode="replay", path=tmp_path / "store"),
    )
    lm = build_lm(config)
    first = lm("What is the capital of France?")
    assert lm("What is the capital of France?") == first
    assert recorder_of(lm).stats().calls == 1
    assert server.authorizations == [f"Bearer {SECRET}"]

    monkeypatch.setenv("STUB_API_KEY", "sk-test-another-key-000000")
    offline = build_lm(
        config.model_copy(
            update={"recorder": RecorderConfig(mode="offline", path=tmp_path / "store")}
        )
    )
    assert offline("What is the capital of France?") == first  # same key under another API key

    RecordingStore(tmp_path / "store").export_jsonl(tmp_path / "rec.jsonl")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 1
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    (entry,) = RecordingStore(tmp_path / "store").entries()
    assert entry.identity["model"] == "stub-model" and "127.0.0.1" in entry.identity["base_url"]
