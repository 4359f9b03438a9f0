"""The in-sandbox side: run untrusted code, then evaluate what the parent asks for.

This file is executed as a script (`python -I -S -B harness.py`) in a fresh process by
`liftdspy.sandbox.runner`, inside the OS isolation; it must only use the standard library and
must never be imported by the library itself. It reads one job as JSON from stdin:

    {"code": str, "setup": str, "tests": [{"exprs": [str]} | {"source": str}],
     "result_fd": int, "test_timeout_s": float, "memory_mb": int, "cpu_s": int,
     "max_file_mb": int, "audit_hook": bool}

and writes one JSON object per line to `result_fd` (never stdout, which user code owns):

    {"event": "loaded", "ok": bool, "error": str | None}
    {"event": "start", "index": int}
    {"event": "values", "index": int, "items": [{"value": plain} | {"error_type": str,
     "message": str, "timeout": bool}], "duration_s": float}          # a split test
    {"event": "test", "index": int, "outcome": str, "error_type": str|None,
     "message": str|None, "duration_s": float}                         # an in-sandbox test
    {"event": "done"}

Nothing here is trusted by the parent: the code under test can rewrite this module, the pipe
and the records. The parent validates every record and decides split tests itself from the
plain-data values (`liftdspy/sandbox/plain.py` describes the encoding).

The audit hook (`audit_hook: true`) is used only by `--unsafe-no-isolation` runs, where it is
the only guard; it is a speed bump that hostile code can get around, not isolation.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import time

_MESSAGE_LIMIT = 2000
_REPR_LIMIT = 300
_EXPLAIN_TIMEOUT_S = 1.0
_MAX_DEPTH = 64
_MAX_NODES = 200_000

_FORBIDDEN_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.call_function",
        "ctypes.cdata",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "os.setuid",
        "os.chroot",
    }
)
_PATH_EVENTS = frozenset(
    {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.truncate", "os.link", "os.symlink",
     "os.rename", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
)  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _TestTimeout(BaseException):
    """Raised by the per-test alarm; a BaseException so user `except Exception` misses it."""


class _NotPlain(Exception):
    pass


def _limit(kind: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit (never raise it); soft and hard are equal unless `hard` is given."""
    hard = soft if hard is None else hard
    _current_soft, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (soft, hard))


