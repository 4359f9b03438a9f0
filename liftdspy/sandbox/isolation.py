"""OS isolation for sandbox runs: bubblewrap, for root and non-root users alike.

A non-root caller runs `bwrap <layers> python -I -S -B harness.py`; bubblewrap (never setuid
here) creates an unprivileged **user namespace** (`--disable-userns`: no nested namespaces) and
maps the caller's uid to uid 1000 inside.

A root caller runs bubblewrap itself as root, without a user namespace:
`bwrap <layers> setpriv --reuid=N ... python -I -S -B harness.py`. bubblewrap sets up every
namespace and bind mount with root's access, so a Python runtime below a 0700 home (a pyenv build
in /root) is bound without changing any permission; the last step before the interpreter,
`setpriv`, drops to an unused uid N with no groups and empties every capability set (bubblewrap
keeps only CAP_SETUID/CAP_SETGID/CAP_SETPCAP for it, and no-new-privs forbids regaining any). The
code then runs as uid N, not 0, in the host's view: it cannot write what root owns, signal root's
processes or exceed RLIMIT_NPROC (root is exempt from it, N is not). bubblewrap run as real root
with `--unshare-user --uid N` would map N to host uid 0, and in setuid mode it resolves bind
sources as the calling user, so neither would do.

The layers, for both:

* **mount namespace** holding only `/usr` (system libraries) and the Python runtime with its
  standard library, read-only; the runtime's own site-packages is hidden under an empty tmpfs.
  No project tree, home directory, recordings, datasets or virtualenv;
* **private tmpfs** for the work directory (`/sandbox`), `/tmp` and `/dev/shm`: gone with the
  namespace when the run ends; a minimal `/dev` and a `/proc` of the new pid namespace;
* **network namespace** with no interface but a down loopback, and **ipc/uts/cgroup** namespaces;
* **pid namespace**: `/proc` shows only the sandbox; other processes cannot be signalled;
* **no new privileges** (setuid binaries do not elevate), **all capabilities dropped**, a new
  session (no terminal injection), killed with its parent;
* **seccomp** (`liftdspy.sandbox.seccomp`): ptrace, mount, keyring, bpf, perf, io_uring,
  kernel-module and similar calls fail with EPERM; sockets other than AF_UNIX fail; for root's
  runs also `clone(CLONE_NEWUSER)` and `clone3`, so no user namespace can be created;
* **rlimits** set by the harness: address space, CPU, file size, open files and
  RLIMIT_NPROC=0 (no fork, no thread: it counts per uid, and the sandbox never runs as root).

`detect_isolation()` starts one probe sandbox and reports what it observed from inside; the command
line itself is built by `liftdspy.sandbox.bwrap`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from liftdspy.errors import LiftdspyError
from liftdspy.sandbox.bwrap import (
    INNER_ID,
    SANDBOX_DIR,
    TMPFS_BYTES,
    bwrap_command,
    bwrap_version,
    find_bwrap,
    minimal_env,
    runtime_paths,
    sandbox_uid,
    setpriv_path,
    supports_tmpfs_size,
)
from liftdspy.sandbox.seccomp import seccomp_pipe, seccomp_program
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

__all__ = [  # the command builders are re-exported for callers of the earlier single module
    "Isolation",
    "IsolationUnavailable",
    "Layer",
    "RootSetup",
    "bwrap_command",
    "detect_isolation",
    "minimal_env",
    "require_isolation",
    "runtime_paths",
    "sandbox_uid",
    "seccomp_pipe",
    "seccomp_program",
    "supports_tmpfs_size",
]

_PROBE = """
import ctypes, json, os, socket
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.close(); inet = True
except OSError:
    inet = False
