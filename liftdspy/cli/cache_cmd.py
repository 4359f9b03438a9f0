"""`liftdspy cache ...`: inspect, export, import and clear recorded LM calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from liftdspy.lm.store import (
    RecordingStore,
    RecordingStoreError,
    default_jsonl_path,
    default_store_path,
)

app = typer.Typer(help="Inspect and move recorded LM responses.", no_args_is_help=True)
console = Console()

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Recording name (cache/diskcache/NAME).")
]
PathOption = Annotated[
    Path | None, typer.Option("--path", "-p", help="diskcache directory (overrides --name).")
]


def _store_path(name: str, path: Path | None) -> Path:
    return path if path is not None else default_store_path(name)


def _open_existing(name: str, path: Path | None) -> RecordingStore:
    store_path = _store_path(name, path)
    if not store_path.is_dir():
        console.print(f"[red]No recordings at {store_path}[/red] (check --name / --path)")
        raise typer.Exit(code=1)
    return RecordingStore(store_path)


@app.command()
def stats(name: NameOption = "default", path: PathOption = None) -> None:
    """Entries, size on disk and entries per model."""
    with _open_existing(name, path) as store:
        per_model = store.per_model()
        table = Table(title=f"Recordings in {store.path}")
        table.add_column("model")
        table.add_column("entries", justify="right")
        for model, count in sorted(per_model.items()):
            table.add_row(model, str(count))
        table.add_row("[bold]total[/bold]", f"[bold]{sum(per_model.values())}[/bold]")
        console.print(table)
        console.print(f"size: {store.volume() / 1024:.1f} KiB")


@app.command("export")
def export_(
    name: NameOption = "default",
    path: PathOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="JSONL file (default cache/recordings/NAME.jsonl)."),
    ] = None,
) -> None:
    """Write every recording to a reviewable JSONL file (one entry per line, sorted by key)."""
    target = output if output is not None else default_jsonl_path(name)
    with _open_existing(name, path) as store:
        count = store.export_jsonl(target)
    console.print(f"Exported {count} recordings to {target}")


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
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(code=1) from None
        console.print(f"Imported {count} recordings into {store.path} ({len(store)} in total)")


@app.command()
def clear(
    name: NameOption = "default",
    path: PathOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every recording of a store (export first to keep them)."""
    with _open_existing(name, path) as store:
        count = len(store)
        if not yes and not typer.confirm(f"Delete {count} recordings in {store.path}?"):
            console.print("Nothing deleted.")
            raise typer.Exit(code=1)
        store.clear()
    console.print(f"Deleted {count} recordings from {store.path}")
