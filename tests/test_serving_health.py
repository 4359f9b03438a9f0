"""The one readiness loop (liftdspy.serving.health) the CLI servers and `serve vllm` wait with."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from liftdspy.serving import local_vllm
from liftdspy.serving.health import wait_until_ready


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_ready_when_the_url_answers_200_not_when_the_process_exits():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{httpd.server_address[1]}"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert wait_until_ready(f"{root}/health", sleeper, timeout=5)
        assert local_vllm.wait_until_healthy(f"{root}/v1", sleeper, timeout=5)
        assert not wait_until_ready(f"{root}/missing", sleeper, timeout=0.6, poll_seconds=0.1)
    finally:
        sleeper.kill()
        sleeper.wait()
        httpd.shutdown()
        httpd.server_close()
    assert not wait_until_ready(f"{root}/health", sleeper, timeout=5)  # exited: False at once
