"""liftdspy: DSPy optimization research for natural language -> IR -> Python code."""

from __future__ import annotations

import os

# MLflow imports LiteLLM, which downloads a model price table at import time and hangs
# without internet. Use the bundled copy unless the user chose otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"

__all__ = ["__version__"]
