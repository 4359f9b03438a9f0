"""`liftdspy lm ...` commands: try a prompt on the embedded model, show what it runs."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

app = typer.Typer(help="lm commands.", no_args_is_help=True)
console = Console()

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
) -> None:
    """Send PROMPT to the model and print its answer (with --schema ir: a validated IR)."""
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
    text = response.text or ""
    if schema == "ir":
        _show_ir(text)
    else:
        console.print(text)
    _show_usage(response)


def _show_ir(text: str) -> None:
    from liftdspy.ir import IntermediateRepresentation

    try:
        ir = IntermediateRepresentation.model_validate_json(text)
    except ValidationError as exc:
        console.print(text, markup=False)
        console.print(f"[red]The output is not a valid IR:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(Syntax(ir.to_json(indent=2), "json", word_wrap=True))


def _show_usage(response: Any) -> None:
    usage = response.usage
    timing = (response.provider_data or {}).get("local", {})
    console.print(
        f"[dim]{usage.input_tokens} prompt tokens ({usage.cache_read_tokens} reused), "
        f"{usage.output_tokens} output tokens, finish={response.finish_reason}, "
        f"{timing.get('decode_tokens_per_second')} tok/s[/dim]"
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
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    table = Table(show_header=False)
    for key, value in facts.items():
        table.add_row(key, value)
    console.print(table)
