"""NL -> IR as DSPy modules.

`NLToIR` asks the model for the whole `IntermediateRepresentation` with whatever adapter the caller
set: the requests of every recording made before the LM-facing output existed, byte for byte
(its source text is part of them too: MIPROv2's proposer shows the model the program's code, so
the class is kept as it was). `AdaptedNLToIR` runs with its own adapter and, by default, asks the
model for the IR's lean content (`IRLean`: no bookkeeping, no rationales), completing it into
the full IR itself.
`nl_to_ir_module` builds the one the options call for.
"""

from __future__ import annotations

import logging

import dspy
from dspy.utils.exceptions import AdapterParseError

from liftdspy.ir import IROutput, complete_ir
from liftdspy.lm.answers import watch_answers
from liftdspy.programs.adapters import AdapterName, adapter_context
from liftdspy.programs.lm_facing import lm_facing_demos
from liftdspy.programs.predictors import PredictorKind, make_predictor, predict_of
from liftdspy.programs.signatures import NLToIRSignature, nl_to_ir_signature

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


class AdaptedNLToIR(dspy.Module):
    """`NLToIR` with its own adapter and an LM-facing output (the prediction's `ir` is the full
    IR either way; cut-off and unparsable answers are read as `NLToIR` reads them).

    With `ir_output="lean"` (the default) the model writes the IR's content without its two
    free-text rationales (`IRLean`), with `"content"` all of its content (`IRContent`: no
    `metadata`, no `version`), and the program completes it (`liftdspy.ir.complete_ir`: metadata
    origin `model`, the current version, left-out rationales ""); its demos are shown the same way
    (`lm_facing_demos`, at call time: the demos an optimizer set stay as they are).
    `ir_output="full"` asks for the whole IR. `adapter` names the DSPy adapter the predictor runs
    with (`liftdspy.programs.adapters`); None leaves the caller's.
    """

    def __init__(
        self,
        predictor: PredictorKind = "predict",
        adapter: AdapterName | None = None,
        ir_output: IROutput = "lean",
    ):
        super().__init__()
        self.predictor_kind = predictor
        self.adapter = adapter
        self.ir_output = ir_output
        self.translate = make_predictor(nl_to_ir_signature(ir_output), predictor)

    def forward(self, prompt: str) -> dspy.Prediction:
        call: dict = {"prompt": prompt}
        if self.ir_output != "full":
            predict = predict_of(self.translate)
            call["demos"] = lm_facing_demos(predict.signature, predict.demos)
        parse_error: AdapterParseError | None = None
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
        return dspy.Prediction(
            ir=out.ir if self.ir_output == "full" else complete_ir(out.ir),
            error=None,
            reasoning=getattr(out, "reasoning", None),
            truncated=False,
            budget_closed=budget_closed,
        )


def nl_to_ir_module(
    predictor: PredictorKind = "predict",
    adapter: AdapterName | None = None,
    ir_output: IROutput = "lean",
) -> NLToIR | AdaptedNLToIR:
    """The NL -> IR module for these options: `NLToIR` itself for the full IR with DSPy's
    JSONAdapter (or no adapter of its own), else an `AdaptedNLToIR`.

    `NLToIR` runs with the caller's adapter: liftdspy's runners (experiments, study cells,
    evaluate, parity) set it from `program.adapter`; a direct caller of `adapter="json",
    ir_output="full"` sets `dspy.context(adapter=build_adapter("json"))`. Once no committed
    recording holds `NLToIR`'s requests, this branch and the class can go.
    """
    if ir_output == "full" and adapter in (None, "json"):
        return NLToIR(predictor)
    return AdaptedNLToIR(predictor, adapter=adapter, ir_output=ir_output)