libc = ctypes.CDLL(None, use_errno=True)
userns_blocked = libc.unshare(0x10000000) != 0  # CLONE_NEWUSER
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "userns_blocked": userns_blocked, "no_new_privs": status["NoNewPrivs"].strip(),
    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
    "seccomp": status["Seccomp"].strip(), "pid": os.getpid(),
    "proc": sorted(p for p in os.listdir('/proc') if p.isdigit()),
    "net": [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]],
    "inet_socket": inet,
    "root": sorted(os.listdir('/')),
}))
"""


RootSetup = Literal["bwrap-as-root", "drop-first"]


class IsolationUnavailable(LiftdspyError, RuntimeError):
    """Running untrusted code was asked for, but the OS isolation cannot be set up."""


class Layer(BaseModel):
    """One isolation mechanism, and whether it was observed in force inside the probe."""

    name: str
    in_force: bool
    detail: str = ""


class Isolation(BaseModel):
    """What a probe sandbox saw from inside, and what is missing (with how to get it)."""

    version: Version = "1"
    available: bool
    bwrap: str | None = None
    bwrap_version: str | None = None
    as_root: bool = False
    # root only: "bwrap-as-root" (the design), or "drop-first" when this root may not create
    # namespaces itself (a container's root without CAP_SYS_ADMIN): setpriv drops to the unused
    # uid before an unprivileged bubblewrap, which then needs the runtime to be reachable by it
    root_setup: RootSetup | None = None
    seccomp: bool = False
    layers: list[Layer] = []
    missing: list[str] = []

    def describe(self) -> str:
        if not self.available:
            return "no OS isolation: " + "; ".join(self.missing)
        on = [layer.name for layer in self.layers if layer.in_force]
        off = [layer.name for layer in self.layers if not layer.in_force]
        text = "bubblewrap: " + ", ".join(on)
        return text + (f" (missing: {', '.join(off)})" if off else "")


# --- the probe -------------------------------------------------------------------------------


@functools.cache
def detect_isolation() -> Isolation:
    """Start one probe sandbox and report what it observed; cached for the process."""
    as_root = os.geteuid() == 0
    bwrap, origin = find_bwrap()
    if bwrap is None:
        return Isolation(available=False, as_root=as_root, missing=[origin])
    version = bwrap_version(bwrap)
    missing: list[str] = []
    if as_root and not setpriv_path():
        return Isolation(
            available=False,
            bwrap=bwrap,
            as_root=True,
            missing=[
                "running as root needs `setpriv` (util-linux) below /usr to drop to an unused "
                "uid inside the sandbox; install util-linux"
            ],
        )
    program, seccomp_note = seccomp_program()
    if program is None:
        missing.append(seccomp_note)
    failures = []
    for setup in ("bwrap-as-root", "drop-first") if as_root else (None,):
        completed = _run_probe(bwrap, version, program, drop_first=setup == "drop-first")
        if isinstance(completed, subprocess.CompletedProcess) and completed.returncode == 0:
            break
        reason = (
            str(completed)
            if not isinstance(completed, subprocess.CompletedProcess)
            else _probe_failure(completed.stderr, setup)
        )
        failures.append(f"{setup}: {reason}" if setup else reason)
    else:
        return Isolation(
            available=False, bwrap=bwrap, bwrap_version=version, as_root=as_root, missing=failures
        )
    if setup == "drop-first":
        logger.warning(
            "sandbox: bubblewrap could not set up namespaces as root (%s); dropping to an unused "
            "uid before bubblewrap instead",
            failures[0],
        )
    seen = json.loads(completed.stdout)
    layers = _layers(seen, setup, program is not None, supports_tmpfs_size(version))
    missing += [f"{layer.name}: {layer.detail}" for layer in layers if not layer.in_force]
    isolation = Isolation(
        available=True,
        bwrap=bwrap,
        bwrap_version=version,
        as_root=as_root,
        root_setup=setup,
        seccomp=program is not None,
        layers=layers,
        missing=missing,
    )
    logger.debug("sandbox isolation: %s", isolation.describe())
    return isolation


def _run_probe(
    bwrap: str, version: str | None, program: bytes | None, *, drop_first: bool
) -> subprocess.CompletedProcess | Exception:
    _, executable = runtime_paths()
    seccomp_fd = seccomp_pipe(program) if program else None
    command = bwrap_command(
        bwrap,
        Path(__file__).with_name("harness.py"),
        env=minimal_env(),
        uid=sandbox_uid(),
        seccomp_fd=seccomp_fd,
        sized_tmpfs=supports_tmpfs_size(version),
        argv=[executable, "-I", "-S", "-B", "-c", _PROBE],
        drop_first=drop_first,
    )
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=minimal_env(),
            pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return exc
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)


def _probe_failure(stderr: str, setup: RootSetup | None) -> str:
    text = " ".join(stderr.strip().splitlines()[-3:]) or "no error output"
    hints = []
    if setup == "bwrap-as-root" and "namespace" in text.lower():
        hints.append(
            "as root, bubblewrap creates the namespaces itself and needs CAP_SYS_ADMIN, which a "
            "container's root often lacks"
        )
    elif setup == "drop-first" and "source path" in text.lower():
        hints.append(
            f"the unused uid cannot reach the Python runtime {runtime_paths()[0]}: run as a "
            "non-root user with a Python of its own, or give root CAP_SYS_ADMIN"
        )
    elif "namespace" in text.lower() or "permission" in text.lower():
        hints.append(
            "unprivileged user namespaces must be allowed (sysctl "
            "kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, and on Ubuntu "
            "kernel.apparmor_restrict_unprivileged_userns=0); in a container, run it with "
            "--security-opt seccomp=unconfined or equivalent"
        )
    return f"bubblewrap could not start a sandbox: {text}" + (
        " (" + "; ".join(hints) + ")" if hints else ""
    )


def _layers(seen: dict, root_setup: RootSetup | None, seccomp: bool, sized: bool) -> list[Layer]:
    """The layers a probe run observed (`root_setup` None: a non-root caller)."""
    root_entries = set(seen["root"])
    allowed = {"usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32", "proc", "dev", "tmp"}
    allowed |= {"sandbox", "opt"} | {Path(p).parts[1] for p in runtime_paths() if p != "/"}
    uid = sandbox_uid()
    if root_setup != "bwrap-as-root":
        first = Layer(
            name="user namespace",
            in_force=seen["userns_blocked"],
            detail="unprivileged; nested namespaces disabled",
        )
        whose = "the caller's uid" if root_setup is None else f"unused uid {uid}, set before bwrap"
        separate = Layer(
            name="separate uid",
            in_force=seen["uid"] == int(INNER_ID),
            detail=f"{whose}, seen as {seen['uid']} inside",
        )
    else:
        first = Layer(
            name="privilege drop",
            in_force=seen["userns_blocked"] and not seen["groups"],
            detail="bubblewrap runs as root and binds the runtime, then setpriv drops to an "
            "unused uid with no groups or capabilities; no user namespace can be created",
        )
        separate = Layer(
            name="separate uid",
            in_force=seen["uid"] == uid and seen["gid"] == uid,
            detail=f"uid {seen['uid']} (not root) in the host's view",
        )
    return [
        first,
        separate,
        Layer(
            name="mount namespace",
            in_force=root_entries <= allowed,
            detail="read-only /usr and Python runtime; visible: " + ", ".join(sorted(root_entries)),
        ),
        Layer(
            name="private tmpfs",
            in_force=True,
            detail=f"{SANDBOX_DIR}, /tmp, /dev/shm"
            + (f" ({TMPFS_BYTES // 2**20} MiB each)" if sized else " (unsized: bwrap < 0.10)"),
        ),
        Layer(
            name="network namespace",
            in_force=seen["net"] == ["lo"] or not seen["net"],
            detail="interfaces: " + (", ".join(seen["net"]) or "none"),
        ),
        Layer(
            name="pid namespace",
            in_force=len(seen["proc"]) <= 3,
            detail=f"processes visible: {len(seen['proc'])}",
        ),
        Layer(
            name="no new privileges",
            in_force=seen["no_new_privs"] == "1",
            detail=f"NoNewPrivs={seen['no_new_privs']}",
        ),
        Layer(
            name="capabilities dropped",
            in_force=int(seen["cap_eff"], 16) == 0 and int(seen["cap_bnd"], 16) == 0,
            detail=f"CapEff={seen['cap_eff']} CapBnd={seen['cap_bnd']}",
        ),
        Layer(
            name="seccomp",
            in_force=seccomp and seen["seccomp"] == "2" and not seen["inet_socket"],
            detail=f"Seccomp={seen['seccomp']}"
            + ("" if seccomp else " (pyseccomp/libseccomp missing)"),
        ),
        Layer(name="rlimits", in_force=True, detail="AS, CPU, FSIZE, NOFILE, NPROC=0, CORE=0"),
    ]


def require_isolation() -> Isolation:
    """The isolation in force, or `IsolationUnavailable` saying what is missing and how."""
    isolation = detect_isolation()
    if not isolation.available:
        raise IsolationUnavailable(
            "cannot run untrusted code: OS isolation is unavailable: "
            + "; ".join(isolation.missing)
            + ". To run without isolation anyway (UNSAFE: the code can read your files and "
            "secrets), pass --unsafe-no-isolation or set `sandbox.isolation: none`."
        )
    return isolation
