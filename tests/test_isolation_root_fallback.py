"""Root that may not create namespaces (a container's root without CAP_SYS_ADMIN) falls back.

bubblewrap run as root creates the namespaces itself, which needs CAP_SYS_ADMIN. Without it the
probe falls back to `drop-first`: setpriv drops to the unused uid before an unprivileged
bubblewrap, which works when that uid can reach the Python runtime. The child interpreter here is
a copy of the runtime in a directory others can traverse, started without CAP_SYS_ADMIN in its
bounding set (as root: `setpriv --bounding-set=-sys_admin`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sandbox_locked_runtime import copy_runtime, run_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop CAP_SYS_ADMIN")


@pytest.fixture
def open_runtime() -> Iterator[Path]:
    """A runtime copy below a fresh mode-0755 directory in /tmp (created with that mode)."""
    umask = os.umask(0o022)
    try:
        top = Path(tempfile.gettempdir()) / f"liftdspy-open-runtime-{os.getpid()}"
        top.mkdir(mode=0o755)
    finally:
        os.umask(umask)
    try:
        yield copy_runtime(Path(os.path.realpath(sys.base_prefix)), top / "python")
    finally:
        shutil.rmtree(top)


def test_root_without_cap_sys_admin_drops_first_and_keeps_every_layer(
    open_runtime: Path, tmp_path: Path
) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    secret = tmp_path / "secret.txt"
    secret.write_text("never readable", encoding="utf-8")
    no_sys_admin = (setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--")
    report = run_child(open_runtime, secret, prefix=no_sys_admin)

    assert report["available"], report["missing"]
    assert report["root_setup"] == "drop-first"
    assert "user namespace" in report["layers"] and all(report["layers"].values())
    assert report["outcomes"] == ["passed", "failed"]
    line = next(x for x in report["probe"].splitlines() if x.startswith("PROBE "))
    probe = json.loads(line.removeprefix("PROBE "))
    assert probe["uid"] == 1000 and probe["cap_eff"] == probe["cap_amb"] == "0000000000000000"
    assert probe["secret_file"] == "FileNotFoundError" and probe["fork"] != "done"
    assert "LIFTDSPY_TEST_SECRET" not in probe["env"]
