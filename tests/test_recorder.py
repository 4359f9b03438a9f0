"""RecordingEngine modes, keys and secrets, through DSPy's real call path (ScriptedEngine)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy
import pytest
from test_recorder_scripted import ScriptedEngine, make_request, scripted_lm

from liftdspy.lm import (
    LMConfig,
    RecorderConfig,
    RecorderMode,
    RecordingEngine,
    RecordingMissError,
    RecordingStore,
    build_lm,
    recorder_of,
)
from liftdspy.lm.recorder import (
    _IN_FLIGHT,
    RECORDER_MODE_ENV,
    RecordingSecretError,
    recording_key,
)
from liftdspy.lm.store import request_json


@pytest.fixture(autouse=True)
def _no_mode_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)


def _ask(lm: dspy.LM, question: str, **config: object) -> str:
    with dspy.context(lm=lm):
        return dspy.Predict("question -> answer")(question=question, config=config).answer


def test_replay_through_predict_makes_no_inner_call_and_returns_identical_answers(
    tmp_path: Path,
) -> None:
    lm, live = scripted_lm(tmp_path / "store", mode="record")
    questions = [f"What is {i} squared?" for i in range(5)]
    recorded = [_ask(lm, q) for q in questions]
    assert live.calls == 5
    assert recorder_of(lm).stats().stored == 5

    for mode in ("replay", "offline"):
        replay_lm, fresh = scripted_lm(tmp_path / "store", mode=mode)
        assert [_ask(replay_lm, q) for q in questions] == recorded
        assert fresh.calls == 0
        stats = recorder_of(replay_lm).stats()
        assert (stats.hits, stats.misses, stats.calls) == (5, 0, 0)
        assert stats.replayed_input_tokens > 0
        assert stats.saved_seconds >= 0


def test_replay_calls_and_stores_on_miss_then_hits(tmp_path: Path) -> None:
    lm, engine = scripted_lm(tmp_path / "store", mode="replay")
    first = _ask(lm, "one")
    assert _ask(lm, "one") == first
    assert _ask(lm, "two") != first
    stats = recorder_of(lm).stats()
    assert engine.calls == 2
    assert (stats.hits, stats.misses, stats.calls, stats.stored) == (1, 2, 2, 2)


def test_record_mode_always_calls_and_overwrites(tmp_path: Path) -> None:
    lm, engine = scripted_lm(tmp_path / "store", mode="record")
    first = _ask(lm, "same question")
    second = _ask(lm, "same question")
    assert engine.calls == 2 and first != second
    replay_lm, _ = scripted_lm(tmp_path / "store", mode="offline")
    assert _ask(replay_lm, "same question") == second


def test_off_mode_passes_through_and_stores_nothing(tmp_path: Path) -> None:
    lm, engine = scripted_lm(tmp_path / "store", mode="off")
    assert _ask(lm, "q") != _ask(lm, "q")
    assert engine.calls == 2
    assert len(RecordingStore(tmp_path / "store")) == 0
    assert recorder_of(lm).stats().calls == 2


def test_offline_miss_names_model_digest_and_message(tmp_path: Path) -> None:
    lm, engine = scripted_lm(tmp_path / "store", mode="offline")
    with pytest.raises(RecordingMissError) as caught:
        _ask(lm, "Reverse the list [3, 1, 2] in place")
    message = str(caught.value)
    assert engine.calls == 0
    assert "'scripted-1'" in message
    assert "Reverse the list [3, 1, 2]" in message
    assert str(tmp_path / "store") in message
    assert "key " in message and "request " in message
    assert recorder_of(lm).stats().misses >= 1


def test_env_var_overrides_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RECORDER_MODE_ENV, "offline")
    lm, _ = scripted_lm(tmp_path / "store", mode="record")
    assert recorder_of(lm).mode is RecorderMode.OFFLINE
    monkeypatch.setenv(RECORDER_MODE_ENV, "sometimes")
    with pytest.raises(ValueError, match="LIFTDSPY_RECORDER='sometimes'"):
        scripted_lm(tmp_path / "store")


# ── keys ─────────────────────────────────────────────────────────────────────────────────────


def _key(engine: ScriptedEngine, text: str = "hello", **config: object) -> str:
    return recording_key(engine.identity(), request_json(make_request(text, **config)), None)


def test_key_changes_with_every_input_that_changes_the_answer() -> None:
    base = _key(ScriptedEngine(), temperature=0.0)
    variants = {
        "model": _key(ScriptedEngine(model="scripted-2"), temperature=0.0),
        "endpoint": _key(ScriptedEngine(endpoint="http://other.invalid/v1"), temperature=0.0),
        "message": _key(ScriptedEngine(), "hello!", temperature=0.0),
        "temperature": _key(ScriptedEngine(), temperature=0.7),
        "max_tokens": _key(ScriptedEngine(), temperature=0.0, max_tokens=64),
        "seed": _key(ScriptedEngine(), temperature=0.0, seed=7),
        "schema": _key(
            ScriptedEngine(),
            temperature=0.0,
            response_format={"type": "json_schema", "schema": {"type": "object"}},
        ),
    }
    assert base == _key(ScriptedEngine(), temperature=0.0)
    assert len(set(variants.values()) | {base}) == len(variants) + 1
    other_schema = _key(
        ScriptedEngine(),
        temperature=0.0,
        response_format={"type": "json_schema", "schema": {"type": "array"}},
    )
    assert other_schema != variants["schema"]
    identity, request = ScriptedEngine().identity(), request_json(make_request())
    assert recording_key(identity, request, 1) != recording_key(identity, request, 2)
    assert recording_key(identity, request, None) != recording_key(identity, request, None, 1)


def test_rollout_ids_and_candidates_get_their_own_recordings(tmp_path: Path) -> None:
    lm, engine = scripted_lm(tmp_path / "store", mode="replay", temperature=1.0)
    rollout_1 = _ask(lm, "q", rollout_id=1)
    rollout_2 = lm.copy(rollout_id=2)("q")[0]
    assert engine.calls == 2 and rollout_1 not in rollout_2
    three = lm("q", n=3)
    assert len(set(three)) == 3 and engine.calls == 5

    replay_lm, fresh = scripted_lm(tmp_path / "store", mode="offline", temperature=1.0)
    assert _ask(replay_lm, "q", rollout_id=1) == rollout_1
    assert replay_lm.copy(rollout_id=2)("q")[0] == rollout_2
    assert replay_lm("q", n=3) == three
    assert fresh.calls == 0


def test_api_key_never_changes_keys_nor_reaches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = []
    for secret in ("sk-live-AAAAaaaa1111secret", "sk-live-BBBBbbbb2222secret"):
        monkeypatch.setenv("SCRIPTED_API_KEY", secret)
        engine = ScriptedEngine(api_key_env="SCRIPTED_API_KEY")
        lm, _ = scripted_lm(tmp_path / "store", mode="record", engine=engine)
        _ask(lm, "keyed question")
        keys.append(sorted(RecordingStore(tmp_path / "store").keys()))
    assert keys[0] == keys[1] and len(keys[0]) == 1

    RecordingStore(tmp_path / "store").export_jsonl(tmp_path / "out.jsonl")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files) and len(files) > 1
    for path in files:
        data = path.read_bytes()
        assert b"sk-live" not in data, path


def test_entry_echoing_the_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTED_API_KEY", "sk-live-CCCCcccc3333secret")
    engine = ScriptedEngine(api_key_env="SCRIPTED_API_KEY", echo_key=True)
    lm, _ = scripted_lm(
        tmp_path / "store", mode="replay", engine=engine, api_key_env="SCRIPTED_API_KEY"
    )
    with pytest.raises(RecordingSecretError) as caught:
        _ask(lm, "leak please")
    assert "sk-live" not in str(caught.value)
    assert len(RecordingStore(tmp_path / "store")) == 0


def test_identity_with_credentials_is_refused(tmp_path: Path) -> None:
    class KeyedIdentity(ScriptedEngine):
        def identity(self) -> dict[str, str]:
            return {"model": "m", "endpoint": "https://user:pw@host/v1"}

    with pytest.raises(RecordingSecretError, match="endpoint"):
        RecordingEngine(KeyedIdentity(), tmp_path / "store")


@pytest.mark.parametrize(
    "identity",
    [
        # Missed by the recorder's own pattern before it used liftdspy.redaction:
        {"model": "m", "openai-api-key": "x"},
        {"model": "m", "apikey": "x"},
        {"model": "m", "endpoint": "https://host/v1?access_token=abc"},
    ],
)
def test_identity_credentials_are_found_as_redaction_finds_them(tmp_path: Path, identity) -> None:
    class KeyedIdentity(ScriptedEngine):
        def identity(self) -> dict[str, str]:
            return identity

    with pytest.raises(RecordingSecretError, match="credential"):
        RecordingEngine(KeyedIdentity(), tmp_path / "store")


def test_an_identity_without_credentials_is_kept(tmp_path: Path) -> None:
    clean = {"model": "m", "endpoint": "https://<redacted>@host/v1", "max_tokens": "5"}

    class CleanIdentity(ScriptedEngine):
        def identity(self) -> dict[str, str]:
            return clean

    engine = RecordingEngine(CleanIdentity(), tmp_path / "store")
    try:
        assert engine.identity() == clean
    finally:
        engine.close()


# ── concurrency and configuration ────────────────────────────────────────────────────────────


def test_threads_share_one_recorder_with_exact_counts(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    recorder = RecordingEngine(engine, tmp_path / "store", "replay")
    requests = [make_request(f"question {i}") for i in range(120)]
    barrier = threading.Barrier(8)

    def run(chunk: list) -> list[str]:
        barrier.wait()
        return [recorder.complete(r).message.parts[0].text for r in chunk]

    with ThreadPoolExecutor(8) as pool:
        live = [t for part in pool.map(run, [requests[i::8] for i in range(8)]) for t in part]
    stats = recorder.stats()
    assert (stats.calls, stats.misses, stats.stored, stats.hits) == (120, 120, 120, 0)
    assert len(recorder.store) == 120 and len(set(live)) == 120

    with ThreadPoolExecutor(8) as pool:
        replayed = list(pool.map(lambda r: recorder.complete(r).message.parts[0].text, requests))
    assert recorder.stats().hits == 120 and engine.calls == 120
    assert set(replayed) == set(live)


def test_identical_requests_in_flight_at_once_make_one_live_call(tmp_path: Path) -> None:
    # Two recorders on one store (two study cells running at once in one process) and eight
    # threads asking the same question while the first live answer is still being made.
    engine = ScriptedEngine(delay_s=0.3)
    recorders = [RecordingEngine(engine, tmp_path / "store", "replay") for _ in range(2)]
    barrier = threading.Barrier(8)

    def run(i: int) -> str:
        barrier.wait()
        return recorders[i % 2].complete(make_request("same question")).message.parts[0].text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(run, range(8)))
    assert engine.calls == 1 and len(set(answers)) == 1
    stats = [r.stats() for r in recorders]
    assert sum(s.calls for s in stats) == 1 and sum(s.misses for s in stats) == 1
    assert sum(s.hits for s in stats) == 7
    # Different requests still run concurrently (each live call waits for the other three to
    # be in flight; serialised, the barrier would break), and nothing is left locked.
    together = threading.Barrier(4, timeout=10)
    inner_answer = engine._answer

    def answer_together(request, number):
        together.wait()
        return inner_answer(request, number)

    engine.answer = answer_together
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: recorders[0].complete(make_request(f"q{i}")), range(4)))
    assert engine.calls == 5 and not together.broken
    assert len(_IN_FLIGHT) == 0


def test_build_lm_disables_dspy_cache_and_uses_recorder(tmp_path: Path) -> None:
    config = LMConfig(
        kind="local",
        model="scripted-1",
        temperature=0.0,
        max_tokens=77,
        recorder=RecorderConfig(mode="offline", path=tmp_path / "s"),
    )
    lm = build_lm(config, engine=ScriptedEngine())
    assert lm.cache is False and lm.model == "local/scripted-1"
    assert lm.kwargs["temperature"] == 0.0 and lm.kwargs["max_tokens"] == 77
    recorder = recorder_of(lm)
    assert recorder.identity() == ScriptedEngine().identity()
    with pytest.raises(TypeError, match="not recorded"):
        recorder_of(dspy.LM("openai/gpt-4o-mini"))


def test_config_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="base_url"):
        LMConfig(kind="openai", model="m")
    with pytest.raises(ValueError, match="api_key_env"):
        LMConfig(kind="openai", model="m", base_url="http://h/v1", api_key_env="sk-abc123")
    with pytest.raises(ValueError, match="credentials"):
        LMConfig(kind="modal", model="m", base_url="https://u:p@h/v1")
    with pytest.raises(ValueError, match="extra"):
        LMConfig(kind="local", model="m", api_key="sk-x")


def test_build_lm_imports_the_openai_engine_lazily(tmp_path: Path) -> None:
    pytest.importorskip("liftdspy.lm.openai_engine")
    config = LMConfig(
        kind="openai",
        model="qwen",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="LIFTDSPY_TEST_KEY",
        recorder=RecorderConfig(path=tmp_path / "s"),
    )
    identity = recorder_of(build_lm(config)).identity()
    assert identity["model"] == "qwen" and "127.0.0.1:9" in identity["base_url"]


def test_async_calls_record_and_replay_with_rollout_ids(tmp_path: Path) -> None:
    import asyncio

    lm, engine = scripted_lm(tmp_path / "store", mode="replay", temperature=1.0)
    first = asyncio.run(lm.acall("async q", rollout_id=5))
    second = asyncio.run(lm.acall("async q", rollout_id=6))
    assert engine.calls == 2 and first != second

    replay_lm, fresh = scripted_lm(tmp_path / "store", mode="offline", temperature=1.0)
    assert asyncio.run(replay_lm.acall("async q", rollout_id=5)) == first
    assert asyncio.run(replay_lm.acall("async q", rollout_id=6)) == second
    assert fresh.calls == 0


class SavableScriptedEngine(ScriptedEngine):
    """ScriptedEngine that DSPy can save: dump_state/load_state of its constructor arguments."""

    def dump_state(self) -> dict[str, str]:
        return {"model": self.model, "endpoint": self.endpoint}

    @classmethod
    def load_state(cls, state: dict[str, str]) -> SavableScriptedEngine:
        return cls(**state)


def test_program_with_recorded_lm_saves_and_loads(tmp_path: Path) -> None:
    lm, _ = scripted_lm(tmp_path / "store", mode="record", engine=SavableScriptedEngine())
    program = dspy.Predict("question -> answer")
    program.lm = lm
    answer = program(question="saved?").answer
    program.save(tmp_path / "program.json")

    loaded = dspy.Predict("question -> answer")
    loaded.load(tmp_path / "program.json", allow_unsafe_lm_state=True)
    recorder = recorder_of(loaded.lm)
    assert recorder.store.path == tmp_path / "store" and recorder.mode is RecorderMode.RECORD
    recorder.mode = RecorderMode.OFFLINE
    assert loaded(question="saved?").answer == answer
    assert recorder.inner.calls == 0


def test_stats_since_a_snapshot_give_the_cost_of_the_work_after_it(tmp_path: Path) -> None:
    from liftdspy.studies.results import CellCost

    lm, engine = scripted_lm(tmp_path / "store", mode="replay")
    lm("first question")
    snapshot = recorder_of(lm).stats()
    lm("second question")
    lm("first question")  # replayed
    work = recorder_of(lm).stats().since(snapshot)
    assert (work.calls, work.hits, work.requests) == (1, 1, 2) and engine.calls == 2
    assert work.input_tokens == work.live_input_tokens + work.replayed_input_tokens > 0
    cost = CellCost.from_stats(work, wall_seconds=1.23456)
    assert (cost.requests, cost.live_calls, cost.replayed) == (2, 1, 1)
    assert cost.output_tokens == work.output_tokens and cost.wall_seconds == 1.235
    assert recorder_of(lm).stats().since(None) == recorder_of(lm).stats()
