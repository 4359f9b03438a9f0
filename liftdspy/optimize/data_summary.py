"""MIPROv2's data summary: fit what the summariser reads into the context, and never fall back
silently.

DSPy's `create_dataset_summary` (dspy/propose/dataset_summary_generator.py) shows the prompt model
`repr(trainset[0:view_data_batch_size])`: every field of every example in full. On liftdspy's rows
(prompt, gold IR, reference code, tests) ten examples are ~8,800 tokens, over the embedded model's
n_ctx of 8192. `GroundedProposer` catches the error, prints one line and proposes without a data
summary (`use_dataset_summary = False`).

* `SummaryView` examples are the trainset's examples with a short `repr`: each field capped at
  `SUMMARY_FIELD_CHARS` characters. The summariser sees a sample that fits; demos, metric and
  every adapter read the fields themselves, which are unchanged.
* `DataSummaryWatch`, a DSPy callback active during the compile, sees each summariser call end;
  `compile_program` raises `DataSummaryError` after a compile in which one failed, naming the
  cause, instead of returning a program proposed without the summary.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from liftdspy.errors import LiftdspyError

logger = logging.getLogger(__name__)

# 10 examples x ~5 fields x 160 characters: ~2,500 tokens of examples in the summariser prompt.
SUMMARY_FIELD_CHARS = 160

# The signatures of DSPy's dataset summariser (dspy.propose.dataset_summary_generator).
SUMMARY_SIGNATURES = frozenset(
    {"DatasetDescriptor", "DatasetDescriptorWithPriorObservations", "ObservationSummarizer"}
)


class DataSummaryError(LiftdspyError, RuntimeError):
    """MIPROv2 could not write its data summary (DSPy would propose without it)."""


def _capped(value: Any, limit: int) -> Any:
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return value
    return text[:limit] + f"... [{len(text) - limit} more chars]"


class SummaryView(dspy.Example):
    """A `dspy.Example` whose `repr` caps every field (what DSPy's dataset summariser reads).

    `copy()`, `with_inputs()` and `without()` keep the class (they build `type(self)`)."""

    field_chars = SUMMARY_FIELD_CHARS

    def __repr__(self) -> str:
        store = self._store.items()
        shown = {k: _capped(v, self.field_chars) for k, v in store if not k.startswith("dspy_")}
        return f"Example({shown}) (input_keys={self._input_keys})"


def summary_view(trainset: list[dspy.Example]) -> list[dspy.Example]:
    """The trainset as `SummaryView` examples (same fields, same input keys)."""
    views = []
    for example in trainset:
        view = SummaryView(base=dict(example._store))  # Example(base=) copies only its own class
        if example._input_keys is not None:
            view = view.with_inputs(*example._input_keys)
        views.append(view)
    return views


class DataSummaryWatch(BaseCallback):
    """Counts summariser calls of DSPy's dataset summary and keeps their errors."""

    def __init__(self) -> None:
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.failures: list[str] = []

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        signature = getattr(instance, "signature", None)
        name = getattr(signature, "__name__", "")
        if isinstance(instance, dspy.Predict) and name in SUMMARY_SIGNATURES:
            with self._lock:
                self._open[call_id] = name

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            name = self._open.pop(call_id, None)
            if name is None:
                return
            self.calls += 1
            if exception is not None:
                failure = f"{name}: {type(exception).__name__}: {exception}"
                self.failures.append(failure)
                logger.warning("MIPROv2 data summary call failed: %s", failure)

    def check(self) -> None:
        """Raise `DataSummaryError` if a summariser call failed during the compile."""
        if self.failures:
            raise DataSummaryError(
                f"MIPROv2's data summary failed ({len(self.failures)} of {self.calls} summariser "
                f"calls): {self.failures[0][:500]}. DSPy would have proposed instructions without "
                "it. Lower `compile.view_data_batch_size`, raise the LM's n_ctx, or set "
                "`compile.data_aware_proposer: false` to propose without a data summary on purpose."
            )
