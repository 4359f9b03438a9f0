"""RecordingStore: concurrent processes, a writer killed mid-stream, JSONL export/import."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_recorder_scripted import ScriptedEngine, make_request

from liftdspy.lm import RecordedCall, RecordingEngine, RecordingStore, ensure_imported
from liftdspy.lm.store import RecordingStoreError, read_jsonl, request_json

REPO = Path(__file__).resolve().parents[1]


def _write_many(store_path: str, writer: int, count: int) -> None:
    """Process body: record `count` distinct calls through a RecordingEngine."""
    recorder = RecordingEngine(ScriptedEngine(), store_path, "record")
    for i in range(count):
        recorder.complete(make_request(f"writer {writer} question {i}"))
    recorder.close()


def test_processes_write_one_store_concurrently(tmp_path: Path) -> None:
    store_path = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(store_path, w, 40)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    with RecordingStore(store_path) as store:
        entries = list(store.entries())
        assert len(entries) == 160
        texts = {entry.request["messages"][0]["parts"][0]["text"] for entry in entries}
        assert texts == {f"writer {w} question {i}" for w in range(4) for i in range(40)}
        assert all(entry.to_response().message.parts[0].text for entry in entries)


_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_recorder_scripted import ScriptedEngine, make_request
    from liftdspy.lm import RecordingEngine
    from liftdspy.lm.recorder import recording_key
    from liftdspy.lm.store import request_json
    recorder = RecordingEngine(ScriptedEngine(), {store!r}, "record")
    engine = recorder.inner
    for i in range(100000):
        request = make_request("crash question %d" % i)
        recorder.complete(request)
        print(recording_key(engine.identity(), request_json(request), None), flush=True)
    """
)


def test_killed_writer_loses_nothing_already_recorded(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    script = _WRITER.format(tests=str(REPO / "tests"), store=str(store_path))
    writer = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert writer.stdout is not None
    acknowledged = []
    try:
        while len(acknowledged) < 60:
            line = writer.stdout.readline()
            assert line, f"writer exited early with {writer.poll()}"
            acknowledged.append(line.strip())
        os.kill(writer.pid, signal.SIGKILL)  # mid-stream: it is writing more right now
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    with RecordingStore(store_path) as store:
        for key in acknowledged:
            entry = store.get(key)
            assert entry is not None, key
            assert entry.to_response().model == "scripted-1"
        assert len(store) >= len(acknowledged)
        store.put(next(store.entries()))  # the store is still writable after the crash


def _recorded_store(path: Path, count: int) -> tuple[RecordingStore, list[str]]:
    recorder = RecordingEngine(ScriptedEngine(), path, "record")
    answers = [
        recorder.complete(make_request(f"q{i} ünïcode", temperature=0.0)).message.parts[0].text
        for i in range(count)
    ]
    return recorder.store, answers


def test_jsonl_round_trip_is_sorted_reviewable_and_exact(tmp_path: Path) -> None:
    store, answers = _recorded_store(tmp_path / "a", 12)
    jsonl = tmp_path / "recordings" / "a.jsonl"
    assert store.export_jsonl(jsonl) == 12

    lines = jsonl.read_text(encoding="utf-8").splitlines()
    keys = [RecordedCall.model_validate_json(line).key for line in lines]
    assert keys == sorted(keys) and len(lines) == 12
    assert "ünïcode" in lines[0]  # readable text, not \\u escapes

    copy = RecordingStore(tmp_path / "b")
    assert copy.import_jsonl(jsonl) == 12
    replay = RecordingEngine(ScriptedEngine(), copy, "offline")
    replayed = [
        replay.complete(make_request(f"q{i} ünïcode", temperature=0.0)).message.parts[0].text
        for i in range(12)
    ]
    assert replayed == answers
    assert replay.inner.calls == 0
    copy.export_jsonl(tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == jsonl.read_bytes()


def test_ensure_imported_is_idempotent_per_file_content(tmp_path: Path) -> None:
    store, _ = _recorded_store(tmp_path / "a", 5)
    jsonl = tmp_path / "a.jsonl"
    store.export_jsonl(jsonl)
    target = RecordingStore(tmp_path / "b")
    assert ensure_imported(jsonl, target) == 5
    assert ensure_imported(jsonl, target) == 0
    assert len(target) == 5

    RecordingEngine(ScriptedEngine(), store, "record").complete(make_request("a new one"))
    store.export_jsonl(jsonl)
    assert ensure_imported(jsonl, target) == 6
    assert len(target) == 6


def test_import_refuses_an_edited_request_with_file_and_line(tmp_path: Path) -> None:
    store, _ = _recorded_store(tmp_path / "a", 3)
    jsonl = tmp_path / "a.jsonl"
    store.export_jsonl(jsonl)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"temperature":0.0', '"temperature":0.5')
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordingStoreError, match=r"a\.jsonl:2: key [0-9a-f]{12} does not match"):
        RecordingStore(tmp_path / "b").import_jsonl(jsonl)
    assert len(RecordingStore(tmp_path / "b")) == 0

    jsonl.write_text('{"not": "an entry"}\n', encoding="utf-8")
    with pytest.raises(RecordingStoreError, match=r"a\.jsonl:1: not a recorded call"):
        list(read_jsonl(jsonl))


def test_stored_request_is_the_full_canonical_request(tmp_path: Path) -> None:
    recorder = RecordingEngine(ScriptedEngine(), tmp_path / "s", "record")
    request = make_request("full", temperature=0.3, max_tokens=9, seed=4)
    recorder.complete(request)
    (entry,) = recorder.store.entries()
    assert entry.request == request_json(request)
    assert entry.request["config"] == {"temperature": 0.3, "max_tokens": 9, "seed": 4}
    assert entry.identity == ScriptedEngine().identity() and entry.latency_s >= 0
