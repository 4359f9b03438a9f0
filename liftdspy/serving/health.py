"""Wait for a server this process started to answer (the one readiness loop: `liftdspy ui`,
`liftdspy server` and `serve vllm`)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request


def wait_until_ready(
    url: str, process: subprocess.Popen, timeout: float, *, poll_seconds: float = 0.5
) -> bool:
    """Poll `url` until it answers 200; False if `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(poll_seconds)
    return False
