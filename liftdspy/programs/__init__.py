"""DSPy programs: NL -> IR, IR -> code, and the forward pipeline; the adapters they run with."""

from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import AdaptedNLToIR, NLToIR, nl_to_ir_module
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
    "AdaptedNLToIR",
    "ForwardPipeline",
    "IRToCode",
    "NLToIR",
    "PredictorKind",
    "ProgramError",
    "ProgramSpec",
    "build_program",
    "make_predictor",
    "nl_to_ir_module",
    "program_spec",
]
