"""liftdspy: DSPy optimization research for natural language -> IR -> Python code.

The public surface is flat and lazily loaded: `liftdspy.NLToIR`, `liftdspy.build_lm`,
`liftdspy.run_experiment`, ... import their module (and DSPy, MLflow) on first use only, so
`import liftdspy` and `import liftdspy.runtime` stay light and DSPy-free.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# MLflow imports LiteLLM, which downloads a model price table at import time and hangs
# without internet. Use the bundled copy unless the user chose otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    # data
    "IntermediateRepresentation": "liftdspy.ir",
    "IRContent": "liftdspy.ir",
    "IRLean": "liftdspy.ir",
    "LabelledTask": "liftdspy.datasets",
    "load_tasks": "liftdspy.datasets",
    # LMs
    "LMConfig": "liftdspy.lm.config",
    "RecorderConfig": "liftdspy.lm.config",
    "build_lm": "liftdspy.lm.config",
    # programs
    "NLToIR": "liftdspy.programs.nl_to_ir",
    "AdaptedNLToIR": "liftdspy.programs.nl_to_ir",
    "build_adapter": "liftdspy.programs.adapters",
    "IRToCode": "liftdspy.programs.ir_to_code",
    "ForwardPipeline": "liftdspy.programs.pipeline",
    # metrics
    "IRMetric": "liftdspy.metrics.ir_metric",
    "CodeMetric": "liftdspy.metrics.code_metric",
    "EndToEndMetric": "liftdspy.metrics.end_to_end",
    # sandbox
    "run_tests": "liftdspy.sandbox",
    "SandboxLimits": "liftdspy.sandbox",
    # experiments
    "ExperimentConfig": "liftdspy.experiments.config",
    "run_experiment": "liftdspy.experiments.runner",
    # tracking
    "RunRecord": "liftdspy.tracking.run_record",
    "read_run": "liftdspy.tracking.run_record",
    # production
    "PromptRuntime": "liftdspy.runtime",
    # errors
    "LiftdspyError": "liftdspy.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'liftdspy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
