"""DSPy programs: NL -> IR, IR -> code, and the forward pipeline."""

from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import NLToIR
from liftdspy.programs.pipeline import ForwardPipeline
from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.registry import PROGRAMS, build_program

__all__ = [
    "PROGRAMS",
    "ForwardPipeline",
    "IRToCode",
    "NLToIR",
    "PredictorKind",
    "build_program",
    "make_predictor",
]
