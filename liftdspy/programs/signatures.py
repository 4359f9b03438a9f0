"""Typed DSPy signatures for NL -> IR and IR -> code.

The IR output carries its own bounds (`maxLength`, `maxItems`) into the JSON schema the adapter
sends for structured output. DSPy drops `Annotated` constraints on plain `str` fields, so the
bounds of free-text outputs (code, reasoning) are applied by the engine's grammar compiler.
"""

from __future__ import annotations

import dspy

from liftdspy.ir import IntermediateRepresentation, IROutput, content_model


class NLToIRSignature(dspy.Signature):
    """Translate a natural-language request for one Python function into its intermediate
    representation: intent, typed signature, effects, assertions about inputs and outputs, and a
    typed hole for every decision the request leaves open instead of guessing."""

    prompt: str = dspy.InputField(desc="The request for one Python function, in plain language.")
    ir: IntermediateRepresentation = dspy.OutputField(
        desc="The function's intermediate representation."
    )


class IRToCodeSignature(dspy.Signature):
    """Implement the Python function whose stub is given. Return the whole function definition
    as source text, with exactly the stub's name and parameters, using only the standard
    library."""

    function_stub: str = dspy.InputField(
        desc="The function's signature and docstring (intent, effects, assertions, open questions)."
    )
    code: str = dspy.OutputField(desc="The complete Python function definition.")


class RepairCodeSignature(dspy.Signature):
    """Fix the Python function so that the failing tests pass. Return the whole corrected
    function definition, keeping its name and parameters."""

    function_stub: str = dspy.InputField(desc="The function's signature and docstring.")
    code: str = dspy.InputField(desc="The current implementation.")
    failures: str = dspy.InputField(desc="The tests that failed and how they failed.")
    fixed_code: str = dspy.OutputField(desc="The corrected function definition.")


def nl_to_ir_signature(ir_output: IROutput = "lean") -> type[dspy.Signature]:
    """The NL -> IR signature whose `ir` output is what the model writes of the IR (`IRLean` for
    `lean`, `IRContent` for `content`; the program completes it) or, with `ir_output="full"`,
    the whole `IntermediateRepresentation` (bookkeeping included: the first requests, byte for
    byte)."""
    model = content_model(ir_output)
    if model is None:
        return NLToIRSignature
    return NLToIRSignature.with_updated_fields("ir", type_=model)
