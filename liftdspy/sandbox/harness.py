"""The in-sandbox side: run untrusted code, then evaluate what the parent asks for.

This file is executed as a script (`python -I -S -B harness.py`) in a fresh process by
`liftdspy.sandbox.runner`, inside the OS isolation; it must only use the standard library and
must never be imported by the library itself. It reads one job as JSON from stdin:

    {"code": str, "setup": str, "tests": [{"program": str}], "result_fd": int,
     "test_timeout_s": float, "memory_mb": int, "cpu_s": int, "max_file_mb": int,
     "audit_hook": bool}

Each test's `program` is the test rewritten by `liftdspy/sandbox/split.py`: its asserts are
calls of `__liftdspy_check__(k, thunk, ...)`, which records the plain-data value (or the error)
of each thunk and judges nothing. The harness writes one JSON object per line to `result_fd`
(never stdout, which user code owns):

    {"event": "loaded", "ok": bool, "error": str | None}
    {"event": "start", "index": int}
    {"event": "checks", "index": int, "checks": [{"id": int, "items": [{"value": plain} |
     {"error_type": str, "message": str}]}], "ended": {"kind": "ok" | "raised" | "timeout",
     "error_type": str, "message": str}, "duration_s": float}
    {"event": "done"}

Nothing here is trusted by the parent: the code under test can rewrite this module, the pipe
and the records. The parent validates every record and decides every judgement itself from the
plain-data values (`liftdspy/sandbox/plain.py` describes the encoding); the expected values it
can evaluate itself are never sent here.

The audit hook (`audit_hook: true`) is used only by `--unsafe-no-isolation` runs, where it is
the only guard; it is a speed bump that hostile code can get around, not isolation.
"""

from __future__ import annotations

import _collections
import _datetime
import _decimal
import builtins
import contextlib
import json
import os
import resource
import signal
import sys
import time

_MESSAGE_LIMIT = 2000
_MAX_DEPTH = 64
_MAX_NODES = 200_000
_MAX_CHECKS = 10_000

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


class _TooManyChecks(BaseException):
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
    try:
        message = f"{exc.msg} (line {exc.lineno})" if isinstance(exc, SyntaxError) else str(exc)
        message = message if type(message) is str else "(no message)"
    except BaseException:  # a __str__ of the code's making may raise
        message = "(the exception's message could not be read)"
    return type(exc).__name__, message[:_MESSAGE_LIMIT]


_FACTORY_NAMES = ("int", "float", "complex", "str", "bytes", "bool", "list", "tuple", "dict",
                  "set", "frozenset")  # fmt: skip
_MAX_INT_BITS = 16_384
_MAX_TEXT = 1_000_000  # characters (or bytes) in one string
_NAMEDTUPLE_OWN = frozenset(
    {"__doc__", "__slots__", "_fields", "_field_defaults", "__new__", "_make", "_replace",
     "__repr__", "_asdict", "__getnewargs__", "__match_args__", "__module__", "__orig_bases__",
     "__annotations__", "__qualname__", "__dict__", "__weakref__", "__firstlineno__",
     "__static_attributes__"}
)  # fmt: skip


# The stdlib's own classes, taken before the code runs (it may rebind `datetime.date` & co.);
# C modules, cheap to import. Counter and Fraction are pure Python and looked up when needed:
# a Counter is read with `dict.items` and a Fraction only ever meets the parent's constants.
_CLASSES = {
    ("datetime", "date"): _datetime.date,
    ("datetime", "datetime"): _datetime.datetime,
    ("datetime", "time"): _datetime.time,
    ("datetime", "timedelta"): _datetime.timedelta,
    ("datetime", "timezone"): _datetime.timezone,
    ("decimal", "Decimal"): _decimal.Decimal,
    ("collections", "deque"): _collections.deque,
    ("collections", "defaultdict"): _collections.defaultdict,
    ("collections", "OrderedDict"): _collections.OrderedDict,
}


def _stdlib(module: str, name: str) -> object:
    """The stdlib class `module.name` (None if its module is not loaded: no value of it exists)."""
    if (module, name) in _CLASSES:
        return _CLASSES[module, name]
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def _pairs(mapping: dict, depth: int, budget: list) -> list:
    return [
        [_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)]
        for k, v in dict.items(mapping)
    ]


def _tz(tz: object) -> object:
    if tz is None:
        return None
    if type(tz) is not _stdlib("datetime", "timezone"):
        raise _NotPlain(f"a time zone of type {type(tz).__name__} (only UTC or fixed offsets)")
    offset = tz.utcoffset(None)
    name = tz.tzname(None)
    if name == type(tz)(offset).tzname(None):
        name = None  # the default name of this offset: no name was given
    return [offset.days, offset.seconds, offset.microseconds, name]


def _is_named_tuple(kind: type) -> bool:
    fields = kind.__dict__.get("_fields")
    return (
        kind.__bases__ == (tuple,)
        and type(fields) is tuple
        and all(type(f) is str for f in fields)
        # its own methods are fine; a dunder of its own (`__eq__`, `__iter__`, ...) is not
        and not any(
            name.startswith("__") and name.endswith("__")
            for name in set(kind.__dict__) - set(fields) - _NAMEDTUPLE_OWN
        )
    )


