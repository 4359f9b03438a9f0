"""`liftdspy cache ...`: inspect, export, import and clear recorded LM calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.lm.store import (
    RecordingStore,
    RecordingStoreError,
    default_jsonl_path,
    default_store_path,
)
from liftdspy.versioning import Version

app = typer.Typer(help="Inspect and move recorded LM responses.", no_args_is_help=True)

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Recording name (cache/diskcache/NAME).")
]
PathOption = Annotated[
    Path | None, typer.Option("--path", "-p", help="diskcache directory (overrides --name).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]


class CacheStats(BaseModel):
    """`liftdspy cache stats --json`."""

    version: Version = "1"
    path: str
    entries: int
    per_model: dict[str, int]
    bytes: int


def _store_path(name: str, path: Path | None) -> Path:
    return path if path is not None else default_store_path(name)


def _open_existing(name: str, path: Path | None) -> RecordingStore:
    store_path = _store_path(name, path)
    if not store_path.is_dir():
        output.error(f"no recordings at {store_path} (check --name / --path)")
        raise typer.Exit(ExitCode.BAD_INPUT)
    return RecordingStore(store_path)


@app.command()
def stats(
    name: NameOption = "default", path: PathOption = None, as_json: JsonOption = False
) -> None:
    """Entries, size on disk and entries per model."""
    with _open_existing(name, path) as store:
        per_model = store.per_model()
        figures = CacheStats(
            path=str(store.path),
            entries=sum(per_model.values()),
            per_model=dict(sorted(per_model.items())),
            bytes=store.volume(),
        )
    if as_json:
        output.print_json(figures)
        return
    table = Table(title=f"Recordings in {figures.path}")
    table.add_column("model")
    table.add_column("entries", justify="right")
    for model, count in figures.per_model.items():
        table.add_row(model, str(count))
    table.add_row("[bold]total[/bold]", f"[bold]{figures.entries}[/bold]")
    out = output.out()
    out.print(table)
    out.print(f"size: {figures.bytes / 1024:.1f} KiB")


@app.command("export")
def export_(
    name: NameOption = "default",
    path: PathOption = None,
    output_file: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="JSONL file (default cache/recordings/NAME.jsonl)."),
    ] = None,
) -> None:
    """Write every recording to a reviewable JSONL file (one entry per line, sorted by key)."""
    target = output_file if output_file is not None else default_jsonl_path(name)
    with _open_existing(name, path) as store:
        count = store.export_jsonl(target)
    output.out().print(f"Exported {count} recordings to {target}", markup=False)


@app.command("import")
def import_(
    jsonl: Annotated[Path, typer.Argument(help="JSONL file written by `liftdspy cache export`.")],
    name: NameOption = "default",
    path: PathOption = None,
) -> None:
    """Add the recordings of a JSONL file to a store (created if missing)."""
    with RecordingStore(_store_path(name, path)) as store:
        try:
            count = store.import_jsonl(jsonl)
        except RecordingStoreError as exc:
            output.error(str(exc))
            raise typer.Exit(ExitCode.BAD_INPUT) from None
        output.out().print(
            f"Imported {count} recordings into {store.path} ({len(store)} in total)", markup=False
        )


@app.command()
def clear(
    name: NameOption = "default",
    path: PathOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every recording of a store (export first to keep them). Exit 1 if you decline."""
    with _open_existing(name, path) as store:
        count = len(store)
        if not yes and not typer.confirm(f"Delete {count} recordings in {store.path}?"):
            output.err().print("Nothing deleted.")
            raise typer.Exit(ExitCode.FINDING)
        store.clear()
    output.out().print(f"Deleted {count} recordings from {store.path}", markup=False)
