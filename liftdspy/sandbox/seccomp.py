"""The seccomp filter bubblewrap installs before the interpreter starts (`bwrap --seccomp FD`).

Built with libseccomp through `pyseccomp`: the calls in `DENIED_SYSCALLS` (ptrace, mount,
keyring, bpf, perf, io_uring, kernel modules and the like) fail with EPERM and sockets other than
AF_UNIX fail with EAFNOSUPPORT. For a root caller, where bubblewrap creates no user namespace (see
`isolation`), new user namespaces are refused here too: `clone` with CLONE_NEWUSER fails with
EPERM and `clone3`, whose flags a filter cannot read, with ENOSYS (C libraries then fall back to
`clone`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import tempfile

logger = logging.getLogger(__name__)

CLONE_NEWUSER = 0x10000000

DENIED_SYSCALLS = [
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "iopl",
    "ioperm",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "quotactl",
    "syslog",
    "clock_settime",
    "settimeofday",
    "adjtimex",
    "fanotify_init",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
]


def seccomp_program() -> tuple[bytes | None, str]:
    """The BPF program for `bwrap --seccomp` for this caller, or why there is none."""
    return _program(no_user_namespaces=os.geteuid() == 0)


@functools.cache
def _program(*, no_user_namespaces: bool) -> tuple[bytes | None, str]:
    try:
        import pyseccomp as seccomp
    except Exception as exc:  # pyseccomp missing, or libseccomp.so.2 not found
        return None, f"pyseccomp/libseccomp unavailable ({exc}); `pip install pyseccomp`"
    try:
        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for name in DENIED_SYSCALLS:
            try:
                rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
            except Exception:  # a syscall this libseccomp does not know
                logger.debug("seccomp: unknown syscall %s", name)
        rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.NE, 1))
        if no_user_namespaces:
            rules.add_rule(
                seccomp.ERRNO(errno.EPERM),
                "clone",
                seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
            )
            rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with tempfile.TemporaryFile() as out:
            rules.export_bpf(out)
            out.seek(0)
            return out.read(), "pyseccomp"
    except Exception as exc:
        return None, f"could not build the seccomp filter: {exc}"


def seccomp_pipe(program: bytes) -> int:
    """A pipe read end holding the BPF program (bwrap reads it to EOF)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, program)
    finally:
        os.close(write_fd)
    return read_fd
