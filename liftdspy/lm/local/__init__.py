"""The embedded engine: a small GGUF model run in-process by llama.cpp, as a DSPy 3.4 LM engine.

- `model`: the located, loaded model (weights, tokenizer, vocabulary, grammar compiler), one per
  process and settings;
- `decode`: one answer's decoding (grammar mask, seeded sampling, jump-forward, budget-aware end);
- `batch`: the scheduler decoding every concurrent request of a lane in one llama.cpp context;
- `lanes`: one scheduler per core over the same weights (`LanePool`), and the lane a request
  takes;
- `engine`: `LocalEngine`, the DSPy engine (`complete(Request) -> Response`).

`llama_cpp` and `xgrammar` are imported lazily: the package imports without the `local` extra.
"""

from liftdspy.lm.local.batch import DEFAULT_MAX_BATCH, BatchScheduler, SchedulerStats
from liftdspy.lm.local.decode import PROVIDER, Generation, Sampling, SequenceDecoder
from liftdspy.lm.local.engine import (
    DECODER,
    DEFAULT_MAX_ARRAY_ITEMS,
    DEFAULT_MAX_STRING_CHARS,
    DEFAULT_MAX_TOKENS,
    BudgetTooSmallError,
    LocalEngine,
)
from liftdspy.lm.local.lanes import LanePool, pool_for
from liftdspy.lm.local.model import LoadedModel, load_model, require_llama_cpp

__all__ = [
    "DECODER",
    "DEFAULT_MAX_ARRAY_ITEMS",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_STRING_CHARS",
    "DEFAULT_MAX_TOKENS",
    "PROVIDER",
    "BatchScheduler",
    "BudgetTooSmallError",
    "Generation",
    "LanePool",
    "LoadedModel",
    "LocalEngine",
    "Sampling",
    "SchedulerStats",
    "SequenceDecoder",
    "load_model",
    "pool_for",
    "require_llama_cpp",
]
