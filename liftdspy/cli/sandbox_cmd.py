"""`liftdspy sandbox ...` commands: check code against tests in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from liftdspy import pyast
from liftdspy.cli import output
from liftdspy.cli.exit_codes import ExitCode
from liftdspy.errors import LiftdspyError
from liftdspy.sandbox import (
    UNSAFE_WARNING,
    IsolationUnavailable,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    configure,
    detect_isolation,
    run_tests,
)
from liftdspy.sandbox.report import error_text

app = typer.Typer(help="Run code against tests in the sandbox.", no_args_is_help=True)

_OUTCOME_STYLE = {
    TestOutcome.passed: "green",
    TestOutcome.failed: "red",
    TestOutcome.error: "magenta",
    TestOutcome.timeout: "yellow",
}


class TestsFileError(LiftdspyError, ValueError):
    """A tests file that cannot be read as a list of test statements."""

    __test__ = False


def read_tests_file(path: Path) -> list[str]:
    """Tests from a JSON list of strings (`.json`) or a Python file (one test per statement)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TestsFileError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise TestsFileError(f"{path}: expected a JSON list of strings (one test each)")
        return data
    try:
        module = pyast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise TestsFileError(f"{path}:{exc.lineno}: invalid Python: {exc.msg}") from exc
    lines = text.splitlines()
    tests = []
    for node in module.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        end = node.end_lineno or node.lineno
        tests.append("\n".join(lines[first - 1 : end]))
    return tests


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TestsFileError(f"cannot read {what} {path}: {exc}") from exc


def _render(result: SandboxResult, console: Console) -> None:
    if not result.loaded:
        console.print(f"[bold red]code did not load:[/] {escape(str(result.load_error))}")
    table = Table(title=f"{result.passed}/{result.total} tests passed in {result.duration_s:.2f} s")
    table.add_column("#", justify="right")
    table.add_column("outcome")
    table.add_column("verdict")
    table.add_column("test", overflow="fold")
    table.add_column("message", overflow="fold")
    for test in result.tests:
        style = _OUTCOME_STYLE[test.outcome]
        table.add_row(
            str(test.index),
            f"[{style}]{test.outcome.value}[/]",
            test.verdict.value,
            escape(test.source.strip().splitlines()[0]) if test.source.strip() else "",
            escape(error_text(test)),
            end_section=False,
        )
    console.print(table)
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text.strip():
            console.rule(name)
            console.print(text, markup=False, highlight=False)
    if result.timed_out:
        console.print("[yellow]the program was stopped by its time limit[/]")
    if result.unsafe:
        console.print(f"[bold red]warning:[/] {UNSAFE_WARNING}")


@app.command("check")
def check(
    code_file: Annotated[Path, typer.Argument(help="Python file with the code under test.")],
    tests: Annotated[
        Path,
        typer.Option(
            "--tests",
            "-t",
            help="Tests: a .json list of statements, or a .py file whose top-level statements "
            "are the tests (one test per statement).",
        ),
    ],
    setup: Annotated[Path | None, typer.Option(help="Python run after the code.")] = None,
    timeout: Annotated[float, typer.Option(help="Wall clock limit for the program (s).")] = 10.0,
    test_timeout: Annotated[float, typer.Option(help="Limit for each test (s).")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    unsafe_no_isolation: Annotated[
        bool,
        typer.Option("--unsafe-no-isolation", help="Run the code WITHOUT OS isolation (UNSAFE)."),
    ] = False,
) -> None:
    """Run CODE_FILE against TESTS in the sandbox. Exit 0 if all pass, 1 if not, 2 on bad input."""
    try:
        code = _read_text(code_file, "code file")
        test_list = read_tests_file(tests) if tests.is_file() else None
        if test_list is None:
            raise TestsFileError(f"tests file not found: {tests}")
        setup_text = _read_text(setup, "setup file") if setup else ""
        limits = SandboxLimits(timeout_s=timeout, test_timeout_s=test_timeout)
    except (TestsFileError, ValueError) as exc:
        output.error(str(exc))
        raise typer.Exit(ExitCode.BAD_INPUT) from exc

    if unsafe_no_isolation:
        configure(isolation="none")
    try:
        result = run_tests(code, test_list, setup=setup_text, limits=limits)
    except IsolationUnavailable as exc:
        output.error(str(exc))
        raise typer.Exit(ExitCode.BAD_INPUT) from exc
    if as_json:
        output.print_json(result)
    else:
        _render(result, output.out())
    passed = result.loaded and result.passed == result.total
    raise typer.Exit(ExitCode.OK if passed else ExitCode.FINDING)


@app.command("isolation")
def isolation(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show which OS isolation the sandbox has here (from a probe sandbox) and what is missing.

    Exits 1 when untrusted code cannot run isolated on this machine.
    """
    report = detect_isolation()
    if as_json:
        output.print_json(report)
        raise typer.Exit(ExitCode.OK if report.available else ExitCode.FINDING)
    console = output.out()
    if not report.available:
        console.print("[bold red]sandbox isolation unavailable[/]")
        for reason in report.missing:
            console.print(f"- {reason}", markup=False, highlight=False)
        raise typer.Exit(ExitCode.FINDING)
    table = Table(title=f"sandbox isolation: bubblewrap {report.bwrap_version} ({report.bwrap})")
    table.add_column("layer")
    table.add_column("in force")
    table.add_column("detail", overflow="fold")
    for layer in report.layers:
        mark = "[green]yes[/]" if layer.in_force else "[red]no[/]"
        table.add_row(layer.name, mark, escape(layer.detail))
    console.print(table)
    for reason in report.missing:
        console.print(f"[yellow]missing:[/] {reason}", highlight=False)
