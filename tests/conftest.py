"""Shared test set-up: recorder mode, CI's no-skip rule, and the servers several modules use.

- **Recordings are offline by default.** `LIFTDSPY_RECORDER=offline` is set for the whole session
  unless the caller set it (`LIFTDSPY_RECORDER=replay bash scripts/test.sh` records what is
  missing): a missing recording is a `RecordingMissError`, never a silent live call. A test whose
  logic is the recorder's modes removes the override itself (`monkeypatch.delenv`) or is marked
  `scripted_lm` (a test-only engine whose configured mode is kept); a test that needs a live model
  asks for the `live_lm` fixture.
- **In CI (`CI=true`) a skip is a failure.** A test that would skip because something it needs is
  missing (the embedded model, XGrammar, chromium, ../shared data, root, a server binary) fails
  with the reason, at collection or at run time. Only skips whose reason starts with `opt-in`
  (tests run on request, e.g. `pytest -m vllm`) stay skips. Locally skips stay skips, and `-ra`
  lists them with their reasons.
- **Every test has a timeout** (pytest-timeout, 300 s by default in pyproject.toml; a test that
  needs longer says why next to its `@pytest.mark.timeout(...)`).
- **Servers**: `llama_server` (fixtures_server.py), `postgres_server` and `mlflow_team_server`
  (fixtures_postgres.py) are defined here once, so each starts once per session whichever modules
  use it (a module must not import the fixture itself: that would be a second instance).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Importing the fixture into conftest makes it one fixture for the whole session.
from fixtures_postgres import mlflow_team_server, postgres_server  # noqa: F401
from fixtures_server import LlamaServer, llama_server  # noqa: F401

from liftdspy.lm.recorder import RECORDER_MODE_ENV

OPT_IN_PREFIX = "opt-in"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(RECORDER_MODE_ENV, "offline")
    if in_ci():
        # A module skipped at import (importorskip) fails as a collection error in CI; the rest of
        # the suite still runs.
        config.option.continue_on_collection_errors = True
    config.addinivalue_line(
        "markers", "scripted_lm: the LM is a scripted test engine; its recorder mode is kept"
    )
    config.addinivalue_line(
        "markers", "live_model: calls a model live (the `live_lm` fixture lifts offline mode)"
    )


@pytest.fixture(autouse=True)
def _scripted_lm_keeps_its_mode(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test marked `scripted_lm` uses a scripted (test-only) engine: its configured recorder mode
    is part of the logic under test, so the session's offline override is lifted for it."""
    if request.node.get_closest_marker("scripted_lm") is not None:
        monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)


@pytest.fixture
def live_lm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Opt out of the session's offline recorder mode: this test calls the model live."""
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    yield


def _skip_reason(longrepr: object) -> str:
    # A skip's longrepr is (file, line, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not (in_ci() and report.skipped):
        return
    if hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report.longrepr)
    if reason.startswith(OPT_IN_PREFIX):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: this would have been skipped, but CI must not skip a test because something "
        f"it needs is missing. Reason: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _fail_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_in_ci(outcome.get_result())
