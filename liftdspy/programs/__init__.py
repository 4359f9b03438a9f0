"""DSPy programs: NL -> IR, IR -> code, and the forward pipeline."""

from liftdspy.programs.code_check import CodeCheck, check_function_source, strip_fences
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
    "CodeCheck",
    "ForwardPipeline",
    "IRToCode",
    "NLToIR",
    "PredictorKind",
    "ProgramError",
    "ProgramSpec",
    "build_program",
    "check_function_source",
    "make_predictor",
    "program_spec",
    "strip_fences",
]
