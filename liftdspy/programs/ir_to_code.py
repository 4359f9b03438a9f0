"""IR -> code as a DSPy module."""

from __future__ import annotations

import logging

import dspy
from dspy.utils.exceptions import AdapterParseError

from liftdspy.code_check import check_function_source
from liftdspy.ir import IntermediateRepresentation, coerce_ir, render_stub
from liftdspy.lm.answers import watch_answers
from liftdspy.programs.adapters import AdapterName, adapter_context
from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.signatures import IRToCodeSignature

logger = logging.getLogger(__name__)


class IRToCode(dspy.Module):
    """Maps an IR to the source text of one Python function.

    The LM sees the IR rendered as a Python stub (signature with type hints, docstring with
    intent, effects, assertions and holes) and answers with the whole function. The answer is
    checked with `ast`; `problems` lists what is wrong (no parse, wrong function name). An answer
    that ended at `max_tokens` yields no code, `truncated=True` and `error` saying where it was
    cut. Only the adapter's parse errors are caught; any other error propagates. `adapter` names
    the DSPy adapter the predictor runs with (`liftdspy.programs.adapters`); None leaves the
    caller's.
    """

    def __init__(self, predictor: PredictorKind = "predict", adapter: AdapterName | None = None):
        super().__init__()
        self.predictor_kind = predictor
        self.adapter = adapter
        self.implement = make_predictor(IRToCodeSignature, predictor)

    def forward(self, ir: IntermediateRepresentation | dict | str) -> dspy.Prediction:
        ir = coerce_ir(ir)
        stub = render_stub(ir)
        parse_error: AdapterParseError | None = None
        with watch_answers() as answers, adapter_context(self.adapter):
            try:
                out = self.implement(function_stub=stub)
            except AdapterParseError as exc:
                parse_error = exc
        cut = answers.cut_off()
        if cut is not None or parse_error is not None:
            error = (
                cut.describe()
                if cut is not None
                else f"{type(parse_error).__name__}: {parse_error}"
            )
            logger.debug("IR->code answer unusable: %s", error)
            return dspy.Prediction(
                code="", parses=False, problems=[error], error=error, truncated=cut is not None
            )
        check = check_function_source(out.code, ir.signature.name)
        return dspy.Prediction(
            code=check.code,
            parses=check.parses,
            problems=check.problems,
            error=None,
            truncated=False,
        )