def _encode(value: object, depth: int, budget: list) -> object:
    """The plain-data JSON form of `value` (see plain.py); exact types only."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise _NotPlain("the value is too large or too deeply nested")
    kind = type(value)
    if kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise _NotPlain(f"an int of more than {_MAX_INT_BITS} bits is too large")
        return value
    if value is None or kind is bool or kind is float:
        return value
    if kind is str or kind is bytes:
        if len(value) > _MAX_TEXT:
            raise _NotPlain(f"a {kind.__name__} of more than {_MAX_TEXT} items is too large")
        return value if kind is str else {"bytes": value.hex()}
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [_encode(item, depth + 1, budget) for item in value]}
    if kind is dict:
        return {"dict": _pairs(value, depth, budget)}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    if kind is range:
        return {"range": [_encode(v, depth + 1, budget) for v in (value.start, value.stop,
                                                                     value.step)]}  # fmt: skip
    if kind is _stdlib("collections", "Counter") or kind is _stdlib("collections", "OrderedDict"):
        return {kind.__name__: _pairs(value, depth, budget)}
    if kind is _stdlib("collections", "defaultdict"):
        factory = value.default_factory
        name = getattr(factory, "__name__", None)
        if factory is not None and (name not in _FACTORY_NAMES or factory is not getattr(
                builtins, name, None)):  # fmt: skip
            raise _NotPlain("a defaultdict whose default_factory is not a builtin type")
        return {"defaultdict": [name if factory is not None else None,
                                _pairs(value, depth, budget)]}  # fmt: skip
    if kind is _stdlib("collections", "deque"):
        return {"deque": [value.maxlen, [_encode(v, depth + 1, budget) for v in value]]}
    if kind is _stdlib("decimal", "Decimal"):
        return {"Decimal": str(value)}
    if kind is _stdlib("fractions", "Fraction"):
        return {"Fraction": [_encode(value.numerator, depth + 1, budget),
                             _encode(value.denominator, depth + 1, budget)]}  # fmt: skip
    if kind is _stdlib("datetime", "date"):
        return {"date": [value.year, value.month, value.day]}
    if kind is _stdlib("datetime", "timedelta"):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if kind is _stdlib("datetime", "time"):
        return {"time": [value.hour, value.minute, value.second, value.microsecond, value.fold,
                         _tz(value.tzinfo)]}  # fmt: skip
    if kind is _stdlib("datetime", "datetime"):
        return {
            "datetime": [
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
                value.fold,
                _tz(value.tzinfo),
            ]
        }
    if issubclass(kind, tuple) and _is_named_tuple(kind):
        items = [tuple.__getitem__(value, i) for i in range(tuple.__len__(value))]
        return {"namedtuple": [kind.__name__, list(kind._fields),
                               [_encode(v, depth + 1, budget) for v in items]]}  # fmt: skip
    raise _NotPlain(f"a value of type {kind.__name__} is not plain data")


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
        checks, ended = _run_test(test["program"], index, namespace, test_timeout)
        duration = round(perf() - started, 6)
        record = {"event": "checks", "index": index, "checks": checks, "ended": ended,
                  "duration_s": duration}  # fmt: skip
        report(record)
    report({"event": "done"})
    return 0


def _run_test(program: str, index: int, namespace: dict, test_timeout: float) -> tuple:
    """Run one rewritten test: its probes collect the operands of every judgement, in order.

    The probes never compare anything: the parent holds the expected values and decides.
    `__liftdspy_plain__` only checks that a value the test's own control flow looks at is
    plain data (so no `__bool__` or `__eq__` of the code steers it)."""
    checks: list = []

    def check(judgement: int, *thunks: object) -> None:
        items = []
        for thunk in thunks:
            try:
                items.append({"value": _encode(thunk(), 0, [_MAX_NODES])})
            except _TestTimeout:
                raise
            except _NotPlain as exc:
                items.append({"error_type": "NotPlainData", "message": str(exc)})
            except BaseException as exc:
                error_type, message = _describe(exc)
                items.append({"error_type": error_type, "message": message})
        checks.append({"id": judgement, "items": items})
        if len(checks) > _MAX_CHECKS:
            raise _TooManyChecks()

    def plain(value: object) -> object:
        try:
            _encode(value, 0, [_MAX_NODES])
        except _NotPlain as exc:
            raise TypeError(f"NotPlainData: {exc}") from None
        return value

    namespace["__liftdspy_check__"] = check
    namespace["__liftdspy_plain__"] = plain
    ended: dict = {"kind": "ok"}
    try:
        compiled = compile(program, f"<test {index}>", "exec")
        signal.setitimer(signal.ITIMER_REAL, test_timeout)
        try:
            exec(compiled, namespace)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TestTimeout:
        ended = {"kind": "timeout", "message": f"test exceeded {test_timeout:g} s"}
    except _TooManyChecks:
        ended = {"kind": "raised", "error_type": "TooManyChecks",
                 "message": f"the test made more than {_MAX_CHECKS} checks"}  # fmt: skip
    except BaseException as exc:
        error_type, message = _describe(exc)
        ended = {"kind": "raised", "error_type": error_type, "message": message}
    return checks, ended


def _finish(code: int) -> None:
    """Flush and leave at once: skip atexit handlers and threads the user code left behind."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _finish(main())