def _apply_limits(job: dict) -> None:
    _limit(resource.RLIMIT_AS, int(job["memory_mb"]) * 1024 * 1024)
    # SIGXCPU at the soft limit (reported as a timeout), SIGKILL one second later.
    _limit(resource.RLIMIT_CPU, int(job["cpu_s"]), hard=int(job["cpu_s"]) + 1)
    _limit(resource.RLIMIT_FSIZE, int(job["max_file_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 256)
    # Counted per uid: the sandbox runs as an unprivileged uid, so no fork and no new thread.
    _limit(resource.RLIMIT_NPROC, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead


def _make_audit_hook(workdir: str, forbidden=_FORBIDDEN_EVENTS, paths=_PATH_EVENTS):
    root = os.path.realpath(workdir)
    realpath, join, getcwd, fspath, sep = (
        os.path.realpath, os.path.join, os.getcwd, os.fspath, os.sep
    )  # fmt: skip
    write_flags = _WRITE_FLAGS

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True
        try:
            text = fspath(path)
        except TypeError:
            return False
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        full = realpath(join(getcwd(), text))
        return full == root or full.startswith(root + sep)

    def hook(event: str, args: tuple) -> None:
        if event in forbidden:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            writing = bool(
                (isinstance(mode, str) and any(ch in mode for ch in "wax+"))
                or (isinstance(flags, int) and flags & write_flags)
            )
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory: {path!r}")
        elif event in paths:
            for path in args[:2] if event in {"os.rename", "os.link", "os.symlink"} else args[:1]:
                if path is not None and not inside(path):
                    raise PermissionError(f"sandbox: {event} outside the working directory")

    return hook


def _describe(exc: BaseException) -> tuple[str, str]:
    message = f"{exc.msg} (line {exc.lineno})" if isinstance(exc, SyntaxError) else str(exc)
    return type(exc).__name__, message[:_MESSAGE_LIMIT]


def _encode(value: object, depth: int, budget: list) -> object:
    """The plain-data JSON form of `value` (see plain.py); exact types only."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise _NotPlain("the value is too large or too deeply nested")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float or kind is str:
        return value
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [_encode(item, depth + 1, budget) for item in value]}
    if kind is dict:
        return {
            "dict": [
                [_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)]
                for k, v in value.items()
            ]
        }
    raise _NotPlain(f"a value of type {kind.__name__} is not plain data")


def _explain_assertion(exc: AssertionError, source: str, filename: str, namespace: dict) -> str:
    """A message for a bare `assert`: the failing line, plus both sides of a simple comparison."""
    import ast  # only on a failure: keeps the start-up of every run short
    import traceback

    if str(exc):
        return str(exc)[:_MESSAGE_LIMIT]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lineno = frames[-1].lineno if frames else None
    lines = source.splitlines()
    line = lines[lineno - 1].strip() if lineno and 0 < lineno <= len(lines) else source.strip()
    try:
        node = next(
            n
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Assert) and n.lineno == lineno
        )
        if not (isinstance(node.test, ast.Compare) and len(node.test.ops) == 1):
            return line[:_MESSAGE_LIMIT]
        signal.setitimer(signal.ITIMER_REAL, _EXPLAIN_TIMEOUT_S)
        try:
            left, right = (
                eval(compile(ast.Expression(side), filename, "eval"), namespace)
                for side in (node.test.left, node.test.comparators[0])
            )
            detail = f" (left: {_short_repr(left)}, right: {_short_repr(right)})"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException:
        return line[:_MESSAGE_LIMIT]
    return (line + detail)[:_MESSAGE_LIMIT]


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def main() -> int:
    job = json.loads(sys.stdin.read())
    out_fd = int(job["result_fd"])
    write, dumps, perf = os.write, json.dumps, time.perf_counter

    def report(record: dict) -> None:
        data = (dumps(record) + "\n").encode()
        while data:
            data = data[write(out_fd, data) :]

    workdir = os.getcwd()
    _apply_limits(job)
    sys.dont_write_bytecode = True
    if job.get("audit_hook"):
        sys.addaudithook(_make_audit_hook(workdir))

    def on_alarm(_signum: int, _frame: object) -> None:
        raise _TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    setitimer = signal.setitimer
    namespace: dict = {"__name__": "__sandbox__", "__builtins__": __builtins__}

    for label, source in (("code", job["code"]), ("setup", job["setup"])):
        if not source.strip():
            continue
        try:
            exec(compile(source, f"<{label}>", "exec"), namespace)
        except BaseException as exc:  # user code may raise even SystemExit
            error_type, message = _describe(exc)
            prefix = "setup: " if label == "setup" else ""
            report({"event": "loaded", "ok": False, "error": f"{prefix}{error_type}: {message}"})
            report({"event": "done"})
            return 0
    report({"event": "loaded", "ok": True, "error": None})

    test_timeout = float(job["test_timeout_s"])
    for index, test in enumerate(job["tests"]):
        report({"event": "start", "index": index})
        started = perf()
        if "exprs" in test:
            items = _evaluate(test["exprs"], index, namespace, test_timeout)
            duration = round(perf() - started, 6)
            report({"event": "values", "index": index, "items": items, "duration_s": duration})
            continue
        source = test["source"]
        outcome, error_type, message = "passed", None, None
        try:
            compiled = compile(source, f"<test {index}>", "exec")
            setitimer(signal.ITIMER_REAL, test_timeout)
            try:
                exec(compiled, namespace)
            finally:
                setitimer(signal.ITIMER_REAL, 0)
        except _TestTimeout:
            outcome, error_type = "timeout", "Timeout"
            message = f"test exceeded {test_timeout:g} s"
        except AssertionError as exc:
            outcome, error_type = "failed", "AssertionError"
            message = _explain_assertion(exc, source, f"<test {index}>", namespace)
        except BaseException as exc:
            outcome = "error"
            error_type, message = _describe(exc)
        report(
            {
                "event": "test",
                "index": index,
                "outcome": outcome,
                "error_type": error_type,
                "message": message,
                "duration_s": round(perf() - started, 6),
            }
        )
    report({"event": "done"})
    return 0


def _evaluate(exprs: list, index: int, namespace: dict, test_timeout: float) -> list:
    """Evaluate the expressions of one split test, in order, under one alarm."""
    items: list = []
    try:
        signal.setitimer(signal.ITIMER_REAL, test_timeout)
        try:
            for source in exprs:
                try:
                    value = eval(compile(source, f"<test {index}>", "eval"), namespace)
                    items.append({"value": _encode(value, 0, [_MAX_NODES])})
                except _TestTimeout:
                    raise
                except _NotPlain as exc:
                    items.append(
                        {"error_type": "NotPlainData", "message": str(exc), "timeout": False}
                    )
                except BaseException as exc:
                    error_type, message = _describe(exc)
                    items.append({"error_type": error_type, "message": message, "timeout": False})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TestTimeout:
        message = f"test exceeded {test_timeout:g} s"
        items += [{"error_type": "Timeout", "message": message, "timeout": True}] * (
            len(exprs) - len(items)
        )
    return items


def _finish(code: int) -> None:
    """Flush and leave at once: skip atexit handlers and threads the user code left behind."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _finish(main())
