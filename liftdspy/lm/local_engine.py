"""Where the embedded engine used to live; it is now the package `liftdspy.lm.local`.

Kept so that `from liftdspy.lm.local_engine import LocalEngine` (and saved programs naming
`liftdspy.lm.local_engine:LocalEngine`) keep working.
"""

from liftdspy.lm.local import (
    DECODER,
    DEFAULT_MAX_ARRAY_ITEMS,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_STRING_CHARS,
    DEFAULT_MAX_TOKENS,
    PROVIDER,
    BudgetTooSmallError,
    Generation,
    LoadedModel,
    LocalEngine,
    load_model,
    require_llama_cpp,
)

__all__ = [
    "DECODER",
    "DEFAULT_MAX_ARRAY_ITEMS",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_STRING_CHARS",
    "DEFAULT_MAX_TOKENS",
    "PROVIDER",
    "BudgetTooSmallError",
    "Generation",
    "LoadedModel",
    "LocalEngine",
    "load_model",
    "require_llama_cpp",
]
