"""Which OS-level isolation this machine allows, detected once per process.

Two mechanisms are used when available, both need root:

* a private network namespace (`unshare --net`): the sandbox has only a down loopback device,
  so every connection fails in the kernel;
* a separate, unused uid/gid per run (`setpriv --reuid/--regid --clear-groups`): the sandbox
  cannot write files owned by root or by other runs, cannot signal other processes, cannot read
  other processes' `/proc/PID/environ`, and RLIMIT_NPROC=0 really forbids fork (it is counted per
  uid and ignored for root).

When a mechanism is missing (not root, no `unshare`, container without CAP_SYS_ADMIN) the sandbox
falls back to the harness's audit hook alone, and says so in the log.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading

from pydantic import BaseModel

logger = logging.getLogger(__name__)

# Unused uids handed to sandbox runs; each concurrent run in this process gets a distinct one.
_UID_BASE = 2_000_000
_UID_SPAN = 1_000_000


class Isolation(BaseModel):
    """The OS-level mechanisms that work here."""

    network_namespace: bool
    separate_uid: bool

    def describe(self) -> str:
        parts = [
            "network namespace" if self.network_namespace else "no network namespace",
            "separate uid" if self.separate_uid else "same uid as the caller",
        ]
        return ", ".join(parts)


def _works(command: list[str]) -> bool:
    try:
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


@functools.cache
def detect_isolation() -> Isolation:
    """Try each mechanism once with a trivial Python process and cache the answer."""
    python = [sys.executable, "-I", "-B", "-c", "pass"]
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    is_root = os.geteuid() == 0
    network = bool(is_root and unshare and _works([unshare, "--net", "--", *python]))
    uid = str(_UID_BASE + _UID_SPAN - 1)
    separate_uid = bool(
        is_root
        and setpriv
        and _works([setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *python])
    )
    isolation = Isolation(network_namespace=network, separate_uid=separate_uid)
    logger.debug("sandbox isolation: %s", isolation.describe())
    if not (network and separate_uid):
        logger.warning(
            "sandbox runs without full OS isolation (%s); the harness audit hook still blocks "
            "sockets, process creation and writes outside the work directory",
            isolation.describe(),
        )
    return isolation


class UidPool:
    """Hands out distinct unused uids to concurrent runs (random start avoids other processes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use: set[int] = set()

    def acquire(self) -> int:
        with self._lock:
            while True:
                uid = _UID_BASE + secrets.randbelow(_UID_SPAN - 1)
                if uid not in self._in_use:
                    self._in_use.add(uid)
                    return uid

    def release(self, uid: int) -> None:
        with self._lock:
            self._in_use.discard(uid)


def command_prefix(isolation: Isolation, uid: int | None) -> list[str]:
    """The wrapper commands that put a process into the isolation (empty when none works)."""
    prefix: list[str] = []
    if isolation.network_namespace:
        prefix += [shutil.which("unshare") or "unshare", "--net", "--"]
    if isolation.separate_uid and uid is not None:
        prefix += [
            shutil.which("setpriv") or "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--",
        ]
    return prefix
