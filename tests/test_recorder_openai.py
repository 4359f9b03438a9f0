"""The recorder around the real OpenAIEngine, against a local OpenAI-compatible stub server.

Proves on the real HTTP path that the API key reaches the server but never the recordings.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from liftdspy.lm import LMConfig, RecorderConfig, RecordingStore, build_lm, recorder_of
from liftdspy.lm.recorder import RECORDER_MODE_ENV

pytest.importorskip("openai")
pytest.importorskip("liftdspy.lm.openai_engine")

SECRET = "sk-test-9f8e7d6c5b4a39281706"


class _ChatStub(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions; remembers the Authorization headers it saw."""

    seen_auth: list[str] = []  # noqa: RUF012 - shared by the server's handler instances

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatStub.seen_auth.append(self.headers.get("Authorization", ""))
        question = body["messages"][-1]["content"]
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"echo: {question[-20:]}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatStub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_real_openai_engine_key_reaches_server_never_recordings(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    monkeypatch.setenv("STUB_API_KEY", SECRET)
    _ChatStub.seen_auth.clear()
    config = LMConfig(
        kind="openai",
        model="stub-model",
        base_url=server,
        api_key_env="STUB_API_KEY",
        recorder=RecorderConfig(mode="replay", path=tmp_path / "store"),
    )
    lm = build_lm(config)
    first = lm("What is the capital of France?")
    assert lm("What is the capital of France?") == first
    assert recorder_of(lm).stats().calls == 1
    assert _ChatStub.seen_auth == [f"Bearer {SECRET}"]

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
