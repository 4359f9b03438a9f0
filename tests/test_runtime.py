"""The runtime: runs an exported pack without DSPy (checked in a subprocess whose import hook
refuses dspy), fills placeholders in one pass, validates outputs, names failures clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fixtures_ir import lm_ir

from liftdspy.datasets import load_tasks
from liftdspy.export import write_export
from liftdspy.ir import complete_ir
from liftdspy.lm.config import LMConfig
from liftdspy.programs import build_program
from liftdspy.runtime import ChatEndpoint, EndpointError, OutputError, PackError, load_pack
from liftdspy.runtime.outputs import parse_outputs
from tests.fixtures_server import ScriptedChatServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task():
    return load_tasks([ROOT / "datasets/core/text_and_collections.jsonl"])[0]


@pytest.fixture()
def pipeline_export(tmp_path: Path) -> Path:
    config = LMConfig(kind="openai", model="m", base_url="http://127.0.0.1:9/v1", max_tokens=64)
    write_export(build_program("pipeline", "predict"), tmp_path / "out", lm_config=config)
    return tmp_path / "out"


NO_DSPY_SCRIPT = textwrap.dedent(
    """
    import json, sys

    class RefuseDSPy:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("dspy", "litellm", "mlflow"):
                raise ImportError(f"the runtime imported {name}")
            return None

    sys.meta_path.insert(0, RefuseDSPy())
    from liftdspy.runtime import PromptRuntime

    runtime = PromptRuntime.from_dir(sys.argv[1], base_url=sys.argv[2])
    result = runtime.run_pipeline(sys.argv[3])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("dspy", "litellm", "mlflow"))
    print(json.dumps({"result": result.model_dump(), "heavy": heavy}))
    """
)


def test_runtime_runs_a_pipeline_without_importing_dspy(pipeline_export: Path, task) -> None:
    reply = json.dumps({"ir": lm_ir(task.ir.model_dump(mode="json")), "code": task.reference})
    with ScriptedChatServer([], reply=reply) as server:
        completed = subprocess.run(
            [sys.executable, "-c", NO_DSPY_SCRIPT, str(pipeline_export), server.base_url, "hi"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = json.loads(completed.stdout)
    assert out["heavy"] == []
    # The model wrote the IR's content; the runtime completed it as the DSPy program does.
    completed_ir = complete_ir(lm_ir(task.ir.model_dump(mode="json"))).model_dump(mode="json")
    assert out["result"]["ir"] == completed_ir
    assert out["result"]["ir"]["metadata"]["origin"] == "model"
    assert out["result"]["code"] == task.reference.strip("\n")
    assert out["result"]["function_stub"].startswith(f"def {task.ir.signature.name}(")
    assert [body["max_tokens"] for body in server.bodies] == [64, 64]
    assert server.bodies[1]["messages"][-1]["content"].startswith(
        "[[ ## function_stub ## ]]\n" + out["result"]["function_stub"]
    )


def test_placeholders_are_filled_once_and_inputs_checked(pipeline_export: Path) -> None:
    prompt = load_pack(pipeline_export).predictor("nl_to_ir.translate")
    messages = prompt.render({"prompt": "say {{prompt}} and {{other}}"})
    assert messages[-1]["content"].startswith("[[ ## prompt ## ]]\nsay {{prompt}} and {{other}}\n")
    assert messages[0] == {"role": "system", "content": prompt.messages[0].content}
    with pytest.raises(PackError, match=r"missing inputs \['prompt'\], unknown inputs \['promt'\]"):
        prompt.render({"promt": "typo"})


def test_outputs_are_validated_by_type(pipeline_export: Path, task) -> None:
    prompt = load_pack(pipeline_export).predictor("nl_to_ir.translate")
    content = lm_ir(task.ir.model_dump(mode="json"))
    good = parse_outputs(prompt.name, prompt.outputs, json.dumps({"ir": content}))
    assert good["ir"]["signature"]["name"] == task.ir.signature.name
    assert good["ir"]["version"] == "1"
    broken = dict(content)
    del broken["signature"]
    with pytest.raises(OutputError, match=r"field 'ir' is not a valid IRLean"):
        parse_outputs(prompt.name, prompt.outputs, json.dumps({"ir": broken}))
    with pytest.raises(OutputError, match=r"not a JSON object"):
        parse_outputs(prompt.name, prompt.outputs, "no json here")
    with pytest.raises(OutputError, match=r"lacks fields \['ir'\]"):
        parse_outputs(prompt.name, prompt.outputs, '{"code": "x"}')


def test_missing_api_key_names_the_variable_not_the_key(monkeypatch) -> None:
    monkeypatch.delenv("LIFTDSPY_TEST_RUNTIME_KEY", raising=False)
    endpoint = ChatEndpoint(
        base_url="http://127.0.0.1:9/v1", model="m", api_key_env="LIFTDSPY_TEST_RUNTIME_KEY"
    )
    with pytest.raises(EndpointError, match="LIFTDSPY_TEST_RUNTIME_KEY"):
        endpoint.complete({"messages": []})
    with pytest.raises(ValueError, match="credentials"):
        ChatEndpoint(base_url="http://user:pw@127.0.0.1:9/v1", model="m")


def test_server_errors_are_retried_then_reported() -> None:
    with ScriptedChatServer([(503, {}), (400, {})]) as server:
        endpoint = ChatEndpoint(base_url=server.base_url, model="m", max_retries=2)
        with pytest.raises(EndpointError, match=r"127\.0\.0\.1:\d+/v1/chat/completions: HTTP 400"):
            endpoint.complete({"messages": [{"role": "user", "content": "x"}]})
    assert len(server.bodies) == 2


def test_pack_of_another_format_version_is_refused(pipeline_export: Path) -> None:
    data = json.loads((pipeline_export / "prompt_pack.json").read_text())
    data["format_version"] = "2"
    (pipeline_export / "prompt_pack.json").write_text(json.dumps(data))
    with pytest.raises(PackError, match=r"prompt_pack\.json: not a valid prompt pack"):
        load_pack(pipeline_export)
