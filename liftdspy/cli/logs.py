"""Quiet by default: the terminal shows liftdspy's own warnings, progress and results; the
chatter of DSPy, MIPROv2, LiteLLM, optuna and MLflow (log records, `warnings`, `print()`s) goes
to the session's log file, which commands that make an MLflow run log to it as the artifact
`logs/liftdspy.log`. `liftdspy -v` sends everything to the terminal instead (as before).

Set up once per command by the root callback (`setup`); the worker processes a command spawns
(`study run --workers N`) start with `worker_setup()`, the same routing into the same log file
(records appended, one write each), so their chatter is quiet too. The log file is
`$LIFTDSPY_LOG_DIR/liftdspy-<time>-<pid>.log` (default: a `liftdspy-logs` folder in the system's
temporary directory), created on the first record. Secrets never reach it: the values of
environment variables named like credentials (`*_API_KEY`, `*_TOKEN`, `*_PASSWORD`, ...) and
credentials inside URLs are replaced by `<redacted>` (`liftdspy.redaction`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.logging import RichHandler

from liftdspy.cli import output
from liftdspy.redaction import REDACTED, is_secret_key, redact_text

LOG_ARTIFACT = "logs/liftdspy.log"
LOG_DIR_ENV = "LIFTDSPY_LOG_DIR"
TERMINAL_HANDLER = "liftdspy-terminal"
FILE_HANDLER = "liftdspy-file"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that libraries give their own stderr handler (and stop from propagating).
LIBRARY_LOGGERS = (
    "dspy",
    "mlflow",
    "optuna",
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "alembic",
    "huey",
    "sqlalchemy.engine",
)
# Progress bars that have no place in a log: MLflow's "Downloading artifacts", tqdm (dspy.Evaluate).
QUIET_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "TQDM_DISABLE": "1"}
# tqdm's positional parameters before `disable` (iterable, desc, total, leave, file, ncols,
# mininterval, maxinterval, miniters, ascii): a call passing more sets `disable` itself.
TQDM_ARGS_BEFORE_DISABLE = 10
PRINTS_LOGGER = "stdout"
MIN_SECRET_CHARS = 8


@dataclass
class SessionLog:
    path: Path
    verbose: bool


_session: SessionLog | None = None


def current() -> SessionLog | None:
    return _session


def _secrets() -> list[str]:
    values = {
        value
        for name, value in os.environ.items()
        if is_secret_key(name) and len(value) >= MIN_SECRET_CHARS
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return redact_text(text)


class _RedactFilter(logging.Filter):
    """Credentials out of the record's message (before any handler formats it)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class _RedactFormatter(logging.Formatter):
    """Also tracebacks and stack text."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(FILE_FORMAT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class _OwnRecords(logging.Filter):
    """The terminal, when not verbose: liftdspy's own warnings and errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "liftdspy" or record.name.startswith("liftdspy.")
        return own and record.levelno >= logging.WARNING


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _terminal_handler(verbose: bool) -> logging.Handler:
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(
            console=output.err(), show_path=False, rich_tracebacks=True
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.set_name(TERMINAL_HANDLER)
    if not verbose:
        handler.addFilter(_OwnRecords())
    return handler


def default_log_path() -> Path:
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "liftdspy-logs")
    return folder / f"liftdspy-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def adopt_library_loggers() -> None:
    """Make the libraries' loggers propagate to the root (our handlers) instead of printing on
    their own. Idempotent; call again after a library was imported (LiteLLM is imported late)."""
    try:
        import optuna  # cheap once DSPy is loaded; MIPROv2 imports it during compile
    except ImportError:
        optuna = None
    if optuna is not None:
        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def _quiet_imported_tqdm() -> None:
    """tqdm reads `TQDM_DISABLE` once, when it is imported (`tqdm.utils.envwrap`); DSPy imports
    it before `setup` runs, so a bar that passes no `disable` (GEPA's "GEPA Optimization") would
    still draw on the terminal. Give the imported class the same default; `teardown` undoes it."""
    module = sys.modules.get("tqdm.std")
    if module is None or os.environ.get("TQDM_DISABLE") != "1":
        return
    cls = module.tqdm
    if hasattr(cls.__init__, "_liftdspy_original"):
        return
    original = cls.__init__

    @functools.wraps(original)
    def quiet_init(self, *args, **kwargs):
        if len(args) <= TQDM_ARGS_BEFORE_DISABLE:
            kwargs.setdefault("disable", True)
        original(self, *args, **kwargs)

    quiet_init._liftdspy_original = original  # type: ignore[attr-defined]
    cls.__init__ = quiet_init


