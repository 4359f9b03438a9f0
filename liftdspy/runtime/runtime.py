"""Run an exported prompt pack against an OpenAI-compatible endpoint, without DSPy.

runtime = PromptRuntime.from_dir("programs/my-pipeline", base_url="http://127.0.0.1:8000/v1")
runtime.run("nl_to_ir.translate", prompt="Return the sum of a list of ints.")
runtime.run_pipeline("Return the sum of a list of ints.")   # NL -> IR -> code
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from liftdspy.chat import ResponseFormatStyle, check_style, response_format_in_style
from liftdspy.code_check import extract_code
from liftdspy.runtime.endpoint import ChatEndpoint
from liftdspy.runtime.outputs import parse_outputs
from liftdspy.runtime.pack import PackError, PredictorPrompt, PromptPack, load_pack

logger = logging.getLogger(__name__)


def format_input(field_type: str, value: Any) -> str:
    """An input value as DSPy's adapter writes it into the prompt: strings as they are, lists and
    dicts as compact JSON, anything else with `str()`."""
    if isinstance(value, str):
        return value
    if field_type == "str":
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class PipelineResult(BaseModel):
    """The outputs of NL -> IR -> code through the runtime."""

    ir: dict[str, Any]
    function_stub: str
    code: str
    outputs: dict[str, dict[str, Any]]


class PromptRuntime:
    """Sends a pack's predictors to one endpoint and parses their answers."""

    def __init__(
        self,
        pack: PromptPack,
        endpoint: ChatEndpoint,
        *,
        response_format_style: ResponseFormatStyle = "json_schema",
    ):
        self.pack = pack
        self.endpoint = endpoint
        self.response_format_style = check_style(response_format_style)

    @classmethod
    def from_dir(
        cls,
        path: Path | str,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        response_format_style: ResponseFormatStyle = "json_schema",
    ) -> PromptRuntime:
        """Load the pack in `path`; endpoint settings default to the pack's recorded model."""
        pack = load_pack(Path(path))
        target = pack.model
        base_url = base_url or (target.base_url if target else None)
        model = model or (target.model if target else None)
        if api_key_env is None and target is not None:
            api_key_env = target.api_key_env
        if not base_url or not model:
            raise PackError(
                f"{path}: the pack names no endpoint (model kind "
                f"{target.kind if target else 'unknown'!r}); pass base_url= and model="
            )
        endpoint = ChatEndpoint(
            base_url=base_url, model=model, api_key_env=api_key_env, timeout=timeout
        )
        return cls(pack, endpoint, response_format_style=response_format_style)

    def request_body(self, predictor: str, **inputs: Any) -> dict[str, Any]:
        """The Chat Completions body (without `model`) for one call, as DSPy's request holds it
        (with `metadata`, which `ChatEndpoint` keeps off the wire as `OpenAIEngine` does)."""
        prompt = self.pack.predictor(predictor)
        types = {field.name: field.type for field in prompt.inputs}
        texts = {}
        for name, value in inputs.items():
            try:
                texts[name] = format_input(types.get(name, "str"), value)
            except TypeError as exc:
                raise PackError(f"predictor {predictor!r}: input {name!r}: {exc}") from None
        body: dict[str, Any] = {"messages": prompt.render(texts), **prompt.sampling.body()}
        if prompt.response_format is not None:
            body["response_format"] = response_format_in_style(
                prompt.response_format, self.response_format_style
            )
        if prompt.metadata:
            body["metadata"] = dict(prompt.metadata)
        return body

    def run(self, predictor: str, **inputs: Any) -> dict[str, Any]:
        """Call `predictor` with `inputs`; its output fields, validated (an IR as JSON data)."""
        prompt = self.pack.predictor(predictor)
        text = self.endpoint.message_text(self.request_body(predictor, **inputs))
        return parse_outputs(prompt.name, prompt.outputs, text, self.pack.adapter)

    def _find(self, inputs: set[str], output: str) -> PredictorPrompt:
        for prompt in self.pack.predictors:
            names = {field.name for field in prompt.inputs}
            if names == inputs and any(field.name == output for field in prompt.outputs):
                return prompt
        raise PackError(f"the pack has no predictor {sorted(inputs)} -> {output!r}")

    def run_pipeline(self, prompt: str) -> PipelineResult:
        """NL -> IR -> code as `ForwardPipeline` does it (without tests or repair): the IR
        predictor's answer is rendered as a stub, the code predictor's answer is unfenced."""
        from liftdspy.ir import IntermediateRepresentation, render_stub

        to_ir = self._find({"prompt"}, "ir")
        to_code = self._find({"function_stub"}, "code")
        ir_outputs = self.run(to_ir.name, prompt=prompt)
        stub = render_stub(IntermediateRepresentation.model_validate(ir_outputs["ir"]))
        code_outputs = self.run(to_code.name, function_stub=stub)
        return PipelineResult(
            ir=ir_outputs["ir"],
            function_stub=stub,
            code=extract_code(code_outputs["code"]),
            outputs={to_ir.name: ir_outputs, to_code.name: code_outputs},
        )
