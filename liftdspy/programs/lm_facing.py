"""What the LM sees of a predictor's demos: each value in the type the signature asks for.

A labelled demo carries the full IR (`IntermediateRepresentation`), but a predictor whose output is
what the model writes of the IR (`IRLean` or `IRContent`) must show the model that only, in the
layout it answers in: `lm_facing_demos` projects every such value (and leaves every other field as
it is). The program
passes these demos at call time and the prompt pack renders them, so both show the same text.
"""

from __future__ import annotations

from typing import Any

import dspy

from liftdspy.ir import IRContent, IRLean, project_content


def _content_fields(signature: type[dspy.Signature]) -> dict[str, type]:
    return {
        name: info.annotation
        for name, info in signature.output_fields.items()
        if info.annotation in (IRContent, IRLean)
    }


def lm_facing_demos(signature: type[dspy.Signature], demos: list[Any]) -> list[Any]:
    """`demos` with every `IRLean` / `IRContent` output field's value projected to that type
    (`dspy.Example`s stay examples, dicts stay dicts); the same list when there is none."""
    fields = _content_fields(signature)
    if not fields or not demos:
        return demos
    projected = []
    for demo in demos:
        updates = {
            name: project_content(demo[name], model)
            for name, model in fields.items()
            if name in demo and demo[name] is not None and not isinstance(demo[name], str)
        }
        if isinstance(demo, dspy.Example):
            projected.append(demo.copy(**updates))
        else:
            projected.append({**demo, **updates})
    return projected
