"""Studies on Ray: every cell a Ray task on a real local cluster this test starts
(`ray start --head` on 127.0.0.1 with 2 CPUs, stopped at the end). The study is recorded once by
the in-process executor, then run on Ray in offline mode from the same recording store: the same
cells finish with zero LM calls and the same per-example scores.

The LM is the test-only `FunctionEngine` of test_studies.py (imported by the Ray workers as
`test_studies:scripted_factory`, PYTHONPATH carries tests/).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from liftdspy.studies import load_study
from liftdspy.studies.executors import InProcessExecutor, RayCellExecutor
from liftdspy.studies.runner import prepare_study, run_study

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

if os.environ.get("CI") == "true":
    import ray
else:
    ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")

sys.path.insert(0, str(TESTS))
from test_studies import ENGINES, scripted_factory, write_study  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    binary = Path(sys.executable).with_name("ray")
    ray_bin = str(binary) if binary.exists() else shutil.which("ray")
    assert ray_bin, "the ray CLI is not installed"
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    start = [
        ray_bin,
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        temp_dir,  # short: Ray's socket paths must fit in 107 bytes
    ]
    started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=240)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_executor_replays_the_local_recording_with_the_same_results(
    tmp_path, ray_cluster, monkeypatch
):
    address, env = ray_cluster
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    ENGINES.clear()
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray-run"
    local_dir.mkdir(), ray_dir.mkdir()
    store = tmp_path / "shared-store"
    recorder = {"mode": "replay", "path": str(store)}
    lm = {"kind": "local", "model": "scripted-study", "recorder": recorder}
    local = run_study(
        prepare_study(load_study(write_study(local_dir, lm=lm))),
        InProcessExecutor(scripted_factory),
    )
    assert ENGINES and sum(e.calls for e in ENGINES) > 0

    offline = dict(lm, recorder={"mode": "offline", "path": str(store)})
    executor = RayCellExecutor(address, slots=2, engine_factory="test_studies:scripted_factory")
    on_ray = run_study(prepare_study(load_study(write_study(ray_dir, lm=offline))), executor)

    assert [r.status for r in on_ray.results] == ["finished"] * len(local.results)
    assert all(r.cost.live_calls == 0 for r in on_ray.results)
    assert {r.cell.id: r.scores for r in on_ray.results} == {
        r.cell.id: r.scores for r in local.results
    }
    assert {r.cell.id for r in on_ray.results} == {r.cell.id for r in local.results}
