"""`response_format` as a server takes it: the OpenAI form (`json_schema`: OpenAI, vLLM) or the
`json_object` form with the schema inside (`json_object_schema`: llama-cpp-python's server,
0.3.x, rejects the OpenAI form with HTTP 500 and honours only that one)."""

from __future__ import annotations

from typing import Any, Literal, get_args

ResponseFormatStyle = Literal["json_schema", "json_object_schema"]
RESPONSE_FORMAT_STYLES: tuple[str, ...] = get_args(ResponseFormatStyle)


def check_style(style: str) -> ResponseFormatStyle:
    """`style` if it is a known style; ValueError naming the choices otherwise."""
    if style not in RESPONSE_FORMAT_STYLES:
        raise ValueError(
            "response_format_style must be 'json_schema' (OpenAI, vLLM) or "
            f"'json_object_schema' (llama-cpp-python), got {style!r}"
        )
    return style  # type: ignore[return-value]


def openai_response_format(
    schema: dict[str, Any], *, name: str | None = None, strict: bool = True
) -> dict[str, Any]:
    """The OpenAI-form `response_format` for a JSON schema."""
    inner = {"name": name or "response", "schema": schema, "strict": strict}
    return {"type": "json_schema", "json_schema": inner}


def response_format_in_style(
    response_format: dict[str, Any], style: ResponseFormatStyle
) -> dict[str, Any]:
    """An OpenAI-form `response_format` as a server of `style` takes it (any other type, e.g.
    plain `json_object`, is sent unchanged)."""
    if style == "json_schema" or response_format.get("type") != "json_schema":
        return response_format
    return {"type": "json_object", "schema": response_format["json_schema"]["schema"]}
