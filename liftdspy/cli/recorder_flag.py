"""`--recorder MODE` (off | record | replay | offline), shared by run, evaluate and study run.

The flag beats `$LIFTDSPY_RECORDER` (which every LM reads, also one rebuilt from a saved program)
for the duration of the command; a value that is not a mode is a usage error (exit 2).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import typer

from liftdspy.cli import output
from liftdspy.lm.recorder import RECORDER_MODE_ENV, RecorderMode


def recorder_option() -> RecorderMode | None:
    return typer.Option(
        None,
        "--recorder",
        help="Recorder mode for every LM: off | record | replay | offline.",
        case_sensitive=False,
    )


@contextlib.contextmanager
def recorder_env(recorder: RecorderMode | None) -> Iterator[None]:
    """Set `$LIFTDSPY_RECORDER` to the flag's mode while the command runs (then restore it)."""
    previous = os.environ.get(RECORDER_MODE_ENV)
    if recorder is None:
        yield
        return
    mode = RecorderMode(recorder).value
    if previous and previous.strip().lower() != mode:
        output.warning(f"--recorder {mode} overrides {RECORDER_MODE_ENV}={previous}")
    os.environ[RECORDER_MODE_ENV] = mode
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RECORDER_MODE_ENV, None)
        else:
            os.environ[RECORDER_MODE_ENV] = previous
