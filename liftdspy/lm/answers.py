"""How each LM answer ended, reported to the program that asked for it.

DSPy 3.4 hands a module only the answer text (`dspy.LM.__call__` returns strings, and the
adapter parses them, repairing cut-off JSON with `json_repair`); `finish_reason` stays in
`lm.history`, which every thread shares. So `RecordingEngine`, which sees every response of every
engine (local, OpenAI-compatible, Modal; live or replayed), reports how each answer ended to the
`AnswerLog`s open in the calling context:

    with watch_answers() as answers:
        out = predictor(prompt=prompt)
    cut = answers.cut_off()   # the first answer that ended at max_tokens, or None

The log lives in a context variable: a thread of a parallel evaluation sees only its own calls
(DSPy runs a sync engine in the caller's thread and copies the context into async workers).
Logs nest: an answer is reported to the innermost log and every log around it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel

TRUNCATED_FINISH_REASON = "length"


class AnswerEnd(BaseModel):
    """How one LM answer ended."""

    model: str = ""
    finish_reason: str | None = None
    output_tokens: int | None = None
    max_tokens: int | None = None
    budget_closed: bool | None = None  # the local engine's grammar forced the JSON closed

    @property
    def truncated(self) -> bool:
        return self.finish_reason == TRUNCATED_FINISH_REASON

    def describe(self) -> str:
        """`answer truncated at N tokens ...` for a cut-off answer (the program's `error`)."""
        tokens = self.output_tokens if self.output_tokens is not None else self.max_tokens
        at = f"at {tokens} tokens" if tokens is not None else "at its token limit"
        budget = f", max_tokens={self.max_tokens}" if self.max_tokens is not None else ""
        return (
            f"answer truncated {at} (finish_reason {self.finish_reason}{budget}); a cut-off answer "
            "is not parsed or repaired"
        )


class AnswerLog:
    """The ends of the answers given inside one `watch_answers()` block (thread-safe)."""

    def __init__(self, parent: AnswerLog | None = None) -> None:
        self.parent = parent
        self._ends: list[AnswerEnd] = []
        self._lock = threading.Lock()

    def add(self, end: AnswerEnd) -> None:
        log: AnswerLog | None = self
        while log is not None:
            with log._lock:
                log._ends.append(end)
            log = log.parent

    @property
    def ends(self) -> list[AnswerEnd]:
        with self._lock:
            return list(self._ends)

    def cut_off(self) -> AnswerEnd | None:
        """The first answer that ended at its token limit, or None."""
        return next((end for end in self.ends if end.truncated), None)

    def budget_closed(self) -> bool | None:
        """True if the engine forced any answer closed; None when no engine said either way."""
        flags = [end.budget_closed for end in self.ends if end.budget_closed is not None]
        return any(flags) if flags else None


_LOG: ContextVar[AnswerLog | None] = ContextVar("liftdspy_answer_log", default=None)


@contextmanager
def watch_answers() -> Iterator[AnswerLog]:
    """Collect how every LM answer given inside the block ended."""
    log = AnswerLog(parent=_LOG.get())
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def report_answer(end: AnswerEnd) -> None:
    """Called by the recorder for every answer; a no-op outside `watch_answers()`."""
    log = _LOG.get()
    if log is not None:
        log.add(end)


def answer_end(response: Any, *, model: str = "", max_tokens: int | None = None) -> AnswerEnd:
    """The `AnswerEnd` of a `dspy.lm15.Response` (the local engine may add `budget_closed` under
    `provider_data["local"]`)."""
    usage = getattr(response, "usage", None)
    provider_data = getattr(response, "provider_data", None) or {}
    local = provider_data.get("local") if isinstance(provider_data, dict) else None
    budget_closed = local.get("budget_closed") if isinstance(local, dict) else None
    return AnswerEnd(
        model=model,
        finish_reason=getattr(response, "finish_reason", None),
        output_tokens=getattr(usage, "output_tokens", None),
        max_tokens=max_tokens,
        budget_closed=bool(budget_closed) if budget_closed is not None else None,
    )
