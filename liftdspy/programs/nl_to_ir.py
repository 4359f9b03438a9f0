"""NL -> IR as a DSPy module."""

from __future__ import annotations

import logging

import dspy
from pydantic import ValidationError

from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.signatures import NLToIRSignature

logger = logging.getLogger(__name__)


class NLToIR(dspy.Module):
    """Maps a prompt to an `IntermediateRepresentation` (structured output through the adapter).

    An answer the adapter cannot parse into the IR yields `ir=None` and the reason in `error`,
    so an evaluation scores it instead of aborting.
    """

    def __init__(self, predictor: PredictorKind = "predict"):
        super().__init__()
        self.predictor_kind = predictor
        self.translate = make_predictor(NLToIRSignature, predictor)

    def forward(self, prompt: str) -> dspy.Prediction:
        try:
            out = self.translate(prompt=prompt)
        except (dspy.utils.exceptions.AdapterParseError, ValidationError, ValueError) as exc:
            logger.debug("NL->IR answer unusable: %s", exc)
            return dspy.Prediction(ir=None, error=f"{type(exc).__name__}: {exc}")
        return dspy.Prediction(ir=out.ir, error=None, reasoning=getattr(out, "reasoning", None))
