"""Render an IR as a Python function stub, and read a function's signature back with `ast`."""

from __future__ import annotations

import ast
import textwrap

from liftdspy import pyast
from liftdspy.errors import LiftdspyError
from liftdspy.ir.models import IntermediateRepresentation, Parameter, Returns, Signature


class SignatureNotFoundError(LiftdspyError, ValueError):
    """The source holds no (matching) function definition."""


def render_signature_line(signature: Signature) -> str:
    params = ", ".join(f"{p.name}: {p.type_hint}" for p in signature.parameters)
    return f"def {signature.name}({params}) -> {signature.returns.type_hint}:"


def render_docstring(ir: IntermediateRepresentation) -> str:
    lines = [ir.intent.summary.strip()]
    if ir.intent.rationale.strip():
        lines += ["", ir.intent.rationale.strip()]
    documented = [p for p in ir.signature.parameters if p.description]
    if documented:
        lines += ["", "Args:"] + [f"    {p.name}: {p.description}" for p in documented]
    if ir.signature.returns.description:
        lines += ["", "Returns:", f"    {ir.signature.returns.description}"]
    if ir.effects:
        lines += ["", "Effects:"] + [f"    - {e.description}" for e in ir.effects]
    if ir.assertions:
        lines += ["", "Assertions:"]
        for a in ir.assertions:
            suffix = f"  # {a.rationale}" if a.rationale else ""
            lines.append(f"    - {a.predicate}{suffix}")
    if ir.holes:
        lines += ["", "Open questions (typed holes):"]
        for h in ir.holes:
            lines.append(f"    - ?{h.identifier}: {h.type_hint} [{h.kind}] {h.description}")
            lines += [f"        constraint: {c}" for c in h.constraints]
    return "\n".join(lines)


def render_stub(ir: IntermediateRepresentation, body: str = "...") -> str:
    """The function's signature with type hints and a docstring carrying intent, effects,
    assertions and holes; `body` (default `...`) follows the docstring."""
    doc = render_docstring(ir).replace('"""', r"\"\"\"")
    doc_block = textwrap.indent(f'"""{doc}\n"""', "    ")
    return f"{render_signature_line(ir.signature)}\n{doc_block}\n{textwrap.indent(body, '    ')}\n"


def _annotation(node: ast.expr | None) -> str:
    return ast.unparse(node) if node is not None else ""


def parse_signature(source: str, name: str | None = None) -> Signature:
    """The signature of the function `name` in `source` (the first top-level one if `name` is
    None). A missing annotation is reported as the type hint `'Any'`."""
    try:
        tree = pyast.parse(source)
    except SyntaxError as exc:
        raise SignatureNotFoundError(
            f"source does not parse: line {exc.lineno}: {exc.msg}"
        ) from exc
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if name is not None:
        functions = [f for f in functions if f.name == name]
    if not functions:
        wanted = f"function {name!r}" if name else "a top-level function"
        raise SignatureNotFoundError(f"source defines no {wanted}")
    fn = functions[0]
    args = fn.args
    positional = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    parameters = [
        Parameter(name=a.arg, type_hint=_annotation(a.annotation) or "Any") for a in positional
    ]
    if args.vararg is not None:
        parameters.append(
            Parameter(name=args.vararg.arg, type_hint=_annotation(args.vararg.annotation) or "Any")
        )
    if args.kwarg is not None:
        parameters.append(
            Parameter(name=args.kwarg.arg, type_hint=_annotation(args.kwarg.annotation) or "Any")
        )
    return Signature(
        name=fn.name,
        parameters=parameters,
        returns=Returns(type_hint=_annotation(fn.returns) or "Any"),
    )
