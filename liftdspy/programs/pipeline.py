"""The forward pipeline: NL -> IR -> code -> compile -> execute, with an optional repair loop."""

from __future__ import annotations

import logging

import dspy

from liftdspy.code_check import check_function_source
from liftdspy.ir import IROutput, render_stub
from liftdspy.lm.answers import watch_answers
from liftdspy.programs.adapters import AdapterName, adapter_context
from liftdspy.programs.ir_to_code import IRToCode
from liftdspy.programs.nl_to_ir import nl_to_ir_module
from liftdspy.programs.predictors import PredictorKind, make_predictor
from liftdspy.programs.signatures import RepairCodeSignature
from liftdspy.sandbox.models import SandboxResult
from liftdspy.sandbox.report import failure_lines

logger = logging.getLogger(__name__)

MAX_REPAIR_ROUNDS = 3
MAX_FAILURE_REPORT_CHARS = 1500


def describe_failures(result: SandboxResult) -> str:
    """What the repair LM reads: the lines the code metric's feedback has (`failure_lines`)."""
    return "\n".join(failure_lines(result))[:MAX_FAILURE_REPORT_CHARS]


class ForwardPipeline(dspy.Module):
    """NL -> IR -> code. With `tests`, the code is executed in the sandbox; with
    `repair_rounds > 0` (off by default, so optimizers see the raw program) failing code is sent
    back to the LM with the failures, at most `repair_rounds` times. A cut-off answer at any step
    (NL -> IR, IR -> code, a repair) is never used: `truncated` says one was seen. `adapter` and
    `ir_output` are those of `NLToIR` (the adapter applies to every step)."""

    def __init__(
        self,
        predictor: PredictorKind = "predict",
        repair_rounds: int = 0,
        adapter: AdapterName | None = None,
        ir_output: IROutput = "lean",
    ):
        super().__init__()
        if not 0 <= repair_rounds <= MAX_REPAIR_ROUNDS:
            raise ValueError(
                f"repair_rounds must be in 0..{MAX_REPAIR_ROUNDS}, got {repair_rounds}"
            )
        self.repair_rounds = repair_rounds
        self.adapter = adapter
        self.nl_to_ir = nl_to_ir_module(predictor, adapter=adapter, ir_output=ir_output)
        self.ir_to_code = IRToCode(predictor, adapter=adapter)
        self.repair = make_predictor(RepairCodeSignature, predictor) if repair_rounds else None

    def forward(
        self, prompt: str, tests: list[str] | None = None, test_setup: str = ""
    ) -> dspy.Prediction:
        ir_out = self.nl_to_ir(prompt=prompt)
        if ir_out.ir is None:
            return dspy.Prediction(
                ir=None,
                code="",
                execution=None,
                error=ir_out.error,
                truncated=bool(ir_out.get("truncated", False)),
            )
        code_out = self.ir_to_code(ir=ir_out.ir)
        truncated = bool(code_out.get("truncated", False))
        code = code_out.code
        execution = None
        repairs = 0
        if tests and code_out.parses:
            from liftdspy.sandbox import run_tests

            execution = run_tests(code, tests, setup=test_setup)
            while (
                self.repair is not None
                and repairs < self.repair_rounds
                and (execution.pass_rate < 1.0)
            ):
                repairs += 1
                with watch_answers() as answers, adapter_context(self.adapter):
                    fixed = self.repair(
                        function_stub=render_stub(ir_out.ir),
                        code=code,
                        failures=describe_failures(execution),
                    )
                cut = answers.cut_off()
                if cut is not None:
                    logger.debug("repair round %d cut off: %s", repairs, cut.describe())
                    truncated = True
                    continue
                check = check_function_source(fixed.fixed_code, ir_out.ir.signature.name)
                if not check.parses:
                    logger.debug("repair round %d did not parse: %s", repairs, check.problems)
                    continue
                code = check.code
                execution = run_tests(code, tests, setup=test_setup)
        return dspy.Prediction(
            ir=ir_out.ir,
            code=code,
            execution=execution,
            repairs=repairs,
            error=code_out.error,
            truncated=truncated,
        )
