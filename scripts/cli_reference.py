"""Print docs/reference/cli.md: every `liftdspy` command and flag, read from the typer app.

    python scripts/cli_reference.py > docs/reference/cli.md

tests/test_cli_reference.py checks that the committed page is this script's output, so a new
command, flag or help text cannot go undocumented. The sections after the commands (output
rules, exit codes, environment variables) come from `liftdspy.cli.output`,
`liftdspy.cli.exit_codes` and the ENVIRONMENT table below (the test also checks that every
`LIFTDSPY_*` variable the code reads is in it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
import typer.main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from liftdspy.cli import app
from liftdspy.cli.exit_codes import MEANING
from liftdspy.cli.logs import LOG_ARTIFACT, QUIET_ENV
from liftdspy.cli.output import PLAIN_WIDTH

# name -> what it does (read by the CLI or the library the CLI runs)
ENVIRONMENT = {
    "LIFTDSPY_RECORDER": "Recorder mode for every LM (off, record, replay, offline); "
    "`--recorder` wins over it for one command. The test suite sets `offline`.",
    "LIFTDSPY_CACHE_DIR": "Where recordings live (default `cache/`: `diskcache/NAME`, "
    "`recordings/NAME.jsonl`).",
    "LIFTDSPY_IMPORT_CACHE": "Where `dataset.imports` caches imported benchmark datasets "
    "(MBPP, HumanEval; default `~/.cache/liftdspy/imports`, or under `XDG_CACHE_HOME`).",
    "LIFTDSPY_LOG_DIR": "Folder of the session log files (default: `liftdspy-logs` in the "
    "system's temporary directory).",
    "LIFTDSPY_API_KEY": "Default API key variable of `kind: openai` LMs (an LM config names "
    "its own with `api_key_env`).",
    "LIFTDSPY_DB_PASSWORD": "Database password of `liftdspy server` (`--password-env`).",
    "LIFTDSPY_SERVER_ADMIN_PASSWORD": "The auth admin's password of `liftdspy server` "
    "(`--admin-password-env`; or `--admin-password-file`).",
    "LIFTDSPY_USER_PASSWORD": "A new user's password for `liftdspy server user add/password` "
    "(else `--password-file` or a hidden prompt).",
    "LIFTDSPY_MODAL_URL": "Base URL of the Modal deployment (`kind: modal` without `base_url`).",
    "LIFTDSPY_MODAL_WORKSPACE": "Modal workspace, to build the deployment's URL offline.",
    "LIFTDSPY_MODAL_PRESET": "Modal app settings (`liftdspy modal deploy|serve`): model preset.",
    "LIFTDSPY_MODAL_GPU": "Modal GPU type.",
    "LIFTDSPY_MODAL_APP": "Modal app name (default liftdspy-vllm).",
    "LIFTDSPY_MODAL_ENVIRONMENT": "Modal environment of the deployment.",
    "LIFTDSPY_MODAL_SECRET": "Modal secret holding VLLM_API_KEY (default liftdspy-vllm).",
    "LIFTDSPY_MODAL_VOLUME": "Modal volume caching the weights.",
    "LIFTDSPY_MODAL_STARTUP_TIMEOUT": "Seconds the Modal server may take to start.",
    "LIFTDSPY_MODAL_SCALEDOWN_WINDOW": "Seconds an idle Modal container stays up.",
    "LIFTDSPY_MODAL_MIN_CONTAINERS": "Modal autoscaling: minimum containers.",
    "LIFTDSPY_MODAL_MAX_CONTAINERS": "Modal autoscaling: maximum containers.",
    "LIFTDSPY_MODAL_MAX_INPUTS": "Modal: concurrent requests per container.",
    "LIFTDSPY_MODAL_DEPLOYMENT": "Internal: the deployment settings passed to the Modal app.",
    "LIFTDSPY_VLLM_PYTHON": "`liftdspy serve vllm`: the Python that has vLLM installed.",
    "LIFTDSPY_VLLM_VENV": "`liftdspy serve vllm`: the virtualenv that has vLLM installed.",
    "LIFTDSPY_VLLM_MODEL": "`liftdspy serve vllm`: the CPU model folder.",
    "VLLM_API_KEY": "`liftdspy serve vllm`: the server's API key (`--api-key-env`).",
    "MLFLOW_TRACKING_URI": "The MLflow store when `--tracking-uri` / `tracking.uri` are not "
    "given (default `sqlite:///mlflow.db`).",
    "COLUMNS": f"Width of tables when stdout is not a terminal (default {PLAIN_WIDTH}).",
    "LITELLM_LOCAL_MODEL_COST_MAP": "Set to True by liftdspy unless set: LiteLLM's bundled "
    "price table, no download at import.",
    **{
        name: f"Set to {value} unless set or `-v`: no progress bar."
        for name, value in QUIET_ENV.items()
    },
}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _command_section(path: list[str], command: Any, level: str) -> list[str]:
    ctx = typer.Context(command, info_name=" ".join(path))
    pieces = " ".join(command.collect_usage_pieces(ctx)).replace("{", "").replace("}", "").upper()
    lines = [f"{level} `{' '.join(path)}`", "", f"`{' '.join(path)} {pieces}`".rstrip(), ""]
    if command.help:
        lines += [command.help.strip(), ""]
    rows = []
    for param in command.params:
        if param.name in ("install_completion", "show_completion") or param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        name, help_text = record
        help_text = help_text.replace("[required]", "").strip()
        required = "yes" if param.required else ""
        rows.append(f"| `{_cell(name)}` | {required} | {_cell(help_text)} |")
    if rows:
        lines += ["| argument / option | required | what |", "|---|---|---|"]
        lines += [*rows, ""]
    return lines


def _walk(path: list[str], group: Any) -> list[str]:
    lines: list[str] = []
    ctx = typer.Context(group, info_name=" ".join(path))
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        if hasattr(command, "list_commands"):
            lines += [f"## `{' '.join([*path, name])}`", ""]
            if command.help:
                lines += [command.help.strip(), ""]
            lines += _walk([*path, name], command)
        else:
            lines += _command_section([*path, name], command, "##" if len(path) == 1 else "###")
    return lines


def render() -> str:
    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated by `python scripts/cli_reference.py > docs/reference/cli.md`; "
        "tests/test_cli_reference.py keeps it equal to the code. Do not edit by hand. -->",
        "",
        "Every `liftdspy` command and flag, read from the typer app, then how output, exit "
        "codes and logs work for all of them.",
        "",
        "## `liftdspy` (global options)",
        "",
        "`liftdspy [OPTIONS] COMMAND [ARGS]...`",
        "",
        "| option | what |",
        "|---|---|",
    ]
    ctx = typer.Context(root, info_name="liftdspy")
    for param in root.params:
        if param.name in ("install_completion", "show_completion"):
            continue
        name, help_text = param.get_help_record(ctx)
        lines.append(f"| `{_cell(name)}` | {_cell(help_text)} |")
    lines += ["", *_walk(["liftdspy"], root)]
    lines += [
        "## Output for scripts",
        "",
        "- Results go to stdout, errors, warnings and progress bars to stderr.",
        "- On a terminal, output is rich (colour, tables fitted to the window). When stdout is "
        "not a terminal (a pipe, a file, CI), the same text has no colour or escape codes, lines "
        f"are never wrapped, and tables are at most {PLAIN_WIDTH} columns (`$COLUMNS` to "
        "change).",
        "- `--json` prints one JSON document on stdout: every field of the command's result "
        'model (`model_dump(mode="json")`), so new fields appear without a CLI change. The '
        "human lines a command prints beside its result go to stderr with `--json`.",
        "- `liftdspy lm try PROMPT --schema ir` prints the IR as one JSON document "
        "(`| python -m json.tool` and `| jq` read it); the usage line goes to stderr.",
        "",
        "## Exit codes",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {int(code)} | {_cell(text)} |" for code, text in MEANING.items()),
        "",
        "A liftdspy error that keeps a `ValueError`, `LookupError` or `FileNotFoundError` base is "
        "bad input (2); any other liftdspy error is a finding (1). Anything else is a bug and "
        "prints its traceback.",
        "",
        "## Logs",
        "",
        "The terminal shows liftdspy's own warnings, its progress bars and the results. DSPy's, "
        "MIPROv2's, LiteLLM's, optuna's and MLflow's log records, Python warnings and the "
        "`print()`s of DSPy's optimizers go to the session's log file "
        "(`$LIFTDSPY_LOG_DIR/liftdspy-TIME-PID.log`; the worker processes of "
        "`study run --workers N` write to the same file); `run`, `evaluate` and `study run` log it "
        f"to their MLflow run as the artifact `{LOG_ARTIFACT}` (a failed run prints the file's "
        "path). `liftdspy -v` shows all of it on the terminal instead. Values of environment "
        "variables named like credentials (`*_API_KEY`, `*_TOKEN`, `*_PASSWORD`, ...) and "
        "credentials inside URLs are replaced by `<redacted>` in the log.",
        "",
        "## Environment variables",
        "",
        "| variable | what |",
        "|---|---|",
        *(f"| `{name}` | {_cell(text)} |" for name, text in ENVIRONMENT.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
