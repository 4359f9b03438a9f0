"""The intermediate representation: models, JSON schema, Python stub rendering, coercion."""

from liftdspy.ir.coerce import coerce_ir
from liftdspy.ir.content import BOOKKEEPING_FIELDS, IRContent, IROutput, complete_ir, ir_content
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
    "Assertion",
    "Effect",
    "HoleKind",
    "IRContent",
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
    "ir_content",
    "ir_json_schema",
    "parse_signature",
    "render_stub",
]
