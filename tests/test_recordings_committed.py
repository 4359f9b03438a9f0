"""A committed `cache/recordings/<name>.jsonl` replays without a manual `liftdspy cache import`.

The cache directory of a fresh clone holds only the committed JSONL files (`cache/diskcache/` is
gitignored); each test here points `LIFTDSPY_CACHE_DIR` at such a directory in tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from test_recorder_scripted import ScriptedEngine, scripted_lm
from typer.testing import CliRunner

from liftdspy.lm import LMConfig, RecorderConfig, RecordingMissError, build_lm
from liftdspy.lm.recorder import RECORDER_MODE_ENV
from liftdspy.lm.recordings import committed_recording
from liftdspy.lm.store import CACHE_DIR_ENV, RecordingStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clone_cache(tmp_path, monkeypatch) -> Path:
    """An empty cache dir like a fresh clone's (only `recordings/`), as LIFTDSPY_CACHE_DIR."""
    cache = tmp_path / "clone" / "cache"
    (cache / "recordings").mkdir(parents=True)
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    return cache


def _named_lm(mode: str, engine: ScriptedEngine):
    config = LMConfig(
        kind="local", model=engine.model, recorder=RecorderConfig(mode=mode, name="q")
    )
    return build_lm(config, engine=engine)


def test_an_offline_lm_replays_the_committed_jsonl_of_its_name(clone_cache, tmp_path):
    # Record two calls elsewhere and commit them as recordings/q.jsonl.
    live, _ = scripted_lm(tmp_path / "elsewhere", mode="record")
    first, second = live("one")[0], live("two")[0]
    RecordingStore(tmp_path / "elsewhere").export_jsonl(clone_cache / "recordings" / "q.jsonl")
    assert committed_recording("q") == clone_cache / "recordings" / "q.jsonl"
    assert not (clone_cache / "diskcache").exists()

    fresh = ScriptedEngine()
    offline = _named_lm("offline", fresh)
    assert offline("one")[0] == first and offline("two")[0] == second
    assert fresh.calls == 0
    assert (clone_cache / "diskcache" / "q").is_dir()  # imported into the named store


def test_without_a_committed_file_offline_still_fails_loudly(clone_cache):
    offline = _named_lm("offline", ScriptedEngine())
    with pytest.raises(RecordingMissError, match="No recording"):
        offline("one")


def test_a_re_committed_jsonl_is_imported_again(clone_cache, tmp_path):
    live, _ = scripted_lm(tmp_path / "elsewhere", mode="record")
    live("one")
    jsonl = clone_cache / "recordings" / "q.jsonl"
    RecordingStore(tmp_path / "elsewhere").export_jsonl(jsonl)
    _named_lm("offline", ScriptedEngine())("one")
    live("three")  # re-recorded: the committed file changes
    RecordingStore(tmp_path / "elsewhere").export_jsonl(jsonl)
    fresh = ScriptedEngine()
    assert _named_lm("offline", fresh)("three")
    assert fresh.calls == 0


@pytest.mark.local
@pytest.mark.slow
def test_the_demo_runs_offline_in_a_fresh_clone_without_cache_import(clone_cache, tmp_path):
    pytest.importorskip("llama_cpp", reason="the demo engine needs the `local` extra")
    shutil.copy(ROOT / "cache" / "recordings" / "demo.jsonl", clone_cache / "recordings")
    from liftdspy.cli import app

    result = CliRunner().invoke(
        app,
        [
            "run",
            str(ROOT / "experiments" / "demo.yaml"),
            "--recorder",
            "offline",
            "--set",
            f"tracking.uri=sqlite:///{tmp_path / 'clone.db'}",
        ],
    )
    mlflow.end_run()
    assert result.exit_code == 0, result.output
    assert "optimized" in result.output and "baseline" in result.output
    assert (clone_cache / "diskcache" / "demo").is_dir()
