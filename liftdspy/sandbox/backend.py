"""The sandbox runner interface: a backend runs the harness on one job payload.

`run_job` (in `runner.py`) plans the tests, hands the harness payload to a backend and decides
the verdicts from the raw run; a backend only executes. `LocalBackend` runs the harness in a
bubblewrap sandbox on this machine (or, with `isolation="none"`, in a bare subprocess). A
remote backend (e.g. a Modal Sandbox) would implement the same `execute` and return a `RawRun`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from liftdspy.sandbox.bwrap import (
    bwrap_command,
    minimal_env,
    runtime_paths,
    sandbox_uid,
    supports_tmpfs_size,
)
from liftdspy.sandbox.isolation import require_isolation
from liftdspy.sandbox.models import SandboxLimits
from liftdspy.sandbox.records import MAX_RESULT_BYTES
from liftdspy.sandbox.seccomp import seccomp_pipe, seccomp_program

logger = logging.getLogger(__name__)

IsolationMode = Literal["bubblewrap", "none"]
HARNESS_PATH = Path(__file__).with_name("harness.py")
MAX_FILE_MB = 64  # RLIMIT_FSIZE inside the sandbox
_EXIT_GRACE_S = 2.0  # how long a process may linger after its result channel closes
_READ_CHUNK = 65536


@dataclass
class RawRun:
    """What one execution produced, before anything in it is believed."""

    result_bytes: bytes
    result_overflow: bool
    stdout: str
    stderr: str
    timed_out: bool
    signal_number: int | None  # the signal that ended the program, if any
    exit_code: int | None


class SandboxBackend(Protocol):
    """Runs the harness on one payload (see `harness.py` for its format)."""

    name: str

    def execute(self, payload: dict, limits: SandboxLimits) -> RawRun: ...


class _Capture:
    """Keeps the first `limit` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if self.total > len(self.kept):
            text += f"\n[... output truncated: {self.total} bytes in total]"
        return text


class LocalBackend:
    """The harness in a bubblewrap sandbox here (`isolation="none"`: a bare, UNSAFE process)."""

    def __init__(self, isolation: IsolationMode = "bubblewrap") -> None:
        self.isolation = isolation
        self.name = "bubblewrap" if isolation == "bubblewrap" else "none"

    def execute(self, payload: dict, limits: SandboxLimits) -> RawRun:
        read_fd, write_fd = os.pipe()
        fds = [write_fd]
        workdir: str | None = None
        try:
            if self.isolation == "bubblewrap":
                command = self._bwrap_command(write_fd, fds)
                cwd = "/"
            else:
                workdir = tempfile.mkdtemp(prefix="liftdspy-unsafe-")
                command = [sys.executable, "-I", "-S", "-B", "-u", str(HARNESS_PATH)]
                cwd = workdir
            job = {**payload, "result_fd": write_fd, "audit_hook": self.isolation == "none"}
            popen = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=tuple(fds),
                cwd=cwd,
                env=minimal_env() if workdir is None else {**minimal_env(), "HOME": workdir},
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        try:
            return _drive(popen, read_fd, json.dumps(job).encode(), limits)
        finally:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def _bwrap_command(self, result_fd: int, fds: list[int]) -> list[str]:
        isolation = require_isolation()
        assert isolation.bwrap is not None
        program, _ = seccomp_program()
        seccomp_fd = seccomp_pipe(program) if program else None
        if seccomp_fd is not None:
            fds.append(seccomp_fd)
        _, executable = runtime_paths()
        return bwrap_command(
            isolation.bwrap,
            HARNESS_PATH,
            env=minimal_env(),
            uid=sandbox_uid(),
            seccomp_fd=seccomp_fd,
            sized_tmpfs=supports_tmpfs_size(isolation.bwrap_version),
            argv=[executable, "-I", "-S", "-B", "-u", "/opt/liftdspy/harness.py"],
            drop_first=isolation.root_setup == "drop-first",
        )


def _drive(popen: subprocess.Popen, result_fd: int, job: bytes, limits: SandboxLimits) -> RawRun:
    """Feed the job, collect the three pipes within the wall clock, then kill what is left."""
    stdout, stderr = _Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes)
    result = bytearray()
    overflow = False

    def add_result(data: bytes) -> None:
        nonlocal overflow
        room = MAX_RESULT_BYTES - len(result)
        if len(data) > room:
            overflow = True
        result.extend(data[: max(room, 0)])

    timed_out = False
    deadline = time.monotonic() + limits.timeout_s
    try:
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            popen.stdin.write(job)
        with contextlib.suppress(BrokenPipeError, OSError):
            popen.stdin.close()
        selector = selectors.DefaultSelector()
        selector.register(popen.stdout.fileno(), selectors.EVENT_READ, stdout.add)
        selector.register(popen.stderr.fileno(), selectors.EVENT_READ, stderr.add)
        selector.register(result_fd, selectors.EVENT_READ, add_result)
        closed_at: float | None = None
        try:
            while selector.get_map():
                now = time.monotonic()
                if closed_at is None and result_fd not in selector.get_map():
                    closed_at = now
                limit = deadline if closed_at is None else min(deadline, closed_at + _EXIT_GRACE_S)
                if now >= limit:
                    timed_out = closed_at is None
                    break
                for key, _ in selector.select(timeout=limit - now):
                    data = os.read(key.fd, _READ_CHUNK)
                    if data:
                        key.data(data)
                    else:
                        selector.unregister(key.fd)
        finally:
            selector.close()
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        code = popen.wait()
        os.close(result_fd)
        for stream in (popen.stdout, popen.stderr):
            if stream is not None:
                stream.close()
    signal_number = -code if code < 0 else (code - 128 if code > 128 else None)
    return RawRun(
        result_bytes=bytes(result),
        result_overflow=overflow,
        stdout=stdout.text(),
        stderr=stderr.text(),
        timed_out=timed_out,
        signal_number=signal_number,
        exit_code=code,
    )
