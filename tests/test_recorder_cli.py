"""`liftdspy cache stats|export|import|clear` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_recorder_scripted import ScriptedEngine, make_request
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.lm import RecordingEngine, RecordingStore
from liftdspy.lm.store import CACHE_DIR_ENV

runner = CliRunner()


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A named store `demo` under a temporary cache dir: 3 calls of one model, 2 of another."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    store_path = tmp_path / "cache" / "diskcache" / "demo"
    for model, count in (("model-a", 3), ("model-b", 2)):
        recorder = RecordingEngine(ScriptedEngine(model=model), store_path, "record")
        for i in range(count):
            recorder.complete(make_request(f"question {i}"))
        recorder.close()
    return tmp_path / "cache"


def test_stats_counts_entries_per_model(recorded: Path) -> None:
    result = runner.invoke(app, ["cache", "stats", "--name", "demo"])
    assert result.exit_code == 0, result.output
    assert "model-a" in result.output and "model-b" in result.output
    assert "total" in result.output and "5" in result.output and "KiB" in result.output


def test_stats_of_a_missing_store_fails_with_its_path(recorded: Path) -> None:
    result = runner.invoke(app, ["cache", "stats", "--name", "nothing"])
    assert result.exit_code == 2  # bad input: no store by that name
    assert "diskcache/nothing" in result.stderr.replace("\n", "") and result.stdout == ""


def test_export_then_import_elsewhere(recorded: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["cache", "export", "--name", "demo"])
    assert result.exit_code == 0, result.output
    jsonl = recorded / "recordings" / "demo.jsonl"
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 5

    target = tmp_path / "elsewhere"
    result = runner.invoke(app, ["cache", "import", str(jsonl), "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert "Imported 5" in result.output
    assert len(RecordingStore(target)) == 5


def test_import_of_a_bad_file_names_file_and_line(recorded: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n{broken\n", encoding="utf-8")
    result = runner.invoke(app, ["cache", "import", str(bad), "--name", "demo"])
    assert result.exit_code == 2  # bad input: the file
    assert "bad.jsonl:2" in result.stderr.replace("\n", "") and result.stdout == ""


def test_clear_asks_first_and_obeys_yes(recorded: Path) -> None:
    store_path = recorded / "diskcache" / "demo"
    declined = runner.invoke(app, ["cache", "clear", "--name", "demo"], input="n\n")
    assert declined.exit_code == 1 and len(RecordingStore(store_path)) == 5

    confirmed = runner.invoke(app, ["cache", "clear", "--name", "demo"], input="y\n")
    assert confirmed.exit_code == 0 and len(RecordingStore(store_path)) == 0

    again = runner.invoke(app, ["cache", "clear", "--path", str(store_path), "--yes"])
    assert again.exit_code == 0 and "Deleted 0" in again.output
