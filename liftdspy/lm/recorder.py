"""`RecordingEngine`: a DSPy engine that records every call of another engine and can replay it.

Every LM call in liftdspy goes `dspy.LM(engine=RecordingEngine(inner, store, mode))`. The key of a
call is the sha256 of a canonical JSON of

* the inner engine's `identity()` (kind, model, endpoint without credentials, model file, ...),
* the full canonical `dspy.lm15.Request` (messages, system, tools, every `Config` field:
  temperature, max_tokens, seed, response_format schema/grammar, stop, extensions, ...),
* the rollout id of the DSPy call, and the candidate index (0, 1, ... when a call asks for n > 1).

DSPy 3.4 strips `rollout_id` before a custom engine sees the request (`Config.extensions` may not
carry it, see `dspy.clients.engines.base.validate_request`), and asks a canonical engine n times
with the same request for `n=`. `RolloutScope`, a DSPy callback that `build_lm` installs on the LM,
publishes the rollout id of the current LM call in a context variable and lets the recorder number
the candidates.

Seeds (`liftdspy.lm.seeds`): a greedy request (temperature 0) is keyed and sent without its seed;
a sampled request that is a later candidate or carries a rollout id is sent to the engine with a
seed derived from (seed, rollout id, candidate), so each candidate samples its own text.

DSPy's own response cache must be off for recorded LMs (`dspy.LM(..., cache=False)`): its key
leaves the engine (endpoint, model file) out, so a cached answer of one server would be served for
another and the recorder would never see the call. The recorder is the one cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from dspy.clients.engines.base import validate_request
from dspy.lm15 import Request, Response, response_to_events
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import LMConfigurationError, LMNotConfiguredError
from pydantic import BaseModel

from liftdspy.errors import LiftdspyError
from liftdspy.lm.answers import answer_end, report_answer
from liftdspy.lm.seeds import canonical_request, engine_request
from liftdspy.lm.store import (
    RecordedCall,
    RecordingStore,
    canonical_json,
    last_message_text,
    recording_key,
    request_json,
    response_json,
)
from liftdspy.redaction import is_secret_key, redact_text

logger = logging.getLogger(__name__)

RECORDER_MODE_ENV = "LIFTDSPY_RECORDER"


class RecorderMode(StrEnum):
    """off: pass through. record: always call and store. replay: stored answer, else call and store
    (identical requests made at once in one process make one live call). offline: stored answer,
    else `RecordingMissError` (the test suite's default)."""

    OFF = "off"
    RECORD = "record"
    REPLAY = "replay"
    OFFLINE = "offline"


def effective_mode(mode: RecorderMode | str) -> RecorderMode:
    """`mode`, unless env LIFTDSPY_RECORDER names another (the test suite sets `offline`)."""
    override = os.environ.get(RECORDER_MODE_ENV)
    if not override:
        return RecorderMode(mode)
    try:
        return RecorderMode(override.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in RecorderMode)
        raise ValueError(f"{RECORDER_MODE_ENV}={override!r} is not one of: {choices}") from None


class RecordingMissError(LiftdspyError, LMNotConfiguredError):
    """Offline mode found no recording for a call. An LMError, so DSPy re-raises it unchanged."""

    default_code = "recording_miss"


class RecordingSecretError(LiftdspyError, LMConfigurationError):
    """An identity or entry would have put a credential in the recordings (nothing is written)."""

    default_code = "recording_secret"


class IdentifiedEngine(Protocol):
    """What the recorder needs from an engine: DSPy's engine contract plus `identity()`."""

    def identity(self) -> dict[str, str]: ...

    def complete(self, request: Request) -> Response: ...

    def close(self) -> None: ...


# ── Which DSPy call is running: rollout id and candidate numbering ──────────────────────────────


@dataclass
class _CallScope:
    call_id: str
    rollout_id: Any
    parent: _CallScope | None
    completed: Counter[str] = field(default_factory=Counter)


_SCOPE: ContextVar[_CallScope | None] = ContextVar("liftdspy_recorder_call", default=None)


class RolloutScope(BaseCallback):
    """DSPy callback publishing the current LM call's rollout id to `RecordingEngine`.

    Stateless (the scope lives in a context variable), so LMs carrying it can be deep-copied.
    """

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        call_kwargs = inputs.get("kwargs") or {}
        lm_kwargs = getattr(instance, "kwargs", None) or {}
        rollout_id = call_kwargs.get("rollout_id", lm_kwargs.get("rollout_id"))
        _SCOPE.set(_CallScope(call_id=call_id, rollout_id=rollout_id, parent=_SCOPE.get()))

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        scope = _SCOPE.get()
        if scope is not None and scope.call_id == call_id:
            _SCOPE.set(scope.parent)


# ── The engines ──────────────────────────────────────────────────────────────────────────────────


class RecorderStats(BaseModel):
    """Counters for cost reporting. `calls` are inner (live) calls; `hits` came from disk."""

    mode: RecorderMode
    hits: int = 0
    misses: int = 0
    calls: int = 0
    stored: int = 0
    live_seconds: float = 0.0
    saved_seconds: float = 0.0
    live_input_tokens: int = 0
    live_output_tokens: int = 0
    replayed_input_tokens: int = 0
    replayed_output_tokens: int = 0
    truncated: int = 0  # answers (live or replayed) that ended at max_tokens

    @property
    def requests(self) -> int:
        """Every answered call, live or replayed."""
        return self.calls + self.hits

    @property
    def input_tokens(self) -> int:
        return self.live_input_tokens + self.replayed_input_tokens

    @property
    def output_tokens(self) -> int:
        return self.live_output_tokens + self.replayed_output_tokens

    @property
    def lm_seconds(self) -> float:
        """Live seconds plus the recorded seconds of the replays."""
        return self.live_seconds + self.saved_seconds

    def since(self, before: RecorderStats | None) -> RecorderStats:
        """What was counted after `before`, an earlier snapshot of the same recorder."""
        if before is None:
            return self.model_copy()
        counts = {
            name: getattr(self, name) - getattr(before, name)
            for name in type(self).model_fields
            if name != "mode"
        }
        return RecorderStats(mode=self.mode, **counts)


class _KeyLocks:
    """One lock per name, held while a live call for that name runs, dropped when unused."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}  # name -> [lock, holders + waiters]

    @contextmanager
    def hold(self, name: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            slot = self._locks.setdefault(name, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                yield
        finally:
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._locks[name]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


# (store directory, recording key) of every live call a replay-mode recorder is making.
_IN_FLIGHT = _KeyLocks()


class RecordingEngine:
    """Wrap any engine with `identity()`; record, replay or refuse its calls by `RecorderMode`."""

    def __init__(
        self,
        inner: IdentifiedEngine,
        store: RecordingStore | Path | str,
        mode: RecorderMode | str = RecorderMode.REPLAY,
        *,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.inner = inner
        self._owns_store = not isinstance(store, RecordingStore)
        self.store = store if isinstance(store, RecordingStore) else RecordingStore(store)
        self._store_name = str(self.store.path.resolve())  # the store's name in `_IN_FLIGHT`
        self.mode = RecorderMode(mode)
        self._secrets = tuple(s for s in secrets if s)
        self._identity = _checked_identity(inner.identity(), self._secrets)
        self._lock = threading.Lock()
        self._stats = RecorderStats(mode=self.mode)
        self._warned_unscoped = False

    def __repr__(self) -> str:
        model = self._identity.get("model", "?")
        return f"RecordingEngine({model!r}, {self.mode.value}, {self.store.path})"

    def __deepcopy__(self, memo: dict[int, Any]) -> RecordingEngine:
        # An engine is a shared resource (dspy.LM.copy shares it too); DSPy deep-copies programs.
        return self

    def identity(self) -> dict[str, str]:
        return dict(self._identity)

    # DSPy reads capability hints from a custom engine (dspy.clients.capabilities); the recorder
    # answers for its inner engine, so JSONAdapter still attaches response schemas.
    @property
    def supports_response_schema(self) -> bool:
        return bool(getattr(self.inner, "supports_response_schema", False))

    @property
    def supports_function_calling(self) -> bool:
        return bool(getattr(self.inner, "supports_function_calling", False))

    @property
    def supports_reasoning(self) -> bool:
        return bool(getattr(self.inner, "supports_reasoning", False))

    @property
    def supported_params(self) -> frozenset[str]:
        return frozenset(getattr(self.inner, "supported_params", ()) or ())

    def stats(self) -> RecorderStats:
        with self._lock:
            return self._stats.model_copy()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = RecorderStats(mode=self.mode)

    def complete(self, request: Request) -> Response:
        response = self._complete(request)
        end = answer_end(
            response,
            model=self._identity.get("model", request.model),
            max_tokens=request.config.max_tokens,
        )
        if end.truncated:
            with self._lock:
                self._stats.truncated += 1
            logger.debug("answer of %s cut off: %s", end.model, end.describe())
        report_answer(end)
        return response

    def _complete(self, request: Request) -> Response:
        validate_request(request)
        request = canonical_request(request)  # a greedy call's seed changes nothing
        scope = self._scope()
        if self.mode is RecorderMode.OFF:
            rollout_id = scope.rollout_id if scope is not None else None
            first_key = recording_key(self._identity, request_json(request), rollout_id, 0)
            candidate = scope.completed[first_key] if scope is not None else 0
            response = self._call_inner(engine_request(request, rollout_id, candidate))[0]
            if scope is not None:
                scope.completed[first_key] += 1
            return response
        request_data = request_json(request)
        rollout_id = scope.rollout_id if scope is not None else None
        first_key = recording_key(self._identity, request_data, rollout_id, 0)
        candidate = scope.completed[first_key] if scope is not None else 0
        key = (
            first_key
            if candidate == 0
            else recording_key(self._identity, request_data, rollout_id, candidate)
        )
        response = self._answer(request, request_data, rollout_id, candidate, key)
        if scope is not None:
            scope.completed[first_key] += 1
        return response

    def stream(self, request: Request) -> Iterator[Any]:
        """A recorded call replays as one complete response (streams are recorded whole)."""
        return response_to_events(self.complete(request))

    def close(self) -> None:
        self.inner.close()
        if self._owns_store:
            self.store.close()

    # `program.save()` of a predictor with its own LM saves the LM's engine (dspy.LM.dump_state).
    def dump_state(self) -> dict[str, Any]:
        """Inner engine (class path + its own credential-free state), mode and store directory."""
        dump = getattr(self.inner, "dump_state", None)
        if not callable(dump):
            raise TypeError(f"{type(self.inner).__name__} has no dump_state(); cannot save this LM")
        inner_class = type(self.inner)
        return {
            "inner": {
                "class": f"{inner_class.__module__}:{inner_class.__qualname__}",
                "state": dump(),
            },
            "mode": self.mode.value,
            "store": str(self.store.path),
        }

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> RecordingEngine:
        """Rebuild from `dump_state()` (DSPy calls this only with allow_unsafe_lm_state=True)."""
        module_name, _, qualname = state["inner"]["class"].partition(":")
        inner_class: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            inner_class = getattr(inner_class, part)
        inner = inner_class.load_state(state["inner"]["state"])
        key_env = getattr(inner, "api_key_env", None)
        secrets = [os.environ.get(key_env)] if key_env else []
        return cls(inner, state["store"], effective_mode(state["mode"]), secrets=secrets)

    # ── internals ──

    def _answer(
        self,
        request: Request,
        request_data: dict[str, Any],
        rollout_id: Any,
        candidate: int,
        key: str,
    ) -> Response:
        if self.mode is RecorderMode.RECORD:
            return self._record(request, request_data, rollout_id, candidate, key)
        hit = self._replayed(key)
        if hit is not None:
            return hit
        if self.mode is RecorderMode.OFFLINE:
            self._count(misses=1)
            raise self._miss_error(key, request_data)
        # One live call per key: an identical request already in flight (another thread's, or
        # another recorder's on this store, e.g. a concurrent study cell) is waited for, and
        # its stored answer replayed.
        with _IN_FLIGHT.hold((self._store_name, key)):
            hit = self._replayed(key)
            if hit is not None:
                return hit
            self._count(misses=1)
            return self._record(request, request_data, rollout_id, candidate, key)

    def _replayed(self, key: str) -> Response | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        response = entry.to_response()
        self._count_hit(entry, response)
        logger.debug("recorder hit %s", entry.summary())
        return response

    def _record(
        self,
        request: Request,
        request_data: dict[str, Any],
        rollout_id: Any,
        candidate: int,
        key: str,
    ) -> Response:
        response, latency = self._call_inner(engine_request(request, rollout_id, candidate))
        entry = RecordedCall(
            key=key,
            identity=self._identity,
            request=request_data,
            rollout_id=rollout_id,
            candidate=candidate,
            response=response_json(response),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            model=self._identity.get("model", request.model),
            latency_s=round(latency, 6),
            truncated=response.finish_reason == "length",
        )
        self._refuse_secrets(entry)
        self.store.put(entry)
        self._count(stored=1)
        logger.debug("recorder stored %s (%.2fs)", entry.summary(), latency)
        return response

    def _call_inner(self, request: Request) -> tuple[Response, float]:
        start = time.perf_counter()
        response = self.inner.complete(request)
        latency = time.perf_counter() - start
        usage = response.usage
        with self._lock:
            self._stats.calls += 1
            self._stats.live_seconds += latency
            self._stats.live_input_tokens += usage.input_tokens or 0
            self._stats.live_output_tokens += usage.output_tokens or 0
        return response, latency

    def _count(self, *, misses: int = 0, stored: int = 0) -> None:
        with self._lock:
            self._stats.misses += misses
            self._stats.stored += stored

    def _count_hit(self, entry: RecordedCall, response: Response) -> None:
        with self._lock:
            self._stats.hits += 1
            self._stats.saved_seconds += entry.latency_s
            self._stats.replayed_input_tokens += response.usage.input_tokens or 0
            self._stats.replayed_output_tokens += response.usage.output_tokens or 0

    def _scope(self) -> _CallScope | None:
        scope = _SCOPE.get()
        if scope is None and not self._warned_unscoped:
            self._warned_unscoped = True
            logger.warning(
                "RecordingEngine for %s is used without the RolloutScope callback: rollout ids and "
                "n>1 candidates will share one recording. Build LMs with liftdspy.lm.build_lm.",
                self._identity.get("model", "?"),
            )
        return scope

    def _miss_error(self, key: str, request_data: dict[str, Any]) -> RecordingMissError:
        model = self._identity.get("model", request_data.get("model", "?"))
        request_digest = hashlib.sha256(canonical_json(request_data).encode()).hexdigest()[:12]
        text = " ".join(last_message_text(request_data).split())[:80]
        return RecordingMissError(
            f"No recording for model {model!r} (key {key[:12]}, request {request_digest}) in "
            f"{self.store.path}; last message starts {text!r}. Offline mode never calls the model: "
            "record it (LIFTDSPY_RECORDER=replay with a live engine), then `liftdspy cache export` "
            "and commit the JSONL.",
            model=model,
            provider="liftdspy-recorder",
        )

    def _refuse_secrets(self, entry: RecordedCall) -> None:
        if not self._secrets:
            return
        text = canonical_json(entry.model_dump(mode="json"))
        if any(secret in text for secret in self._secrets):
            raise RecordingSecretError(
                f"refusing to record a call of {entry.model!r}: the entry would contain a "
                "credential (it appears in the request or the response)"
            )


def _checked_identity(identity: dict[str, Any], secrets: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(identity, dict) or not identity:
        raise TypeError("engine.identity() must return a non-empty dict[str, str]")
    checked: dict[str, str] = {}
    for name, value in identity.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"engine.identity() must map str to str, got {name!r}: {type(value).__name__}"
            )
        if is_secret_key(name):
            raise RecordingSecretError(f"engine.identity() field {name!r} looks like a credential")
        # A URL with userinfo or a secret parameter is what redaction would change.
        if redact_text(value) != value or any(secret in value for secret in secrets):
            raise RecordingSecretError(f"engine.identity() field {name!r} contains a credential")
        checked[name] = value
    return checked


class AsyncRecordingEngine:
    """The async engine DSPy needs for `await lm.acall(...)`: runs the sync recorder in a thread.

    `asyncio.to_thread` copies the context, so the rollout scope of the call reaches the recorder.
    """

    def __init__(self, sync: RecordingEngine) -> None:
        self.sync = sync

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncRecordingEngine:
        return self

    def dump_state(self) -> dict[str, Any]:
        return self.sync.dump_state()

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> AsyncRecordingEngine:
        """A loaded LM gets its own sync recorder here (same store; counters kept apart)."""
        return cls(RecordingEngine.load_state(state))

    async def complete(self, request: Request) -> Response:
        return await asyncio.to_thread(self.sync.complete, request)

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        events = await asyncio.to_thread(lambda: list(self.sync.stream(request)))
        for event in events:
            yield event

    async def aclose(self) -> None:
        return None
