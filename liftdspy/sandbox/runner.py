"""Run untrusted code and its tests in a separate, limited process (see `harness.py`).

One run = one fresh `python -I -B -u harness.py` process, wrapped in the OS isolation that
`isolation.detect_isolation()` found, with a minimal environment, its own temporary working
directory (removed afterwards), its own process group (killed as a whole on timeout), captured
and truncated stdout/stderr, and results read from a private pipe.
"""

from __future__ import annotations

import atexit
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
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from liftdspy.sandbox.isolation import UidPool, command_prefix, detect_isolation
from liftdspy.sandbox.models import (
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    TestResult,
)

logger = logging.getLogger(__name__)

HARNESS_PATH = Path(__file__).with_name("harness.py")
_MAX_FILE_MB = 64  # RLIMIT_FSIZE inside the sandbox
_MAX_RESULT_BYTES = 16 * 1024 * 1024  # the result pipe is ignored past this
_EXIT_GRACE_S = 2.0  # how long a process may linger after reporting "done"
_READ_CHUNK = 65536

_uids = UidPool()
_parent_lock = threading.Lock()
_parent_dir: Path | None = None


def _sandbox_parent_dir() -> Path:
    """A root-owned, list-protected (0711) directory holding this process's sandbox dirs."""
    global _parent_dir
    with _parent_lock:
        if _parent_dir is None or not _parent_dir.is_dir():
            _parent_dir = Path(tempfile.mkdtemp(prefix="liftdspy-sandbox-"))
            _parent_dir.chmod(0o711)
            atexit.register(shutil.rmtree, _parent_dir, True)
        return _parent_dir


