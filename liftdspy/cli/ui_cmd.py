"""`liftdspy ui`: the MLflow UI on the project's tracking store.

Registered in `liftdspy/cli/__init__.py` as a single command: `app.command("ui")(ui)`.
Runs and their compare views are under the UI's "Model training" toggle (MLflow 3 opens on
its GenAI view). On a tracking server (`liftdspy server`, `MLFLOW_TRACKING_URI=http://...`) the
server serves the UI itself: `ui` checks that it answers and prints its address.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

import typer

from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.cli.server_process import (
    raise_keyboard_interrupt,
    stop_process,
)
from liftdspy.redaction import redact_url
from liftdspy.serving.health import answers, wait_until_ready
from liftdspy.tracking import artifacts_dir, resolve_tracking_uri, sqlite_path

READY_TIMEOUT_SECONDS = 180.0
HEALTH_TIMEOUT_SECONDS = 10.0


def mlflow_server_command(tracking_uri: str, host: str, port: int, workers: int) -> list[str]:
    """The `mlflow server` command line for a local store (run with the current Python)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--artifacts-destination",
        str(artifacts_dir(tracking_uri)),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def health_request(url: str) -> urllib.request.Request:
    """`GET URL/health`; credentials in the URL (`http://USER:TOKEN@HOST`) go as basic auth,
    as MLflow's client sends them (urllib refuses them in the URL)."""
    parts = urlsplit(url.rstrip("/"))
    headers = {}
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    target = urlunsplit((parts.scheme, netloc, f"{parts.path}/health", "", ""))
    return urllib.request.Request(target, headers=headers)


def server_answers(url: str) -> bool:
    """True when the MLflow tracking server at `url` answers `GET /health` with 200."""
    try:
        return answers(health_request(url), timeout=HEALTH_TIMEOUT_SECONDS)
    except ValueError:  # not a URL urllib can open
        return False


def _show_server_ui(uri: str) -> None:
    """The tracking server at `uri` is its own UI: say where, or why it cannot be reached."""
    shown = redact_url(uri)
    if not server_answers(uri):
        output.error(
            f"{shown} is already a tracking server, but GET /health did not answer: "
            "is `liftdspy server` running there?"
        )
        raise typer.Exit(ExitCode.FINDING)
    console = output.out()
    console.print(f"[green]MLflow UI:[/green] {shown} (the tracking server serves it)")
    console.print("runs and compare views: 'Model training' (top left) -> Experiments")


def mlflow_server_env() -> dict[str, str]:
    """The server's environment: no network fetch of LiteLLM's model price map at start-up."""
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def ui(
    port: int = typer.Option(5000, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep it local)."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)."
    ),
    workers: int = typer.Option(1, "--workers", help="Server worker processes."),
) -> None:
    """Serve the MLflow UI on the tracking store until Ctrl-C (a tracking server: its address)."""
    uri = resolve_tracking_uri(tracking_uri)
    console = output.err()
    if uri.startswith(("http://", "https://")):
        _show_server_ui(uri)
        return
    if uri.startswith("databricks"):
        output.error(f"{uri} is already a tracking server; open it in a browser.")
        raise typer.Exit(ExitCode.BAD_INPUT)
    db_path = sqlite_path(uri)
    if db_path is not None and not db_path.exists():
        console.print(f"[yellow]{uri} does not exist yet; the UI will start empty.[/yellow]")
    url = f"http://{host}:{port}"
    command = mlflow_server_command(uri, host, port, workers)
    console.print(f"starting the MLflow UI for {uri} at {url} (artifacts: {artifacts_dir(uri)})")
    process = subprocess.Popen(command, env=mlflow_server_env())
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        if not wait_until_ready(url, process, READY_TIMEOUT_SECONDS):
            code = process.poll()
            stop_process(process, grace_seconds=15)
            reason = f"exited with code {code}" if code is not None else "did not answer"
            output.error(f"mlflow server {reason} on {url}; is port {port} free? (try --port)")
            raise typer.Exit(ExitCode.FINDING)
        output.out().print(f"[green]MLflow UI:[/green] {url}")
        console.print("runs and compare views: 'Model training' (top left) -> Experiments")
        console.print("Ctrl-C to stop")
        sys.stdout.flush()
        if process.wait() != 0:
            output.error(f"mlflow server exited with code {process.returncode}")
            raise typer.Exit(ExitCode.FINDING)
    except KeyboardInterrupt:
        console.print("stopping the MLflow UI")
    finally:
        stop_process(process, grace_seconds=15)
