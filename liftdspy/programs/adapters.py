"""The DSPy adapters a program can run with, by name (`program.adapter` in configs).

- `json`: `dspy.JSONAdapter()` exactly (DSPy's own prompt format: the output fields' full JSON
  schema in the system message, demos and answer as `json.dumps(indent=2)`);
- `baml`: DSPy's `BAMLAdapter()` exactly (a JSONAdapter whose system message renders nested
  pydantic outputs as a short typed outline with field descriptions as `#` comments);
- `chat`: `dspy.ChatAdapter()` exactly (`[[ ## field ## ]]` sections, no response schema, DSPy's
  own JSONAdapter fallback on a parse error);
- `compact`: `CompactAdapter`, BAMLAdapter's outline plus what a grammar-forced answer needs: demos
  written in exactly the layout the engine's grammar forces (one line, `,` and `:`, no
  whitespace, as vLLM's `disable_any_whitespace`: `liftdspy.chat.json_layout.dump_compact`), and
  the request naming that layout so the engine compiles its grammar for it. Demo text and answer agree byte for byte, and both are short.

`compact` is the default where the engine enforces the output schema (`default_adapter`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal, get_args

import dspy
from dspy.adapters.baml_adapter import BAMLAdapter
from dspy.adapters.chat_adapter import FieldInfoWithName
from dspy.adapters.utils import serialize_for_json

from liftdspy.chat.json_layout import dump_compact, layout_lm_kwargs

AdapterName = Literal["compact", "baml", "json", "chat"]
ADAPTER_NAMES: tuple[str, ...] = get_args(AdapterName)
# The adapter today's recordings and DSPy's own prompt format use.
LEGACY_ADAPTER: AdapterName = "json"


class CompactAdapter(BAMLAdapter):
    """BAMLAdapter with demos and answers in the one-line layout the engine's grammar forces.

    The system message is BAMLAdapter's (a typed outline of the outputs, not their JSON schema);
    the response format is JSONAdapter's (strict `json_schema`), so a schema-enforcing engine still
    constrains the answer; the LM keyword `metadata={"json_layout": "compact"}` tells the engine to
    force the one-line layout (`liftdspy.chat.json_layout`). Parsing is JSONAdapter's.
    """

    json_layout = "compact"

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any) -> None:
        super()._prepare_response_format(lm, lm_kwargs, signature)
        if "response_format" in lm_kwargs:
            lm_kwargs.update(layout_lm_kwargs(self.json_layout, lm_kwargs))

    def format_field_with_value(
        self, fields_with_values: dict[FieldInfoWithName, Any], role: str = "user"
    ) -> str:
        if role == "user":
            return super().format_field_with_value(fields_with_values, role=role)
        values = {field.name: value for field, value in fields_with_values.items()}
        return dump_compact(serialize_for_json(values))


def build_adapter(name: AdapterName | str) -> dspy.Adapter:
    """A new adapter named `name` (one of `ADAPTER_NAMES`); a `ValueError` names the known ones."""
    if name == "compact":
        return CompactAdapter()
    if name == "baml":
        return BAMLAdapter()
    if name == "json":
        return dspy.JSONAdapter()
    if name == "chat":
        return dspy.ChatAdapter()
    raise ValueError(f"unknown adapter {name!r}: expected one of {', '.join(ADAPTER_NAMES)}")


def adapter_name(adapter: dspy.Adapter) -> AdapterName:
    """The name of an adapter `build_adapter` builds (exact class match)."""
    for name in ADAPTER_NAMES:
        if type(adapter) is type(build_adapter(name)):
            return name  # type: ignore[return-value]
    raise ValueError(f"{type(adapter).__name__} is not one of liftdspy's adapters")


def enforces_schema(kind: str, response_format_style: str = "json_schema") -> bool:
    """True when an LM of `kind` constrains its answer to the strict JSON schema it is sent: the
    embedded engine (XGrammar), and OpenAI-compatible servers (vLLM, Modal) sent the strict
    `json_schema` response format."""
    if kind == "local":
        return True
    return kind in {"openai", "modal"} and response_format_style == "json_schema"


def default_adapter(kind: str, response_format_style: str = "json_schema") -> AdapterName:
    """`compact` where the engine enforces the output schema, else `json`."""
    return "compact" if enforces_schema(kind, response_format_style) else "json"


def adapter_context(name: AdapterName | str | None) -> AbstractContextManager[Any]:
    """`dspy.context(adapter=build_adapter(name))`, or nothing when `name` is None (the caller's
    adapter then applies)."""
    return dspy.context(adapter=build_adapter(name)) if name else nullcontext()
