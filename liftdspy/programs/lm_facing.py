"""What the LM sees of a predictor's demos: each value in the type the signature asks for.

A labelled demo carries the full IR (`IntermediateRepresentation`), but a predictor whose output is
the IR's content (`IRContent`) must show the model content only, in the layout it answers in:
`lm_facing_demos` projects every such value (and leaves every other field as it is). The program
passes these demos at call time and the prompt pack renders them, so both show the same text.
"""

from __future__ import annotations

from typing import Any

import dspy

from liftdspy.ir import IRContent, ir_content


def _content_fields(signature: type[dspy.Signature]) -> list[str]:
    return [name for name, info in signature.output_fields.items() if info.annotation is IRContent]


def lm_facing_demos(signature: type[dspy.Signature], demos: list[Any]) -> list[Any]:
    """`demos` with every `IRContent` output field's value projected to the IR's content
    (`dspy.Example`s stay examples, dicts stay dicts); the same list when there is none."""
    fields = _content_fields(signature)
    if not fields or not demos:
        return demos
    projected = []
    for demo in demos:
        updates = {
            name: ir_content(demo[name])
            for name in fields
            if name in demo and demo[name] is not None and not isinstance(demo[name], str)
        }
        if isinstance(demo, dspy.Example):
            projected.append(demo.copy(**updates))
        else:
            projected.append({**demo, **updates})
    return projected
