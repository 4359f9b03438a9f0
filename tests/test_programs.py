"""Program logic: NL->IR parse failures, IR->code checks, the pipeline's bounded repair loop,
save/load, and the pipeline through the runner with the end-to-end metric.

The LM is `ScriptedCodeEngine`, a test-only `FunctionEngine` answering each predictor from a script:
these tests are about the programs' logic (parsing, checking, retrying), not model quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.lm15 import Request
from fixtures_engines import FunctionEngine, asked_field
from fixtures_ir import ADD_IR, lm_ir

from liftdspy.code_check import check_function_source, extract_code
from liftdspy.datasets import load_tasks
from liftdspy.experiments.config import ExperimentConfig
from liftdspy.experiments.runner import run_experiment
from liftdspy.ir import coerce_ir
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.programs import (
    ForwardPipeline,
    IRToCode,
    NLToIR,
    build_program,
)

# The LMs here are ScriptedCodeEngine with recorder mode "off": the offline default does not apply.
pytestmark = pytest.mark.scripted_lm

ROOT = Path(__file__).resolve().parents[1]
GOOD_CODE = "def add(a: int, b: int) -> int:\n    return a + b\n"
WRONG_CODE = "def add(a: int, b: int) -> int:\n    return a - b\n"


class ScriptedCodeEngine(FunctionEngine):
    """Answers by the output field the request asks for (`ir`, `code` or `fixed_code`), each
    from its own queue of JSON-ready values (the last one repeats); `asked` lists the fields."""

    def __init__(self, **answers: list):
        super().__init__(self._answer, model="scripted-code")
        self.answers = {field: list(values) for field, values in answers.items()}
        self.asked: list[str] = []

    def _answer(self, request: Request, number: int) -> str:
        field = asked_field(request)
        with self._lock:
            self.asked.append(field)
            queue = self.answers[field]
            value = queue.pop(0) if len(queue) > 1 else queue[0]
        return json.dumps({field: lm_ir(value) if field == "ir" else value})


def scripted_lm(tmp_path: Path, engine: ScriptedCodeEngine) -> dspy.LM:
    config = LMConfig(
        kind="local", model="scripted-code", recorder=RecorderConfig(mode="off", path=tmp_path)
    )
    return build_lm(config, engine=engine)


def test_extract_code_and_function_checks():
    assert extract_code("```python\ndef f():\n    pass\n```") == "def f():\n    pass"
    assert check_function_source(GOOD_CODE, "add").defines_function
    wrong = check_function_source("def plus(a, b):\n    return a + b", "add")
    assert wrong.parses and not wrong.defines_function
    assert wrong.problems == ["expected a function named 'add', found plus"]
    broken = check_function_source("def add(:\n", "add")
    assert not broken.parses and "does not parse: line 1" in broken.problems[0]


def test_nl_to_ir_returns_the_ir_or_the_reason_it_is_unusable(tmp_path):
    bad_ir = dict(ADD_IR, signature=dict(ADD_IR["signature"], name="not an identifier"))
    engine = ScriptedCodeEngine(ir=[ADD_IR, bad_ir])
    with dspy.context(lm=scripted_lm(tmp_path, engine), adapter=dspy.JSONAdapter()):
        good = NLToIR()(prompt="add two numbers")
        bad = NLToIR()(prompt="add two other numbers")
    assert good.ir.signature.name == "add" and good.error is None
    assert bad.ir is None and "signature.name" in bad.error


def test_ir_to_code_reports_a_wrong_function_name(tmp_path):
    engine = ScriptedCodeEngine(code=["```python\ndef plus(a, b):\n    return a + b\n```"])
    with dspy.context(lm=scripted_lm(tmp_path, engine), adapter=dspy.JSONAdapter()):
        out = IRToCode()(ir=ADD_IR)
    assert out.parses and out.code.startswith("def plus")
    assert out.problems == ["expected a function named 'add', found plus"]


def test_ir_to_code_takes_every_ir_form_the_metrics_take(tmp_path):
    # One coercer (liftdspy.ir.coerce_ir): the program used to refuse a fenced JSON IR that the
    # IR metric accepted.
    fenced = f"```json\n{json.dumps(ADD_IR)}\n```"
    engine = ScriptedCodeEngine(code=[GOOD_CODE])
    with dspy.context(lm=scripted_lm(tmp_path, engine), adapter=dspy.JSONAdapter()):
        outs = [IRToCode()(ir=form) for form in (ADD_IR, json.dumps(ADD_IR), fenced)]
    assert all(out.parses and out.problems == [] for out in outs)
    assert coerce_ir(fenced) == coerce_ir(ADD_IR)


def test_pipeline_repairs_failing_code_within_its_bound(tmp_path):
    tests = ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]
    engine = ScriptedCodeEngine(ir=[ADD_IR], code=[WRONG_CODE], fixed_code=[WRONG_CODE, GOOD_CODE])
    with dspy.context(lm=scripted_lm(tmp_path, engine), adapter=dspy.JSONAdapter()):
        out = ForwardPipeline(repair_rounds=2)(prompt="add two numbers", tests=tests)
    assert out.execution.pass_rate == 1.0 and out.repairs == 2
    assert engine.asked == ["ir", "code", "fixed_code", "fixed_code"]

    stubborn = ScriptedCodeEngine(ir=[ADD_IR], code=[WRONG_CODE], fixed_code=[WRONG_CODE])
    with dspy.context(lm=scripted_lm(tmp_path, stubborn), adapter=dspy.JSONAdapter()):
        out = ForwardPipeline(repair_rounds=1)(prompt="add two numbers", tests=tests)
    assert out.repairs == 1 and out.execution.pass_rate == 0.5
    with dspy.context(lm=scripted_lm(tmp_path, stubborn), adapter=dspy.JSONAdapter()):
        raw = ForwardPipeline()(prompt="add two numbers", tests=tests)
    assert raw.repairs == 0 and raw.code == WRONG_CODE.strip()  # off by default: raw program
    with pytest.raises(ValueError, match=r"repair_rounds must be in 0\.\.3"):
        ForwardPipeline(repair_rounds=9)


def test_programs_save_and_load_with_dspy_json(tmp_path):
    program = build_program("pipeline", "cot")
    program.nl_to_ir.translate.predict.signature = (
        program.nl_to_ir.translate.predict.signature.with_instructions("Be precise.")
    )
    path = tmp_path / "pipeline.json"
    program.save(str(path))
    loaded = build_program("pipeline", "cot")
    loaded.load(str(path))
    assert loaded.nl_to_ir.translate.predict.signature.instructions == "Be precise."
    with pytest.raises(ValueError, match="unknown program 'nope'"):
        build_program("nope")


def test_pipeline_experiment_scores_with_the_end_to_end_metric(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    task = next(t for t in load_tasks([ROOT / "datasets" / "core"], splits=["test"]))
    engine = ScriptedCodeEngine(ir=[task.ir.model_dump(mode="json")], code=[task.reference])
    config = ExperimentConfig.model_validate(
        {
            "name": "pipeline-test",
            "dataset": {
                "paths": [str(ROOT / "datasets" / "core")],
                "max_train": 3,
                "max_val": 2,
                "max_eval": 1,
            },
            "program": {"name": "pipeline"},
            "lm": {
                "kind": "local",
                "model": "scripted-code",
                "recorder": {"mode": "off", "path": str(tmp_path / "r")},
            },
            "optimizer": {"preset": "labeled-fewshot"},
            "tracking": {
                "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "experiment": "pipeline-test",
            },
        }
    )
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))
    (result,) = outcome.baseline.results
    assert config.metric.name == "end_to_end"
    assert result.id == task.id and result.score == pytest.approx(1.0)
    assert result.tests_passed is None  # the pipeline ran without tests; the metric ran them
    assert result.components["code.tests_passed"] == 1.0


class StoreErrorLM(dspy.BaseLM):
    """Test-only LM whose every call fails like a malformed recording store (a ValueError)."""

    def __init__(self):
        super().__init__(model="scripted/store-error")

    def forward(self, prompt=None, messages=None, **kwargs):
        from liftdspy.lm.store import RecordingStoreError

        raise RecordingStoreError("cache/diskcache/x: entry 0123456789ab is malformed")


def test_programs_let_errors_other_than_parse_errors_propagate():
    from liftdspy.lm.store import RecordingStoreError

    with dspy.context(lm=StoreErrorLM(), adapter=dspy.JSONAdapter()):
        with pytest.raises(RecordingStoreError, match="malformed"):
            NLToIR()(prompt="add two numbers")
        with pytest.raises(RecordingStoreError, match="malformed"):
            IRToCode()(ir=ADD_IR)


def test_repair_rounds_in_an_experiment_see_the_tests(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    task = next(t for t in load_tasks([ROOT / "datasets" / "core"], splits=["test"]))
    broken = task.reference.replace("return", "return None  #", 1)
    engine = ScriptedCodeEngine(
        ir=[task.ir.model_dump(mode="json")], code=[broken], fixed_code=[task.reference]
    )
    config = ExperimentConfig.model_validate(
        {
            "name": "repair-test",
            "dataset": {
                "paths": [str(ROOT / "datasets" / "core")],
                "max_train": 3,
                "max_val": 2,
                "max_eval": 1,
            },
            "program": {"name": "pipeline", "repair_rounds": 1},
            "lm": {
                "kind": "local",
                "model": "scripted-code",
                "recorder": {"mode": "off", "path": str(tmp_path / "r")},
            },
            "optimizer": {"preset": "labeled-fewshot"},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "repair"},
        }
    )
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))
    (result,) = outcome.baseline.results
    assert "fixed_code" in engine.asked  # the repair loop ran, so it saw the tests
    assert result.tests_passed == result.tests_total and result.score == pytest.approx(1.0)


def test_repair_rounds_are_refused_for_programs_without_tests():
    with pytest.raises(ValueError, match="repair_rounds applies to the pipeline program only"):
        ExperimentConfig.model_validate(
            {
                "name": "x",
                "dataset": {"paths": ["datasets/core"]},
                "program": {"name": "nl_to_ir", "repair_rounds": 1},
                "lm": {"kind": "local", "model": "m"},
                "optimizer": {"preset": "labeled-fewshot"},
            }
        )
