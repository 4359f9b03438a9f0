"""The intermediate representation: models, JSON schema, Python stub rendering, coercion."""

from liftdspy.ir.coerce import coerce_ir
from liftdspy.ir.content import (
    BOOKKEEPING_FIELDS,
    IR_OUTPUTS,
    IRContent,
    IRLean,
    IROutput,
    complete_ir,
    content_model,
    ir_content,
    lean_content,
    project_content,
)
from liftdspy.ir.models import (
    Assertion,
    Effect,
    HoleKind,
    Intent,
    IntermediateRepresentation,
    Metadata,
    Parameter,
    Returns,
    Signature,
    TypedHole,
)
from liftdspy.ir.schema import UnboundedSchemaError, check_bounded, ir_json_schema
from liftdspy.ir.stub import SignatureNotFoundError, parse_signature, render_stub

__all__ = [
    "BOOKKEEPING_FIELDS",
    "IR_OUTPUTS",
    "Assertion",
    "Effect",
    "HoleKind",
    "IRContent",
    "IRLean",
    "IROutput",
    "Intent",
    "IntermediateRepresentation",
    "Metadata",
    "Parameter",
    "Returns",
    "Signature",
    "SignatureNotFoundError",
    "TypedHole",
    "UnboundedSchemaError",
    "check_bounded",
    "coerce_ir",
    "complete_ir",
    "content_model",
    "ir_content",
    "ir_json_schema",
    "lean_content",
    "parse_signature",
    "project_content",
    "render_stub",
]
