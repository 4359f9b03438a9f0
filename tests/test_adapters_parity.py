"""Export parity for every adapter: the DSPy program and its prompt pack run by `liftdspy.runtime`
(no DSPy) send byte-identical requests and score the same.

Two paths, each with a scripted LM (test-only: these tests are about what is sent and parsed, not
about model quality):
- on the wire: `OpenAIEngine` and the runtime's `ChatEndpoint` against one `ScriptedChatServer`,
  the whole pipeline (both predictors, with demos);
- through the engine contract, as `liftdspy evaluate --runtime` and a study's parity check run the
  embedded model: `score_parity` with a `FunctionEngine`, canonical requests compared by digest
  (the compact layout's `metadata.json_layout` included) and the paired score difference 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dspy
import pytest
from fixtures_engines import FunctionEngine
from fixtures_ir import lm_ir
from fixtures_server import ScriptedChatServer

from liftdspy.datasets import load_tasks
from liftdspy.experiments.config import MetricConfig
from liftdspy.experiments.examples import to_examples
from liftdspy.experiments.metric_factory import make_metric
from liftdspy.export import write_export
from liftdspy.lm.config import LMConfig, RecorderConfig
from liftdspy.lm.openai_engine import OpenAIEngine
from liftdspy.programs import build_program
from liftdspy.programs.adapters import ADAPTER_NAMES, build_adapter
from liftdspy.runtime import PromptRuntime, load_pack
from liftdspy.stats import paired_bootstrap
from liftdspy.studies.parity import score_parity

pytestmark = pytest.mark.scripted_lm

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "LIFTDSPY_TEST_ADAPTER_PARITY_KEY"
# Every adapter with the LM-facing IR, and DSPy's own format as recorded before it existed.
CASES = (
    [(name, "lean") for name in ADAPTER_NAMES]
    + [("compact", "content"), ("json", "content")]
    + [("json", "full")]
)


@pytest.fixture(scope="module")
def tasks():
    return load_tasks([ROOT / "datasets/core/text_and_collections.jsonl"])


def answer_text(adapter: str, fields: dict[str, object]) -> str:
    """An answer carrying `fields` in the format `adapter` parses."""
    if adapter != "chat":
        return json.dumps(fields)
    sections = [
        f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}"
        for name, value in fields.items()
    ]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])


def pipeline_with_demos(tasks, adapter: str, ir_output: str) -> dspy.Module:
    program = build_program("pipeline", adapter=adapter, ir_output=ir_output)
    first, second = tasks[0], tasks[1]
    program.nl_to_ir.translate.demos = [
        dspy.Example(prompt=first.prompt, ir=first.ir).with_inputs("prompt")
    ]
    program.ir_to_code.implement.demos = [
        dspy.Example(function_stub="def f(x: int) -> int:\n    ...", code=second.reference)
    ]
    return program


@pytest.mark.parametrize(("adapter", "ir_output"), CASES)
def test_wire_requests_are_byte_identical_for_every_adapter(
    tmp_path: Path, tasks, adapter: str, ir_output: str
) -> None:
    os.environ[KEY_ENV] = "sk-parity-test-key"
    program = pipeline_with_demos(tasks, adapter, ir_output)
    task = tasks[2]
    fenced = "```python\n" + task.reference + "\n```"
    reply = answer_text(adapter, {"ir": lm_ir(task.ir.model_dump(mode="json")), "code": fenced})
    with ScriptedChatServer([], reply=reply) as server:
        config = LMConfig(
            kind="openai",
            model="served-model",
            base_url=server.base_url,
            api_key_env=KEY_ENV,
            temperature=0.0,
            max_tokens=321,
        )
        options = {"adapter": adapter, "ir_output": ir_output}
        write_export(
            program, tmp_path / "out", lm_config=config, program_name="pipeline",
            program_options=options,
        )  # fmt: skip
        assert load_pack(tmp_path / "out").adapter == adapter
        engine = OpenAIEngine(server.base_url, config.model, api_key_env=KEY_ENV, max_retries=0)
        lm = dspy.LM(
            config.model, engine=engine, cache=False, temperature=0.0, max_tokens=321, num_retries=0
        )
        runtime = PromptRuntime.from_dir(tmp_path / "out")
        with dspy.context(lm=lm, adapter=build_adapter(adapter)):
            dspy_result = program(prompt=task.prompt)
        runtime_result = runtime.run_pipeline(task.prompt)
    nl_dspy, code_dspy, nl_runtime, code_runtime = server.bodies
    assert nl_dspy == nl_runtime, "NL->IR request differs"
    assert code_dspy == code_runtime, "IR->code request differs"
    for body in server.bodies:
        assert "metadata" not in body and "extra_body" not in body  # the layout hint stays home
        assert ("response_format" in body) == (adapter != "chat")
    demo = nl_dspy["messages"][2]
    assert demo["role"] == "assistant"
    assert ('"metadata"' in demo["content"]) == (ir_output == "full")
    assert ('"rationale"' in demo["content"]) == (ir_output != "lean")  # the demo has some
    if adapter == "compact":
        assert "\n" not in demo["content"]
    assert dspy_result.ir.model_dump(mode="json") == runtime_result.ir
    assert dspy_result.code == runtime_result.code == task.reference.strip("\n")


@pytest.mark.parametrize(("adapter", "ir_output"), CASES)
def test_engine_requests_and_scores_are_identical_for_every_adapter(
    tmp_path: Path, tasks, adapter: str, ir_output: str
) -> None:
    by_prompt = {task.prompt: task for task in tasks}
    requests = []

    def reply(request, number):
        requests.append(request)
        asked = request.messages[-1].text
        task = next(task for prompt, task in by_prompt.items() if prompt in asked)
        return answer_text(adapter, {"ir": lm_ir(task.ir.model_dump(mode="json"))})

    engine = FunctionEngine(reply, model="scripted-parity", structured=True)
    lm_config = LMConfig(
        kind="local",
        model="scripted-parity",
        max_tokens=200,
        recorder=RecorderConfig(mode="off", path=tmp_path / "rec"),
    )
    program = build_program("nl_to_ir", adapter=adapter, ir_output=ir_output)
    program.translate.demos = [
        dspy.Example(prompt=tasks[3].prompt, ir=tasks[3].ir).with_inputs("prompt")
    ]
    write_export(
        program, tmp_path / "out", lm_config=lm_config, program_name="nl_to_ir",
        program_options={"adapter": adapter, "ir_output": ir_output},
    )  # fmt: skip
    examples = to_examples(tasks[:3], "nl_to_ir")
    scores = score_parity(
        program,
        tmp_path / "out",
        "nl_to_ir",
        examples,
        make_metric(MetricConfig(name="ir")),
        lm_config,
        engine,
    )
    assert scores.errors == []
    assert scores.requests == scores.identical_requests == len(examples)
    assert scores.dspy_scores == scores.runtime_scores
    assert min(scores.dspy_scores) > 0.5  # the gold content, completed, scores as the gold IR
    assert paired_bootstrap(scores.dspy_scores, scores.runtime_scores).difference.mean == 0.0
    layout = {"metadata": {"json_layout": "compact"}} if adapter == "compact" else None
    assert [request.config.extensions for request in requests] == [layout] * 6
    assert {request.config.response_format is None for request in requests} == {adapter == "chat"}
