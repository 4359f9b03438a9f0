"""Wait for a server this process started to answer (the one readiness loop: `liftdspy ui`,
`liftdspy server` and `serve vllm`)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request


def answers(request: str | urllib.request.Request, timeout: float) -> bool:
    """One probe: True when `request` (a URL or a prepared request) is answered with 200."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(
    url: str, process: subprocess.Popen, timeout: float, *, poll_seconds: float = 0.5
) -> bool:
    """Poll `url` until it answers 200; False if `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers(url, timeout=2):
            return True
        time.sleep(poll_seconds)
    return False
