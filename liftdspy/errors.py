"""The root of liftdspy's own errors.

Every error liftdspy raises on purpose derives from `LiftdspyError`, and keeps the builtin base it
had (`ValueError`, `FileNotFoundError`, ...) as a second base, so `except ValueError` in user code
still works. The CLI catches `LiftdspyError` only: it prints the message to stderr and exits 1;
anything else is a bug and shows its traceback.

DSPy-free and dependency-free: `liftdspy.runtime` imports it too.
"""

from __future__ import annotations


class LiftdspyError(Exception):
    """Base of every error liftdspy raises on purpose (bad input, missing setup, failed call)."""


__all__ = ["LiftdspyError"]