def _minimal_env(workdir: Path) -> dict[str, str]:
    """The only environment the sandbox sees: nothing inherited from the caller."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # RLIMIT_NPROC=0 forbids threads too: keep numeric libraries single-threaded.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


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


class _Process:
    """Drives one harness process: feed the job, collect pipes, enforce the wall clock."""

    def __init__(self, job: SandboxJob, limits: SandboxLimits, workdir: Path, uid: int | None):
        self.limits = limits
        self.stdout = _Capture(limits.max_output_bytes)
        self.stderr = _Capture(limits.max_output_bytes)
        self.records: list[dict] = []
        self.timed_out = False
        self.returncode: int | None = None
        self._result_buffer = bytearray()
        self._result_bytes = 0

        read_fd, write_fd = os.pipe()
        command = [
            *command_prefix(detect_isolation(), uid),
            sys.executable,
            "-I",
            "-B",
            "-u",
            str(HARNESS_PATH),
        ]
        payload = {
            "code": job.code,
            "setup": job.setup,
            "tests": job.tests,
            "result_fd": write_fd,
            "workdir": str(workdir),
            "test_timeout_s": limits.test_timeout_s,
            "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s,
            "max_file_mb": _MAX_FILE_MB,
        }
        try:
            self.popen = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                cwd=workdir,
                env=_minimal_env(workdir),
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._result_fd = read_fd
        self._payload = json.dumps(payload).encode()

    def run(self) -> None:
        deadline = time.monotonic() + self.limits.timeout_s
        try:
            self._send_job()
            self._collect(deadline)
        finally:
            self._kill_group()
            self.returncode = self.popen.wait()
            os.close(self._result_fd)
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()

    def _send_job(self) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(self._payload)
            self.popen.stdin.close()
        except (BrokenPipeError, OSError) as exc:
            logger.debug("sandbox process closed stdin early: %s", exc)

    def _collect(self, deadline: float) -> None:
        assert self.popen.stdout is not None and self.popen.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(self.popen.stdout.fileno(), selectors.EVENT_READ, self.stdout.add)
        selector.register(self.popen.stderr.fileno(), selectors.EVENT_READ, self.stderr.add)
        selector.register(self._result_fd, selectors.EVENT_READ, self._add_result)
        done_at: float | None = None
        try:
            while selector.get_map():
                now = time.monotonic()
                if done_at is None and self._saw_done():
                    done_at = now
                limit = deadline if done_at is None else min(deadline, done_at + _EXIT_GRACE_S)
                if now >= limit:
                    self.timed_out = done_at is None
                    return
                for key, _ in selector.select(timeout=limit - now):
                    data = os.read(key.fd, _READ_CHUNK)
                    if data:
                        key.data(data)
                    else:
                        selector.unregister(key.fd)
        finally:
            selector.close()

    def _add_result(self, data: bytes) -> None:
        self._result_bytes += len(data)
        if self._result_bytes > _MAX_RESULT_BYTES:
            return
        self._result_buffer += data
        *lines, rest = self._result_buffer.split(b"\n")
        self._result_buffer = bytearray(rest)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                logger.debug("ignoring a malformed sandbox result line")
                continue
            if isinstance(record, dict):
                self.records.append(record)

    def _saw_done(self) -> bool:
        return bool(self.records) and self.records[-1].get("event") == "done"

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def _death_reason(process: _Process, limits: SandboxLimits) -> tuple[TestOutcome, str, str]:
    """Why the process stopped before reporting everything: (outcome, error type, message)."""
    if process.timed_out:
        message = f"the program exceeded its {limits.timeout_s:g} s limit"
        return TestOutcome.timeout, "Timeout", message
    code = process.returncode
    if code is not None and code < 0:
        number = -code
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number == signal.SIGXCPU:
            return TestOutcome.timeout, "Timeout", f"the program exceeded {limits.cpu_s} s of CPU"
        return TestOutcome.error, "SandboxCrash", f"the sandbox process was killed by {name}"
    tail = process.stderr.text().strip().splitlines()[-1:] or [""]
    return (
        TestOutcome.error,
        "SandboxCrash",
        f"the sandbox process exited with code {code} before finishing {tail[0]}".strip(),
    )


def _build_result(
    job: SandboxJob, limits: SandboxLimits, process: _Process, duration_s: float
) -> SandboxResult:
    loaded_record = next((r for r in process.records if r.get("event") == "loaded"), None)
    finished = {r["index"]: r for r in process.records if r.get("event") == "test"}
    started = {r["index"] for r in process.records if r.get("event") == "start"}
    complete = process.records and process.records[-1].get("event") == "done"

    loaded = bool(loaded_record and loaded_record.get("ok"))
    load_error: str | None = None
    death = None if complete else _death_reason(process, limits)
    if loaded_record is None:
        assert death is not None or complete
        load_error = f"{death[1]}: {death[2]}" if death else "the code did not report loading"
    elif not loaded:
        load_error = str(loaded_record.get("error"))

    tests: list[TestResult] = []
    for index, source in enumerate(job.tests):
        record = finished.get(index)
        if record is not None:
            tests.append(
                TestResult(
                    index=index,
                    source=source,
                    outcome=TestOutcome(record["outcome"]),
                    error_type=record.get("error_type"),
                    message=record.get("message"),
                    duration_s=float(record.get("duration_s", 0.0)),
                )
            )
        elif not loaded:
            tests.append(
                TestResult(
                    index=index,
                    source=source,
                    outcome=TestOutcome.error,
                    error_type="NotRun",
                    message=f"not run: the code did not load ({load_error})",
                )
            )
        else:
            outcome, error_type, message = death or (
                TestOutcome.error,
                "SandboxCrash",
                "no result reported",
            )
            if index not in started:
                message = f"not run: {message}"
            tests.append(
                TestResult(
                    index=index,
                    source=source,
                    outcome=outcome,
                    error_type=error_type,
                    message=message,
                )
            )
    return SandboxResult(
        loaded=loaded,
        load_error=load_error,
        tests=tests,
        stdout=process.stdout.text(),
        stderr=process.stderr.text(),
        timed_out=process.timed_out or (death is not None and death[0] is TestOutcome.timeout),
        duration_s=round(duration_s, 6),
    )


def run_job(job: SandboxJob) -> SandboxResult:
    """Run one job in a fresh sandbox process and return what happened."""
    limits = job.limits or SandboxLimits()
    isolation = detect_isolation()
    uid = _uids.acquire() if isolation.separate_uid else None
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=_sandbox_parent_dir()))
    started = time.perf_counter()
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        workdir.chmod(0o700)
        process = _Process(job, limits, workdir, uid)
        process.run()
        return _build_result(job, limits, process, time.perf_counter() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if uid is not None:
            _uids.release(uid)


def run_tests(
    code: str, tests: list[str], *, setup: str = "", limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run `code`, then `setup`, then each test statement, in a sandboxed process."""
    return run_job(SandboxJob(code=code, tests=list(tests), setup=setup, limits=limits))


def run_many(jobs: Sequence[SandboxJob], *, workers: int | None = None) -> list[SandboxResult]:
    """Run many jobs in parallel sandboxes; results come back in the order of `jobs`."""
    if not jobs:
        return []
    workers = max(1, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(run_job, jobs))
