"""Optimizers: presets, construction with DSPy's quirks handled, and candidate extraction."""

from liftdspy.optimize.builder import BuildNotes, BuiltOptimizer, build_optimizer, compile_program
from liftdspy.optimize.candidates import Candidate, PredictorSnapshot, extract_candidates, snapshot
from liftdspy.optimize.presets import (
    OptimizerName,
    OptimizerPreset,
    PresetError,
    available_presets,
    load_preset,
)

__all__ = [
    "BuildNotes",
    "BuiltOptimizer",
    "Candidate",
    "OptimizerName",
    "OptimizerPreset",
    "PredictorSnapshot",
    "PresetError",
    "available_presets",
    "build_optimizer",
    "compile_program",
    "extract_candidates",
    "load_preset",
    "snapshot",
]
