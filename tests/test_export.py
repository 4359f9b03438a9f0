"""Export: program.json loads into a fresh program; the prompt pack's messages and request body
are exactly what DSPy sends (checked on the wire with a scripted chat server); no secrets."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dspy
import pytest
from fixtures_ir import lm_ir

from liftdspy.datasets import load_tasks
from liftdspy.export import ExportError, load_exported_program, read_manifest, write_export
from liftdspy.lm.config import LMConfig
from liftdspy.lm.openai_engine import OpenAIEngine
from liftdspy.programs import build_program
from liftdspy.runtime import PromptRuntime, load_pack
from tests.fixtures_server import ScriptedChatServer

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "LIFTDSPY_TEST_EXPORT_KEY"
SECRET = "sk-export-secret-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def tasks():
    return load_tasks([ROOT / "datasets/core/text_and_collections.jsonl"])


def optimized_pipeline(tasks) -> dspy.Module:
    """A pipeline whose predictors look optimized: new instructions and a demo each."""
    program = build_program("pipeline", "predict")
    first, second = tasks[0], tasks[1]
    translate = program.nl_to_ir.translate
    translate.signature = translate.signature.with_instructions("Write the IR. Be precise.")
    translate.demos = [dspy.Example(prompt=first.prompt, ir=first.ir).with_inputs("prompt")]
    implement = program.ir_to_code.implement
    implement.demos = [
        dspy.Example(function_stub="def f(x: int) -> int:\n    ...", code=second.reference)
    ]
    return program


def lm_config(base_url: str = "http://127.0.0.1:9/v1") -> LMConfig:
    return LMConfig(
        kind="openai",
        model="served-model",
        base_url=base_url,
        api_key_env=KEY_ENV,
        temperature=0.0,
        max_tokens=321,
    )


def test_export_files_match_manifest_and_program_reloads(tmp_path: Path, tasks) -> None:
    program = optimized_pipeline(tasks)
    manifest = write_export(
        program,
        tmp_path / "out",
        lm_config=lm_config(),
        program_name="pipeline",
        predictor="predict",
    )
    out = tmp_path / "out"

    assert manifest.program == "pipeline" and manifest.predictor_kind == "predict"
    assert manifest.predictors == ["nl_to_ir.translate", "ir_to_code.implement"]
    assert manifest.versions["dspy"] == dspy.__version__
    for file in manifest.files:
        data = (out / file.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256, file.path
    assert read_manifest(out) == manifest
    assert (
        (out / "prompts/nl_to_ir.translate.user.txt")
        .read_text()
        .startswith("[[ ## prompt ## ]]\n{{prompt}}\n")
    )

    fresh = build_program("pipeline", "predict")
    fresh.load(str(out / "program.json"))
    assert fresh.nl_to_ir.translate.signature.instructions == "Write the IR. Be precise."
    assert fresh.nl_to_ir.translate.demos[0]["prompt"] == tasks[0].prompt
    reloaded = load_exported_program(out)
    assert reloaded.ir_to_code.implement.demos[0]["code"] == tasks[1].reference

    pack = load_pack(out)
    translate = pack.predictor("nl_to_ir.translate")
    assert translate.instructions == "Write the IR. Be precise."
    assert [m.role for m in translate.messages] == ["system", "user", "assistant", "user"]
    assert translate.demos[0]["ir"]["signature"]["name"] == tasks[0].ir.signature.name
    assert translate.sampling.temperature == 0.0 and translate.sampling.max_tokens == 321
    assert [f.name for f in translate.outputs] == ["ir"]
    assert translate.outputs[0].type == "IRLean"  # the model writes the lean content only


def test_pack_requests_are_byte_identical_to_dspy(tmp_path: Path, tasks) -> None:
    """The same inputs through DSPy (OpenAIEngine + JSONAdapter) and through the runtime give
    the same request bodies on the wire, and the same parsed outputs."""
    os.environ[KEY_ENV] = SECRET
    program = optimized_pipeline(tasks)
    task = tasks[2]
    fenced = "```python\n" + task.reference + "\n```"
    # One scripted answer that carries the fields of both predictors.
    reply = json.dumps({"ir": lm_ir(task.ir.model_dump(mode="json")), "code": fenced})
    tricky = task.prompt + " {{prompt}} stays literal"
    with ScriptedChatServer([], reply=reply) as server:
        config = lm_config(server.base_url)
        write_export(program, tmp_path / "out", lm_config=config)
        engine = OpenAIEngine(server.base_url, config.model, api_key_env=KEY_ENV, max_retries=0)
        lm = dspy.LM(
            config.model, engine=engine, cache=False, temperature=0.0, max_tokens=321, num_retries=0
        )
        runtime = PromptRuntime.from_dir(tmp_path / "out")
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
            dspy_ir = program.nl_to_ir(prompt=tricky)
            runtime_ir = runtime.run("nl_to_ir.translate", prompt=tricky)
            dspy_pipeline = program(prompt=task.prompt)
            runtime_pipeline = runtime.run_pipeline(task.prompt)
    bodies = server.bodies
    assert len(bodies) == 6
    assert bodies[0] == bodies[1], "NL->IR request differs"
    assert tricky in bodies[1]["messages"][-1]["content"]
    assert bodies[2] == bodies[4], "pipeline NL->IR request differs"
    assert bodies[3] == bodies[5], "pipeline IR->code request differs"
    assert server.authorizations == [f"Bearer {SECRET}"] * 6
    assert bodies[0]["model"] == "served-model"
    assert bodies[0]["temperature"] == 0.0 and bodies[0]["max_tokens"] == 321
    assert bodies[3]["response_format"]["json_schema"]["schema"]["required"] == ["code"]

    assert dspy_ir.ir.model_dump(mode="json") == runtime_ir["ir"]
    assert dspy_pipeline.ir.model_dump(mode="json") == runtime_pipeline.ir
    assert dspy_pipeline.code == runtime_pipeline.code == task.reference.strip("\n")


def test_export_never_writes_the_api_key(tmp_path: Path, tasks, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    write_export(optimized_pipeline(tasks), tmp_path / "out", lm_config=lm_config())
    texts = {p: p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert len(texts) == 10  # manifest, program, pack, LM config, 2 predictors x 3 prompt files
    assert not [p for p, text in texts.items() if SECRET in text]
    assert load_pack(tmp_path / "out").model.api_key_env == KEY_ENV


def test_placeholder_text_in_instructions_is_refused(tmp_path: Path) -> None:
    program = build_program("nl_to_ir", "predict")
    program.translate.signature = program.translate.signature.with_instructions(
        "Answer for {{prompt}} only."
    )
    with pytest.raises(ExportError, match=r"nl_to_ir|translate.*\{\{prompt\}\}"):
        write_export(program, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_chain_of_thought_pack_asks_for_reasoning_first(tmp_path: Path) -> None:
    write_export(build_program("ir_to_code", "cot"), tmp_path / "out")
    prompt = load_pack(tmp_path / "out").predictor("implement.predict")
    schema = prompt.response_format["json_schema"]["schema"]
    assert schema["required"] == ["reasoning", "code"]
    assert "`reasoning`, then `code`" in prompt.messages[-1].content
    assert prompt.sampling.body() == {}
