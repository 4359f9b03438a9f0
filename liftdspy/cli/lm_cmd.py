"""`liftdspy lm ...` commands: try a prompt on the embedded model, show what it runs."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel, Field, ValidationError
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode, code_for_error
from liftdspy.versioning import Version

app = typer.Typer(help="lm commands.", no_args_is_help=True)


class TryResult(BaseModel):
    """`liftdspy lm try --json`: the answer, the IR when --schema ir, and what it cost."""

    version: Version = "1"
    model: str
    text: str
    ir: dict[str, Any] | None = None
    valid: bool | None = Field(None, description="--schema ir: whether the answer is a valid IR")
    error: str | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    reused_tokens: int | None = None
    output_tokens: int | None = None
    decode_tokens_per_second: float | None = None


SCHEMAS = ("ir",)
IR_SYSTEM = (
    "You translate a request for one Python function into its intermediate representation, a "
    "JSON object with: intent (summary, rationale), signature (name, parameters with name, "
    "type_hint and description, returns), effects, assertions (predicate, rationale) and holes "
    "(open questions). Answer with the JSON object only."
)


def _local_model_name(lm: str) -> str:
    """`local` or `local/<model>` -> the model name; anything else is refused."""
    from liftdspy.lm.models import DEFAULT_MODEL

    kind, _, name = lm.partition("/")
    if kind != "local":
        raise typer.BadParameter(f"--lm {lm!r}: only 'local' or 'local/<model>' is supported here")
    return name or DEFAULT_MODEL


@app.command("try")
def try_prompt(
    prompt: str = typer.Argument(..., help="The user message to send."),
    lm: str = typer.Option("local", "--lm", help="'local' or 'local/<model>'."),
    schema: str | None = typer.Option(
        None, "--schema", help="Constrain the output to a JSON schema: 'ir'."
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help="Token limit of the answer (default 256; 1200 with --schema).",
    ),
    model_path: str | None = typer.Option(None, "--model-path", help="A GGUF file to run."),
    system: str | None = typer.Option(None, "--system", help="A system message."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the answer, the parsed IR and the usage as JSON."
    ),
) -> None:
    """Send PROMPT to the model and print its answer (with --schema ir: a validated IR).

    The answer goes to stdout (with --schema ir: one JSON document), the usage line to stderr."""
    from dspy.lm15 import Config, Message, Request

    from liftdspy.lm.local_engine import PROVIDER, LocalEngine

    if schema is not None and schema not in SCHEMAS:
        raise typer.BadParameter(f"--schema {schema!r}: choose one of {', '.join(SCHEMAS)}")
    name = _local_model_name(lm)
    # The engine itself answers, unrecorded: this command is for trying the model.
    engine = LocalEngine(model=name, model_path=model_path)
    response_format: dict[str, Any] | None = None
    if max_tokens is None:
        max_tokens = 1200 if schema else 256
    if schema == "ir":
        system = system if system is not None else IR_SYSTEM
        from liftdspy.ir import ir_json_schema

        response_format = {
            "type": "json_schema",
            "name": "IntermediateRepresentation",
            "schema": ir_json_schema(),
            "strict": True,
        }
    request = Request(
        model=f"{PROVIDER}/{name}",
        messages=(Message.user(prompt),),
        system=system,
        config=Config(max_tokens=max_tokens, temperature=0.0, response_format=response_format),
    )
    response = engine.complete(request)
    result = _result(f"{PROVIDER}/{name}", response, schema)
    if as_json:
        output.print_json(result)
    elif schema == "ir" and result.valid:
        text = _ir_text(result)
        if output.is_terminal():
            output.out().print(Syntax(text, "json", word_wrap=True))
        else:
            output.print_text(text)
    else:
        output.print_text(result.text)
    if result.error:
        output.error(f"the output is not a valid IR: {result.error}")
    _show_usage(result)
    if result.error:
        raise typer.Exit(ExitCode.FINDING)


def _result(model: str, response: Any, schema: str | None) -> TryResult:
    from liftdspy.ir import IntermediateRepresentation

    usage = response.usage
    timing = (response.provider_data or {}).get("local", {})
    result = TryResult(
        model=model,
        text=response.text or "",
        finish_reason=str(response.finish_reason) if response.finish_reason else None,
        input_tokens=usage.input_tokens,
        reused_tokens=usage.cache_read_tokens,
        output_tokens=usage.output_tokens,
        decode_tokens_per_second=timing.get("decode_tokens_per_second"),
    )
    if schema == "ir":
        try:
            ir = IntermediateRepresentation.model_validate_json(result.text)
        except ValidationError as exc:
            result.valid, result.error = False, str(exc)
        else:
            result.valid, result.ir = True, ir.model_dump(mode="json")
    return result


def _ir_text(result: TryResult) -> str:
    from liftdspy.ir import IntermediateRepresentation

    return IntermediateRepresentation.model_validate(result.ir).to_json(indent=2)


def _show_usage(result: TryResult) -> None:
    output.err().print(
        f"[dim]{result.input_tokens} prompt tokens ({result.reused_tokens} reused), "
        f"{result.output_tokens} output tokens, finish={result.finish_reason}, "
        f"{result.decode_tokens_per_second} tok/s[/dim]"
    )


@app.command("info")
def info(
    lm: str = typer.Option("local", "--lm", help="'local' or 'local/<model>'."),
    model_path: str | None = typer.Option(None, "--model-path", help="A GGUF file to run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the local model's file, chat format, threads and context size."""
    from liftdspy.lm.local_engine import LocalEngine
    from liftdspy.lm.models import ModelNotFoundError

    engine = LocalEngine(model=_local_model_name(lm), model_path=model_path)
    try:
        facts = engine.info()
    except ModelNotFoundError as exc:
        output.error(str(exc))
        raise typer.Exit(code_for_error(exc)) from exc
    if as_json:
        output.print_json(facts)
        return
    table = Table(show_header=False)
    for key, value in facts.items():
        table.add_row(key, escape(str(value)))
    output.out().print(table)
