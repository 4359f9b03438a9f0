"""A server the CLI starts as a child process (`liftdspy ui`, `liftdspy server`, `serve vllm`):
turn SIGTERM into a clean stop, and stop it (waiting for it to answer:
`liftdspy.serving.health`)."""

from __future__ import annotations

import subprocess


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
