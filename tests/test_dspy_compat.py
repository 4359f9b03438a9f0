"""DSPy's private names liftdspy relies on (liftdspy.dspy_compat) still behave as relied upon."""

from __future__ import annotations

from dspy.lm15 import Message, Request, Response, TextPart, Usage

from liftdspy.dspy_compat import (
    request_to_dict,
    response_from_dict,
    response_to_dict,
    strict_json_schema,
    structured_outputs_response_format,
)
from liftdspy.programs.signatures import NLToIRSignature


def test_lm15_request_and_response_round_trip_through_plain_dicts():
    request = Request(model="m", messages=(Message.user("hi"),))
    assert request_to_dict(request)["model"] == "m"
    response = Response(
        id="r1",
        model="m",
        message=Message(role="assistant", parts=(TextPart(text="hello"),)),
        finish_reason="stop",
        usage=Usage(input_tokens=3, output_tokens=1),
    )
    back = response_from_dict(response_to_dict(response))
    assert back.text == "hello"
    assert back.finish_reason == "stop"
    assert back.usage.output_tokens == 1


def test_structured_response_format_covers_the_signature_outputs_strictly():
    model = structured_outputs_response_format(NLToIRSignature)
    schema = strict_json_schema(model.model_json_schema())
    assert list(schema["properties"]) == list(NLToIRSignature.output_fields)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])


def test_compat_is_the_only_importer_of_private_dspy_names():
    import pathlib
    import re

    package = pathlib.Path(__file__).parents[1] / "liftdspy"
    private = re.compile(r"from dspy[\w.]*\._\w|from dspy[\w.]* import [^\n]*\b_[a-z]")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "dspy_compat.py" and private.search(path.read_text())
    ]
    assert offenders == []