def _restore_tqdm() -> None:
    module = sys.modules.get("tqdm.std")
    if module is None:
        return
    original = getattr(module.tqdm.__init__, "_liftdspy_original", None)
    if original is not None:
        module.tqdm.__init__ = original


def setup(verbose: bool, log_path: Path | None = None) -> SessionLog:
    """Route every log record, warning and library print of this command (see the module doc)."""
    global _session
    if not verbose:
        for name, value in QUIET_ENV.items():
            os.environ.setdefault(name, value)
        _quiet_imported_tqdm()
    else:
        _restore_tqdm()
    secrets = _secrets()
    path = log_path or default_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() in (TERMINAL_HANDLER, FILE_HANDLER):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    file_handler.set_name(FILE_HANDLER)
    file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler.setFormatter(_RedactFormatter(secrets))
    file_handler.addFilter(_RedactFilter(secrets))
    terminal = _terminal_handler(verbose)
    terminal.addFilter(_RedactFilter(secrets))
    root.addHandler(terminal)
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)
    adopt_library_loggers()
    _session = SessionLog(path=path, verbose=verbose)
    return _session


def _setup_worker(path: Path, verbose: bool) -> None:
    """In a spawned worker, before its first task: this command's routing (see `worker_setup`)."""
    import dspy  # noqa: F401 - DSPy and MLflow add their stderr handlers on import: import
    import mlflow  # noqa: F401 - them first, so that `setup` takes the handlers away

    setup(verbose, path)
    if not verbose:
        sys.stdout = _LinesToLog()  # the whole worker runs DSPy/MIPROv2, which print()


def worker_setup() -> Callable[[], None] | None:
    """The initialiser for this command's worker processes (picklable, for spawned workers):
    their records, warnings and prints go where this command's go (the session's log file; the
    terminal shows liftdspy's own warnings only, everything with -v). None before `setup`."""
    if _session is None:
        return None
    return functools.partial(_setup_worker, _session.path, _session.verbose)


def teardown() -> None:
    """Remove this module's handlers (the command is over; an in-process caller goes on)."""
    global _session
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() in (TERMINAL_HANDLER, FILE_HANDLER):
            root.removeHandler(handler)
            handler.close()
    logging.captureWarnings(False)
    _restore_tqdm()
    _session = None


class _LinesToLog(io.TextIOBase):
    """A stdout stand-in: every line printed becomes an INFO record of logger `stdout`."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(PRINTS_LOGGER)
        self.lock = threading.Lock()
        self.pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.logger.info(line)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            line, self.pending = self.pending, ""
        if line.strip():
            self.logger.info(line)


@contextlib.contextmanager
def captured_prints() -> Iterator[None]:
    """While running DSPy/MIPROv2 (which `print()`), send stdout to the log file; not with -v."""
    adopt_library_loggers()
    if _session is None or _session.verbose:
        yield
        return
    stream = _LinesToLog()
    try:
        with contextlib.redirect_stdout(stream):  # type: ignore[type-var]
            yield
    finally:
        stream.flush()
        adopt_library_loggers()


def flush() -> Path | None:
    """The log file, written out (None when nothing was logged yet)."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == FILE_HANDLER:
            handler.flush()
    if _session is None or not _session.path.is_file():
        return None
    return _session.path


def log_to_run(run_id: str, tracking_uri: str | None) -> bool:
    """Log this session's log file to the MLflow run as `logs/liftdspy.log`; False (with a
    warning on stderr) when it cannot."""
    path = flush()
    if path is None:
        return False
    try:
        from mlflow.tracking import MlflowClient

        from liftdspy.tracking import resolve_tracking_uri

        client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
        client.log_text(run_id, path.read_text(encoding="utf-8"), LOG_ARTIFACT)
    except Exception as exc:
        output.warning(f"could not log {path} to run {run_id}: {exc}")
        return False
    return True
