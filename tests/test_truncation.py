"""A cut-off answer (finish_reason "length") is recorded as truncated and never scored as parsed.

Two LMs here, both the test-only `FunctionEngine`: `cut_engine`, answering with a JSON IR cut short
(the logic: what the recorder, the programs and the metric do with it), and one replaying a real
truncated answer of the embedded SmolLM2-135M (kept in `tests/data/truncated_answer.json` from
the demo recording of 2026-11-21).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dspy
import pytest
from dspy.lm15 import Message, Request, Response, TextPart, Usage
from fixtures_engines import FunctionEngine, asked_field, ir_answer
from fixtures_ir import ADD_IR

from liftdspy.datasets import load_tasks
from liftdspy.experiments.evaluation import evaluate_program
from liftdspy.experiments.examples import to_examples
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.lm.answers import AnswerEnd, watch_answers
from liftdspy.lm.config import recorder_of
from liftdspy.lm.store import RecordingStore
from liftdspy.metrics.ir_metric import IRMetric
from liftdspy.programs import ForwardPipeline, IRToCode, NLToIR

ROOT = Path(__file__).resolve().parents[1]
REAL_CUT_ANSWER = ROOT / "tests" / "data" / "truncated_answer.json"

FULL_IR = {k: v for k, v in ADD_IR.items() if k not in ("metadata", "version")}
# Cut inside the last list: json_repair closes it into a schema-valid IR.
CUT_TEXT = json.dumps({"ir": FULL_IR})[:-20]


def cut_engine(
    texts: list[str],
    finish_reason: str = "length",
    *,
    complete_when: Callable[[Request, int], bool] = lambda request, number: False,
) -> FunctionEngine:
    """Answers `texts` in turn (the last repeats) with `finish_reason`; a call for which
    `complete_when(request, number)` holds gets the full IR, ended by the model itself."""

    def answer(request: Request, number: int) -> str | Response:
        if complete_when(request, number):
            return engine.response(ir_answer(FULL_IR), number=number, finish_reason="stop")
        return texts[min(number, len(texts)) - 1]

    engine = FunctionEngine(
        answer,
        model="scripted-cut",
        finish_reason=finish_reason,
        usage=(10, 120),
        provider_data={"local": {"budget_closed": False}},
    )
    return engine


def scripted_lm(tmp_path: Path, engine, max_tokens: int = 120) -> dspy.LM:
    config = LMConfig(
        kind="local",
        model="scripted-cut",
        max_tokens=max_tokens,
        recorder=RecorderConfig(mode="record", path=tmp_path / "rec"),
    )
    return build_lm(config, engine=engine)


def test_the_cut_answer_would_be_repaired_into_a_valid_ir():
    # The premise of the tests below: DSPy's JSONAdapter repairs this fragment into an IR.
    from liftdspy.programs.signatures import NLToIRSignature

    fields = dspy.JSONAdapter().parse(NLToIRSignature, CUT_TEXT)
    assert fields["ir"].signature.name == "add"


def test_a_cut_off_ir_is_not_parsed_and_scores_zero(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    lm = scripted_lm(tmp_path, cut_engine([CUT_TEXT]))
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = NLToIR()(prompt="add two numbers")
    assert out.ir is None and out.truncated is True
    assert "truncated at 120 tokens" in out.error
    assert out.budget_closed is False  # the engine's flag, when it sends one, is kept

    example = dspy.Example(id="t1", prompt="add two numbers", ir=FULL_IR).with_inputs("prompt")
    breakdown = IRMetric().breakdown(example, out)
    assert breakdown.total == 0.0 and breakdown.components["schema_valid"] == 0.0
    assert "truncated" in breakdown.feedback

    assert recorder_of(lm).stats().truncated == 1
    (entry,) = list(RecordingStore(tmp_path / "rec").entries())
    assert entry.truncated is True  # recorded as truncated


def test_a_complete_answer_still_parses(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    lm = scripted_lm(tmp_path, cut_engine([ir_answer(FULL_IR)], finish_reason="stop"))
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = NLToIR()(prompt="add two numbers")
    assert out.ir.signature.name == "add" and out.truncated is False and out.error is None
    assert recorder_of(lm).stats().truncated == 0


def test_cut_off_code_is_not_used_by_ir_to_code_or_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    cut_code = json.dumps({"code": "def add(a: int, b: int) -> int:\n    return a + b\n"})[:-3]
    with dspy.context(lm=scripted_lm(tmp_path, cut_engine([cut_code])), adapter=dspy.JSONAdapter()):
        out = IRToCode()(ir=FULL_IR)
    assert out.code == "" and out.truncated is True and "truncated" in out.error

    # NL -> IR answers completely, IR -> code is cut: the pipeline reports the truncation.
    mixed = cut_engine([cut_code], complete_when=lambda request, n: asked_field(request) == "ir")
    with dspy.context(lm=scripted_lm(tmp_path, mixed), adapter=dspy.JSONAdapter()):
        out = ForwardPipeline()(prompt="add two numbers")
    assert out.ir is not None and out.code == "" and out.truncated is True


def test_evaluation_reports_the_truncated_rate(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    tasks = load_tasks([ROOT / "datasets" / "core"], splits=["test"])[:4]

    # the first two answers are cut, the others complete
    engine = cut_engine([CUT_TEXT], complete_when=lambda request, number: number > 2)
    with dspy.context(lm=scripted_lm(tmp_path, engine), adapter=dspy.JSONAdapter()):
        report = evaluate_program(NLToIR(), to_examples(tasks, "nl_to_ir"), IRMetric(), label="t")
    assert [r.truncated for r in report.results] == [True, True, False, False]
    assert report.truncated_rate == 0.5
    assert report.table()["truncated"] == [True, True, False, False]
    assert all(r.score == 0.0 for r in report.results[:2])
    assert all(r.components["schema_valid"] == 1.0 for r in report.results[2:])


def test_a_real_recorded_truncated_answer_is_not_scored_as_an_ir(tmp_path, monkeypatch):
    """A zero-shot NL->IR answer of the embedded SmolLM2-135M (kept from the demo recording of
    2026-11-21 in tests/data), cut at max_tokens=450: JSON repair used to turn it into an IR that
    validated and was scored; now it is recorded as truncated and gives no IR."""
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    real = json.loads(REAL_CUT_ANSWER.read_text(encoding="utf-8"))
    assert real["response"]["finish_reason"] == "length"
    config = LMConfig(
        kind="local",
        model="smollm2-135m",
        temperature=0.0,
        max_tokens=450,
        recorder=RecorderConfig(mode="record", path=tmp_path / "store"),
    )
    from liftdspy.dspy_compat import response_from_dict

    replay = FunctionEngine(
        lambda request, number: response_from_dict(real["response"]),  # verbatim, any prompt
        identity=real["identity"],
        structured=True,
    )
    lm = build_lm(config, engine=replay)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()), watch_answers() as answers:
        out = NLToIR()(prompt=real["prompt"])
    (end,) = answers.ends
    assert end == AnswerEnd(
        model="smollm2-135m", finish_reason="length", output_tokens=450, max_tokens=450
    )
    assert out.ir is None and out.truncated is True
    assert out.error.startswith("answer truncated at 450 tokens")
    assert recorder_of(lm).stats().truncated == 1
    (entry,) = list(RecordingStore(tmp_path / "store").entries())
    assert entry.truncated is True
    # What JSON repair would have made of it: an IR that validates (the old, wrong score).
    from liftdspy.programs.signatures import NLToIRSignature

    text = real["response"]["message"]["parts"][0]["text"]
    assert dspy.JSONAdapter().parse(NLToIRSignature, text)["ir"] is not None


@pytest.mark.parametrize("finish_reason", ["length", "stop"])
def test_answer_end_reads_the_local_engine_budget_flag(finish_reason):
    from liftdspy.lm.answers import answer_end

    response = Response(
        id="x",
        model="m",
        message=Message.assistant([TextPart("{}")]),
        finish_reason=finish_reason,
        usage=Usage(input_tokens=1, output_tokens=7, total_tokens=8),
        provider_data={"local": {"budget_closed": True}},
    )
    end = answer_end(response, model="m", max_tokens=7)
    assert end.truncated is (finish_reason == "length") and end.budget_closed is True


@pytest.fixture
def cut_server(monkeypatch):
    """The scripted chat server (a logic stub, not a model) answering with finish_reason length."""
    from tests import fixtures_server

    completion = json.loads(json.dumps(fixtures_server.CANNED_COMPLETION))
    completion["choices"][0]["finish_reason"] = "length"
    completion["usage"]["completion_tokens"] = 64
    monkeypatch.setattr(fixtures_server, "CANNED_COMPLETION", completion)
    with fixtures_server.ScriptedChatServer([], reply=CUT_TEXT) as server:
        yield server


def test_an_openai_compatible_cut_off_answer_is_not_parsed(tmp_path, monkeypatch, cut_server):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    monkeypatch.setenv("LIFTDSPY_TEST_CUT_KEY", "sk-test-cut-0123456789")
    config = LMConfig(
        kind="openai",
        model="stub-model",
        base_url=cut_server.base_url,
        max_tokens=64,
        api_key_env="LIFTDSPY_TEST_CUT_KEY",
        recorder=RecorderConfig(mode="record", path=tmp_path / "rec"),
    )
    lm = build_lm(config)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = NLToIR()(prompt="add two numbers")
    assert out.ir is None and out.truncated is True
    assert "truncated at 64 tokens" in out.error
    assert recorder_of(lm).stats().truncated == 1


def test_the_runtime_refuses_a_cut_off_answer(cut_server):
    from liftdspy.runtime import ChatEndpoint, TruncatedAnswerError

    endpoint = ChatEndpoint(base_url=cut_server.base_url, model="stub-model")
    with pytest.raises(TruncatedAnswerError, match="truncated at 64 tokens") as caught:
        endpoint.message_text({"messages": [{"role": "user", "content": "x"}], "max_tokens": 64})
    assert caught.value.output_tokens == 64


def test_the_results_table_says_which_answers_the_engine_closed_on_budget():
    from liftdspy.experiments.evaluation import EvaluationReport, ExampleResult
    from liftdspy.stats.bootstrap import ConfidenceInterval

    results = [
        ExampleResult(id="a", score=0.0, truncated=True, budget_closed=True),
        ExampleResult(id="b", score=0.5, truncated=False, budget_closed=False),
        ExampleResult(id="c", score=0.5),  # an engine that does not say (OpenAI-compatible)
    ]
    interval = ConfidenceInterval(mean=1 / 3, low=0.0, high=0.5, n=3)
    report = EvaluationReport(
        label="t", n=3, score=interval, components={}, results=results, seconds=0.0
    )
    assert report.table()["budget_closed"] == [True, False, None]
    assert report.table()["truncated"] == [True, False, False]


def test_export_parity_scores_a_cut_off_answer_zero_in_the_runtime_too(tmp_path, monkeypatch):
    """The runtime side of parity (`liftdspy evaluate --runtime`, the study's parity) used to parse
    a cut answer the DSPy side scores 0: with identical requests the two differed (seen on the demo
    run: +0.014 from its cut answers). Both score it 0 now, with the reason."""
    from liftdspy.export import write_export
    from liftdspy.studies.parity import score_parity

    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    tasks = load_tasks([ROOT / "datasets" / "core"], splits=["test"])[:2]
    examples = to_examples(tasks, "nl_to_ir")
    config = LMConfig(
        kind="local",
        model="scripted-cut",
        max_tokens=120,
        recorder=RecorderConfig(mode="record", path=tmp_path / "rec"),
    )
    write_export(NLToIR(), tmp_path / "export", lm_config=config)
    # Closed at max_tokens, as the embedded engine closes an answer within its budget
    # (budget_closed): valid JSON, yet cut off.
    closed = cut_engine([json.dumps({"ir": FULL_IR})])
    scores = score_parity(
        NLToIR(), tmp_path / "export", "nl_to_ir", examples, IRMetric(), config, closed
    )
    assert scores.requests == 2
    assert scores.dspy_scores == [0.0, 0.0]
    assert scores.runtime_scores == [0.0, 0.0]
    assert len(scores.errors) == 2 and all("truncated at 120 tokens" in e for e in scores.errors)
