"""A server the CLI starts as a child process (`liftdspy ui`, `liftdspy server`, `serve vllm`):
wait for it to answer, turn SIGTERM into a clean stop, and stop it."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll `url` until it answers 200; False if the server exits or `timeout` passes."""
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
        time.sleep(0.5)
    return False


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop like Ctrl-C, so the `finally` that stops the child runs."""
    raise KeyboardInterrupt


def stop_process(process: subprocess.Popen, grace_seconds: float) -> None:
    """Terminate `process`, and kill it if it has not exited after `grace_seconds`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
