"""What the NL->IR benchmarks share: the prompts, an engine wrapper that keeps each call's
responses, and the strict reading of an answer (`answers_per_minute.py`).

An answer is *complete* when the model ended it (`finish_reason == "stop"`, not closed by the
local engine's budget), the program read it without repair (the prediction has an `ir`, not
`truncated`, no `error`) and that `ir` validates as an `IntermediateRepresentation`.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the liftdspy of this checkout, not an installed one


class CapturingEngine:
    """Wraps an engine and keeps, per thread, the responses (with their wall time) of the answer
    in progress: DSPy's LM hides them, and the recorder (mode off) passes them through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for name in (
            "supports_response_schema",
            "supports_function_calling",
            "supports_reasoning",
            "supported_params",
        ):
            setattr(self, name, getattr(inner, name))
        self._local = threading.local()

    def responses(self) -> list[tuple[Any, float]]:
        if not hasattr(self._local, "responses"):
            self._local.responses = []
        return self._local.responses

    def identity(self) -> dict[str, str]:
        return self.inner.identity()

    def complete(self, request: Any) -> Any:
        started = time.perf_counter()
        response = self.inner.complete(request)
        self.responses().append((response, time.perf_counter() - started))
        return response

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        self.inner.close()


def core_prompts(n_examples: int, split: str = "test") -> list[str]:
    """The first `n_examples` prompts of the core dataset's `split`, in file order."""
    from liftdspy.datasets.loader import load_tasks

    tasks = load_tasks([ROOT / "datasets" / "core"])
    return [t.prompt for t in tasks if t.split == split][:n_examples]


def core_demos(n_demos: int) -> list[Any]:
    """The first `n_demos` labelled train examples of the core dataset, as DSPy demos."""
    import dspy

    from liftdspy.datasets.loader import load_tasks

    tasks = load_tasks([ROOT / "datasets" / "core"])
    return [
        dspy.Example(prompt=t.prompt, ir=t.ir).with_inputs("prompt")
        for t in tasks
        if t.split == "train"
    ][:n_demos]


def ir_validates(value: Any) -> bool:
    from pydantic import BaseModel, ValidationError

    from liftdspy.ir import IntermediateRepresentation

    if value is None:
        return False
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        IntermediateRepresentation.model_validate(value)
    except ValidationError:
        return False
    return True


def answer_row(prediction: Any, calls: list[tuple[Any, float]], seconds: float) -> dict:
    """One answer's figures from the program's prediction and the engine's responses."""
    last = calls[-1][0] if calls else None
    local = ((last.provider_data or {}).get("local") or {}) if last is not None else {}
    finish = last.finish_reason if last is not None else "error"
    read = (
        prediction is not None
        and getattr(prediction, "error", None) is None
        and not getattr(prediction, "truncated", False)
        and ir_validates(getattr(prediction, "ir", None))
    )
    budget_closed = bool(local.get("budget_closed"))
    return {
        "calls": len(calls),
        "seconds": round(seconds, 3),
        "prompt_tokens": last.usage.input_tokens if last is not None else 0,
        "output_tokens": last.usage.output_tokens if last is not None else 0,
        "forced_tokens": local.get("forced_tokens") if local else None,
        "finish_reason": finish,
        "budget_closed": budget_closed,
        "valid": read,
        "complete": read and finish == "stop" and not budget_closed,
        "error": None if prediction is None else getattr(prediction, "error", None),
    }
