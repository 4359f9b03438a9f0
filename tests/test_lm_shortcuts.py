"""One LM factory: `openai_lm` / `modal_lm` are `build_lm` of an `LMConfig` (recorded, DSPy's cache
off), and `LMConfig.endpoint()` is the one endpoint resolution (`$LIFTDSPY_MODAL_URL` included).

The server is `ScriptedChatServer` (a canned chat completion on 127.0.0.1): these tests are about
where calls go and how they are recorded, not about a model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_server import ScriptedChatServer

from liftdspy.lm import (
    LMConfig,
    RecorderConfig,
    RecordingMissError,
    build_lm,
    modal_lm,
    openai_lm,
    recorder_of,
)
from liftdspy.lm.config import MODAL_FIRST_CALL_TIMEOUT
from liftdspy.lm.recorder import RECORDER_MODE_ENV
from liftdspy.lm.store import CACHE_DIR_ENV
from liftdspy.serving.modal_endpoint import MODAL_URL_ENV, ModalEndpointError

KEY_ENV = "LIFTDSPY_TEST_SHORTCUT_KEY"
MODAL_URL = "https://acme-dev--liftdspy-vllm-serve.modal.run/v1"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The recorder modes set here are the logic under test; default stores go to tmp_path."""
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(KEY_ENV, "sk-shortcut-test-0123456789")
    for name in (MODAL_URL_ENV, "LIFTDSPY_MODAL_WORKSPACE", "LIFTDSPY_MODAL_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def test_openai_lm_records_through_the_recorder_keyed_by_the_endpoint(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with ScriptedChatServer(script=[]) as server:
        lm = openai_lm(
            server.base_url, "stub-model", api_key_env=KEY_ENV, recorder=RecorderConfig(path=store)
        )
        assert lm.cache is False and lm.num_retries == 0
        assert lm("hello") == lm("hello") == ["stub answer"]
        assert len(server.bodies) == 1  # the second call was the recorder's replay
        stats = recorder_of(lm).stats()
        assert (stats.calls, stats.hits, stats.misses) == (1, 1, 1)  # calls: live ones

        # The LMConfig of the same endpoint keys its calls the same: one factory.
        config = LMConfig(
            kind="openai",
            model="stub-model",
            base_url=server.base_url,
            api_key_env=KEY_ENV,
            max_tokens=2048,
            recorder=RecorderConfig(mode="offline", path=store),
        )
        assert build_lm(config)("hello") == ["stub answer"]
        assert len(server.bodies) == 1
    with ScriptedChatServer(script=[]) as other:
        elsewhere = openai_lm(
            other.base_url,
            "stub-model",
            api_key_env=KEY_ENV,
            recorder=RecorderConfig(mode="offline", path=store),
        )
        with pytest.raises(RecordingMissError):
            elsewhere("hello")  # another endpoint is another key, never the first one's answer
        assert other.bodies == []


def test_openai_lm_engine_options_reach_the_engine_and_none_means_no_key() -> None:
    lm = openai_lm(
        "http://127.0.0.1:9/v1",
        "stub-model",
        api_key_env=None,
        max_retries=1,
        timeout=7.0,
        response_format_style="json_object_schema",
    )
    engine = recorder_of(lm).inner
    assert engine.api_key_env is None
    assert engine.retry.max_retries == 1 and engine.timeout == 7.0
    assert engine.response_format_style == "json_object_schema"


def test_modal_endpoint_from_the_environment_is_the_same_for_lmconfig_and_modal_lm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = LMConfig(kind="modal", model="served", api_key_env=KEY_ENV)
    with pytest.raises(ModalEndpointError, match=MODAL_URL_ENV):
        config.endpoint()  # the message's advice is true: setting the variable fixes it

    monkeypatch.setenv(MODAL_URL_ENV, MODAL_URL)
    assert config.endpoint() == MODAL_URL
    from_config = recorder_of(build_lm(config))
    from_wrapper = recorder_of(modal_lm(model="served", api_key_env=KEY_ENV))
    assert from_config.identity() == from_wrapper.identity()
    assert from_config.identity()["base_url"] == MODAL_URL
    for engine in (from_config.inner, from_wrapper.inner):
        assert engine.first_call_timeout == MODAL_FIRST_CALL_TIMEOUT

    # Without the URL, both build it from the workspace; an explicit base_url wins over both.
    monkeypatch.delenv(MODAL_URL_ENV)
    monkeypatch.setenv("LIFTDSPY_MODAL_WORKSPACE", "acme")
    built = "https://acme--liftdspy-vllm-serve.modal.run/v1"
    assert config.endpoint() == built
    assert recorder_of(modal_lm(model="served")).identity()["base_url"] == built
    beta = recorder_of(modal_lm(model="served", workspace="beta")).identity()["base_url"]
    assert beta == "https://beta--liftdspy-vllm-serve.modal.run/v1"
    pinned = config.model_copy(update={"base_url": "http://127.0.0.1:8000/v1"})
    assert pinned.endpoint() == "http://127.0.0.1:8000/v1"
