"""DSPy programs: NL -> IR, IR -> code, and the forward pipeline."""

from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import NLToIR
from liftdspy.programs.pipeline import ForwardPipeline
from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.registry import (
    PROGRAM_SPECS,
    PROGRAMS,
    ProgramError,
    ProgramSpec,
    build_program,
    program_spec,
)

__all__ = [
    "PROGRAMS",
    "PROGRAM_SPECS",
    "ForwardPipeline",
    "IRToCode",
    "NLToIR",
    "PredictorKind",
    "ProgramError",
    "ProgramSpec",
    "build_program",
    "make_predictor",
    "program_spec",
]
