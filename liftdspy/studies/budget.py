"""The study budget inside a cell: an engine wrapper that counts live LM calls and output tokens
and refuses the call that would go past what the study has left.

It sits between the recorder and the real engine, so replayed calls are free and the recording
key (the inner engine's identity) is unchanged. The error is an `LMConfigurationError`, which
DSPy and the evaluator re-raise instead of scoring 0, so the cell stops and is reported as cut
by the budget.
"""

from __future__ import annotations

import threading
from typing import Any

from dspy.lm15 import Request, Response
from dspy.utils.exceptions import LMConfigurationError
from pydantic import BaseModel

from liftdspy.errors import LiftdspyError
from liftdspy.lm.recorder import IdentifiedEngine


class BudgetExhaustedError(LiftdspyError, LMConfigurationError):
    """The study's LM budget (`budget.max_lm_calls` / `budget.max_output_tokens`) is spent."""

    default_code = "study_budget"


class Allowance(BaseModel):
    """What one cell may still spend (None: unlimited)."""

    lm_calls: int | None = None
    output_tokens: int | None = None


class BudgetedEngine:
    """Wraps an engine; every live call counts against a shared `Allowance`."""

    def __init__(self, inner: IdentifiedEngine, allowance: Allowance, spent: dict[str, int]):
        self.inner = inner
        self.allowance = allowance
        self.spent = spent
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # capability hints, api_key_env, dump_state, ...
        return getattr(self.inner, name)

    def identity(self) -> dict[str, str]:
        return self.inner.identity()

    def complete(self, request: Request) -> Response:
        with self._lock:
            calls, tokens = self.spent["lm_calls"], self.spent["output_tokens"]
            if self.allowance.lm_calls is not None and calls >= self.allowance.lm_calls:
                raise BudgetExhaustedError(
                    f"study budget: {calls} live LM calls spent, budget.max_lm_calls reached"
                )
            if self.allowance.output_tokens is not None and tokens >= self.allowance.output_tokens:
                raise BudgetExhaustedError(
                    f"study budget: {tokens} output tokens spent, budget.max_output_tokens reached"
                )
            self.spent["lm_calls"] += 1
        response = self.inner.complete(request)
        with self._lock:
            self.spent["output_tokens"] += response.usage.output_tokens or 0
        return response

    def stream(self, request: Request):
        return self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()
