"""Programs by name, as experiment configs refer to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import dspy

from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import NLToIR
from liftdspy.programs.pipeline import ForwardPipeline
from liftdspy.programs.predictors import PredictorKind

ProgramName = Literal["nl_to_ir", "ir_to_code", "pipeline"]

PROGRAMS: dict[str, Callable[..., dspy.Module]] = {
    "nl_to_ir": NLToIR,
    "ir_to_code": IRToCode,
    "pipeline": ForwardPipeline,
}


def build_program(
    name: ProgramName, predictor: PredictorKind = "predict", **options
) -> dspy.Module:
    try:
        factory = PROGRAMS[name]
    except KeyError:
        known = ", ".join(sorted(PROGRAMS))
        raise ValueError(f"unknown program {name!r}: expected one of {known}") from None
    return factory(predictor=predictor, **options)
