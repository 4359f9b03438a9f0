"""The adapters by name (`program.adapter`), the compact adapter's layout and request, the
LM-facing IR (content in, full IR out) and the config keys that choose them.

The LM is a `FunctionEngine` (scripted, test-only): these tests are about what each adapter sends
and what the program does with the answer, not about model quality (the real model's layout is
checked in test_adapters_grammar.py, its figures in docs/measurements/adapters.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.adapters.baml_adapter import BAMLAdapter
from fixtures_engines import FunctionEngine
from fixtures_ir import ADD_IR, lm_ir

from liftdspy.chat.json_layout import dump_compact, json_layout_of, without_layout
from liftdspy.experiments.config import ExperimentConfig, load_config
from liftdspy.ir import (
    IntermediateRepresentation,
    IRContent,
    IRLean,
    check_bounded,
    complete_ir,
    content_model,
    ir_content,
    ir_json_schema,
    lean_content,
    project_content,
)
from liftdspy.ir.models import MAX_ASSERTIONS
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.programs import NLToIR, build_program
from liftdspy.programs.adapters import (
    ADAPTER_NAMES,
    CompactAdapter,
    adapter_name,
    build_adapter,
    default_adapter,
)
from liftdspy.programs.signatures import NLToIRSignature, nl_to_ir_signature
from liftdspy.studies.cells import expand_cells, experiment_config
from liftdspy.studies.config import StudyConfig
from liftdspy.tracking.store import flatten_params

pytestmark = pytest.mark.scripted_lm

ROOT = Path(__file__).resolve().parents[1]


def recording_lm(tmp_path: Path, answer=None, *, structured: bool = True):
    """A scripted LM answering ADD_IR's content (JSON, or ChatAdapter sections when the request
    has no response format) and keeping every request."""
    requests = []

    def reply(request, number):
        requests.append(request)
        content = json.dumps(lm_ir(ADD_IR))
        if answer is not None:
            return answer(request)
        if request.config.response_format is None:
            return f"[[ ## ir ## ]]\n{content}\n\n[[ ## completed ## ]]"
        return json.dumps({"ir": lm_ir(ADD_IR)})

    engine = FunctionEngine(reply, model="scripted-adapters", structured=structured)
    config = LMConfig(
        kind="local", model="scripted-adapters", recorder=RecorderConfig(mode="off", path=tmp_path)
    )
    return build_lm(config, engine=engine), requests


def test_build_adapter_builds_dspys_own_adapters_exactly() -> None:
    assert type(build_adapter("json")) is dspy.JSONAdapter
    assert type(build_adapter("baml")) is BAMLAdapter
    assert type(build_adapter("chat")) is dspy.ChatAdapter
    compact = build_adapter("compact")
    assert type(compact) is CompactAdapter and isinstance(compact, BAMLAdapter)
    assert [adapter_name(build_adapter(name)) for name in ADAPTER_NAMES] == list(ADAPTER_NAMES)
    with pytest.raises(ValueError, match="unknown adapter 'xml': expected one of compact, baml"):
        build_adapter("xml")


def test_compact_demos_are_one_line_in_the_grammars_separators() -> None:
    signature = nl_to_ir_signature("content")
    value = ir_content(ADD_IR)
    text = CompactAdapter().format_assistant_message_content(signature, {"ir": value})
    assert text == dump_compact({"ir": lm_ir(ADD_IR, "content")})
    assert "\n" not in text and text.startswith('{"ir":{"intent":{"summary":"Add two')
    assert '"parameters":[{"name":"a","type_hint":"int","description":""},{' in text
    # Strings keep their own spaces; the layout adds none.
    assert '"predicate":"add(1, 2) == 3"' in text
    # DSPy's JSONAdapter writes the same value over 30 indented lines.
    indented = dspy.JSONAdapter().format_assistant_message_content(signature, {"ir": value})
    assert indented.count("\n") > 30 and json.loads(indented) == json.loads(text)


def test_compact_request_keeps_the_strict_schema_and_names_its_layout(tmp_path: Path) -> None:
    lm, requests = recording_lm(tmp_path)
    for name in ADAPTER_NAMES:
        with dspy.context(lm=lm):
            prediction = build_program("nl_to_ir", adapter=name)(prompt="add two numbers")
        assert prediction.ir.signature.name == "add", name
    compact, baml, json_, chat = requests
    assert compact.config.extensions == {"metadata": {"json_layout": "compact"}}
    assert json_layout_of(compact.config.extensions) == "compact"
    for request in (baml, json_, chat):
        assert request.config.extensions is None
    for request in (compact, baml, json_):
        assert request.config.response_format["strict"] is True
        assert request.config.response_format["schema"]["required"] == ["ir"]
    assert chat.config.response_format is None
    # BAML's outline instead of the JSON schema: the compact prompt is a fraction of the json one.
    assert len(compact.system) < len(json_.system) / 2
    assert "$defs" in json_.system and "$defs" not in compact.system
    assert compact.system == baml.system


def test_the_program_applies_its_adapter_over_the_callers(tmp_path: Path) -> None:
    lm, requests = recording_lm(tmp_path)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        build_program("nl_to_ir", adapter="compact")(prompt="add")
        build_program("nl_to_ir")(prompt="add")  # no adapter of its own: the caller's
    assert requests[0].config.extensions == {"metadata": {"json_layout": "compact"}}
    assert requests[1].config.extensions is None and "$defs" in requests[1].system


def test_the_model_writes_lean_content_and_the_program_completes_the_ir(tmp_path: Path) -> None:
    lm, requests = recording_lm(tmp_path)
    program = build_program("nl_to_ir", adapter="compact")
    labelled = IntermediateRepresentation.model_validate(ADD_IR)
    program.translate.demos = [dspy.Example(prompt="sum", ir=labelled).with_inputs("prompt")]
    with dspy.context(lm=lm):
        prediction = program(prompt="add two numbers")
    ir = prediction.ir
    assert isinstance(ir, IntermediateRepresentation)
    assert ir.version == "1" and ir.metadata.origin == "model" and ir.metadata.language == "python"
    assert ir.model_dump(exclude={"metadata"}) == labelled.model_dump(exclude={"metadata"})
    schema = requests[0].config.response_format["schema"]
    assert "metadata" not in json.dumps(schema) and '"version"' not in json.dumps(schema)
    assert "rationale" not in json.dumps(schema)  # lean, the default: no rationales asked
    # The labelled demo is shown as the model answers: lean content only, one line.
    demo = next(m for m in requests[0].messages if m.role == "assistant").text
    assert demo == dump_compact({"ir": lm_ir(ADD_IR)})
    # The demo the optimizer set is untouched: the projection is made at call time.
    assert program.translate.demos[0].ir is labelled


def test_full_output_asks_for_todays_ir(tmp_path: Path) -> None:
    lm, requests = recording_lm(tmp_path, lambda request: json.dumps({"ir": ADD_IR}))
    program = build_program("nl_to_ir", adapter="json", ir_output="full")
    assert type(program) is NLToIR  # the module whose requests (and source) are recorded
    with dspy.context(lm=lm, adapter=build_adapter("json")):  # as every liftdspy runner sets it
        prediction = program(prompt="add")
    assert prediction.ir.metadata.origin == "core"  # the model's own metadata, as before
    assert '"metadata"' in json.dumps(requests[0].config.response_format["schema"])
    assert nl_to_ir_signature("full") is NLToIRSignature
    with pytest.raises(ValueError, match="unknown ir_output 'half'"):
        nl_to_ir_signature("half")  # type: ignore[arg-type]


def test_content_model_is_the_ir_without_bookkeeping_and_bounded() -> None:
    schema = IRContent.model_json_schema()
    check_bounded(schema)
    full = ir_json_schema()
    assert list(schema["properties"]) == ["intent", "signature", "effects", "assertions", "holes"]
    assert schema["properties"] == {
        k: v for k, v in full["properties"].items() if k not in ("metadata", "version")
    }
    assert set(schema["$defs"]) == set(full["$defs"]) - {"Metadata"}
    with pytest.raises(ValueError, match="bookkeeping fields"):
        complete_ir(ADD_IR)
    assert complete_ir(lm_ir(ADD_IR, "content"), origin="core").model_dump() == ADD_IR


def test_lean_model_is_the_content_without_its_rationales_and_bounded() -> None:
    schema = IRLean.model_json_schema()
    check_bounded(schema)
    content = IRContent.model_json_schema()
    assert list(schema["properties"]) == list(content["properties"])  # the answer's order
    assert list(schema["$defs"]["IntentLean"]["properties"]) == ["summary"]
    assert list(schema["$defs"]["AssertionLean"]["properties"]) == ["predicate"]
    # Every other definition is the content's own, bounds included.
    for name in set(content["$defs"]) - {"Intent", "Assertion"}:
        assert schema["$defs"][name] == content["$defs"][name], name
    assert schema["properties"]["assertions"]["maxItems"] == MAX_ASSERTIONS
    assert "rationale" not in json.dumps(schema)
    ir = {**ADD_IR, "intent": {"summary": "Add.", "rationale": "Why not."}}
    ir["assertions"] = [{"predicate": "add(1, 2) == 3", "rationale": "arithmetic"}]
    lean = lean_content(ir)
    assert type(lean) is IRLean
    assert lean.model_dump(mode="json") == lm_ir(ir)  # what a lean answer holds
    assert project_content(ir, IRLean) == lean and type(project_content(ir, IRContent)) is IRContent
    full = complete_ir(lean, origin="core")
    assert full.intent.rationale == "" and full.assertions[0].rationale == ""
    assert full.intent.summary == "Add." and full.assertions[0].predicate == "add(1, 2) == 3"
    with pytest.raises(ValueError, match="extra"):
        IRLean.model_validate({**lm_ir(ir), "intent": {"summary": "x", "rationale": "y"}})
    assert content_model("lean") is IRLean and content_model("content") is IRContent
    assert content_model("full") is None
    with pytest.raises(ValueError, match="unknown ir_output 'half': expected one of 'lean'"):
        content_model("half")  # type: ignore[arg-type]


def test_openai_engine_keeps_the_layout_hint_off_the_wire() -> None:
    from dspy.lm15 import Config, Message, Request

    from liftdspy.lm.openai_engine import chat_body

    extensions = {"metadata": {"json_layout": "compact", "team": "x"}, "logit_bias": {"1": 2}}
    request = Request(
        model="m", messages=(Message.user("hi"),), config=Config(extensions=extensions)
    )
    assert chat_body(request)["extra_body"] == {"metadata": {"team": "x"}, "logit_bias": {"1": 2}}
    only = Request(
        model="m",
        messages=(Message.user("hi"),),
        config=Config(extensions={"metadata": {"json_layout": "compact"}}),
    )
    assert "extra_body" not in chat_body(only)
    assert without_layout(None) == {}
    with pytest.raises(ValueError, match=r'\["metadata"\]\["json_layout"\] must be one of'):
        json_layout_of({"metadata": {"json_layout": "pretty"}})


def test_adapter_defaults_to_compact_where_the_engine_enforces_the_schema() -> None:
    assert default_adapter("local") == "compact"
    assert default_adapter("openai") == default_adapter("modal") == "compact"
    assert default_adapter("openai", "json_object_schema") == "json"
    assert default_adapter("scripted") == "json"
    demo = load_config(ROOT / "experiments/demo.yaml")
    assert (demo.program.adapter, demo.program.ir_output) == ("compact", "lean")  # defaults
    resolved = load_config(
        ROOT / "experiments/demo.yaml", ["program.adapter=null", "program.ir_output=content"]
    )
    assert resolved.program.adapter == "compact"
    params = flatten_params(resolved.model_dump(mode="json"))
    assert params["program.adapter"] == "compact" and params["program.ir_output"] == "content"
    assert resolved.program.options() == {"adapter": "compact", "ir_output": "content"}
    with pytest.raises(ValueError, match="adapter"):
        ExperimentConfig.model_validate(
            {**demo.model_dump(mode="json"), "program": {"adapter": "pretty"}}
        )
    with pytest.raises(ValueError, match="ir_output applies to the nl_to_ir / pipeline"):
        ExperimentConfig.model_validate(
            {**demo.model_dump(mode="json"), "program": {"name": "ir_to_code", "ir_output": "full"}}
        )


def test_study_arms_may_differ_by_adapter() -> None:
    study = StudyConfig.model_validate(
        {
            "name": "adapters",
            "dataset": {"paths": ["datasets/core"]},
            "lm": {"kind": "local", "model": "smollm2-135m"},
            "arms": [
                {"name": "json", "fixed": "zero-shot", "program": {"adapter": "json"}},
                {"name": "compact", "fixed": "zero-shot"},
                {"name": "baml-full", "preset": "copro", "program": {"adapter": "baml"}},
            ],
            "seeds": [0],
            "baseline": "compact",
        }
    )
    cells = {cell.arm: experiment_config(study, cell, ROOT) for cell in expand_cells(study)}
    assert cells["json"].program.adapter == "json"
    assert cells["compact"].program.adapter == "compact"  # resolved for the local engine
    assert cells["baml-full"].program.adapter == "baml"
    assert study.arm_program("compact") is study.program
    with pytest.raises(ValueError, match=r"arms\.0\.program\.adapter"):
        StudyConfig.model_validate(
            {
                **study.model_dump(mode="json"),
                "arms": [{"name": "x", "fixed": "zero-shot", "program": {"adapter": "xml"}}],
                "baseline": "x",
            }
        )
