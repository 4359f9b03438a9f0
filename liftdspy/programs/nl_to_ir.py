"""NL -> IR as a DSPy module."""

from __future__ import annotations

import logging

import dspy
from dspy.utils.exceptions import AdapterParseError

from liftdspy.ir import IROutput, complete_ir
from liftdspy.lm.answers import watch_answers
from liftdspy.programs.adapters import AdapterName, adapter_context
from liftdspy.programs.lm_facing import lm_facing_demos
from liftdspy.programs.predictors import PredictorKind, make_predictor, predict_of
from liftdspy.programs.signatures import nl_to_ir_signature

logger = logging.getLogger(__name__)


class NLToIR(dspy.Module):
    """Maps a prompt to an `IntermediateRepresentation` (structured output through the adapter).

    With `ir_output="content"` (the default) the model writes the IR's content only
    (`IRContent`: no `metadata`, no `version`) and the program completes it
    (`liftdspy.ir.complete_ir`); its demos are shown as content too. `ir_output="full"` asks the
    model for the whole IR (the requests before the content output existed). Either way the
    prediction's `ir` is the full IR. `adapter` names the DSPy adapter the predictor runs with
    (`liftdspy.programs.adapters`); None leaves the caller's.

    An answer that ended at `max_tokens` yields `ir=None`, `truncated=True` and `error` saying
    where it was cut: a cut-off answer is never scored as an IR, even if the adapter's JSON repair
    could fill it in. An answer the adapter cannot parse into the IR yields `ir=None` and the
    reason in `error`, so an evaluation scores it instead of aborting. Any other error (an LM, a
    recording store or a grammar failure) propagates.
    """

    def __init__(
        self,
        predictor: PredictorKind = "predict",
        adapter: AdapterName | None = None,
        ir_output: IROutput = "content",
    ):
        super().__init__()
        self.predictor_kind = predictor
        self.adapter = adapter
        self.ir_output = ir_output
        self.translate = make_predictor(nl_to_ir_signature(ir_output), predictor)

    def forward(self, prompt: str) -> dspy.Prediction:
        parse_error: AdapterParseError | None = None
        call: dict = {"prompt": prompt}
        if self.ir_output == "content":
            predict = predict_of(self.translate)
            call["demos"] = lm_facing_demos(predict.signature, predict.demos)
        with watch_answers() as answers, adapter_context(self.adapter):
            try:
                out = self.translate(**call)
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
        ir = out.ir if self.ir_output == "full" else complete_ir(out.ir)
        return dspy.Prediction(
            ir=ir,
            error=None,
            reasoning=getattr(out, "reasoning", None),
            truncated=False,
            budget_closed=budget_closed,
        )
