"""NL -> IR as a DSPy module."""

from __future__ import annotations

import logging

import dspy
from dspy.utils.exceptions import AdapterParseError

from liftdspy.lm.answers import watch_answers
from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.signatures import NLToIRSignature

logger = logging.getLogger(__name__)


class NLToIR(dspy.Module):
    """Maps a prompt to an `IntermediateRepresentation` (structured output through the adapter).

    An answer that ended at `max_tokens` yields `ir=None`, `truncated=True` and `error` saying
    where it was cut: a cut-off answer is never scored as an IR, even if the adapter's JSON repair
    could fill it in. An answer the adapter cannot parse into the IR yields `ir=None` and the
    reason in `error`, so an evaluation scores it instead of aborting. Any other error (an LM, a
    recording store or a grammar failure) propagates.
    """

    def __init__(self, predictor: PredictorKind = "predict"):
        super().__init__()
        self.predictor_kind = predictor
        self.translate = make_predictor(NLToIRSignature, predictor)

    def forward(self, prompt: str) -> dspy.Prediction:
        parse_error: AdapterParseError | None = None
        with watch_answers() as answers:
            try:
                out = self.translate(prompt=prompt)
            except AdapterParseError as exc:
                parse_error = exc
        budget_closed = answers.budget_closed()
        cut = answers.cut_off()
        if cut is not None:
            logger.debug("NL->IR answer cut off: %s", cut.describe())
            return dspy.Prediction(
                ir=None, error=cut.describe(), truncated=True, budget_closed=budget_closed
            )
        if parse_error is not None:
            logger.debug("NL->IR answer unusable: %s", parse_error)
            return dspy.Prediction(
                ir=None,
                error=f"{type(parse_error).__name__}: {parse_error}",
                truncated=False,
                budget_closed=budget_closed,
            )
        return dspy.Prediction(
            ir=out.ir,
            error=None,
            reasoning=getattr(out, "reasoning", None),
            truncated=False,
            budget_closed=budget_closed,
        )
