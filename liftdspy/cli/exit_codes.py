"""The exit codes of every `liftdspy` command (docs/reference/cli.md lists them).

  0  ok          the command did what was asked
  1  finding     it ran and the answer is "no": bad rows found, tests failed, isolation
                 unavailable, a run or server call failed
  2  bad input   invalid config, arguments or files (typer's own usage errors are 2 too)
  3  incomplete  it stopped before the end: a study whose budget stopped it or whose cells
                 did not all finish (re-run to resume)
130  interrupted Ctrl-C
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDING = 1
    BAD_INPUT = 2
    INCOMPLETE = 3
    INTERRUPTED = 130


MEANING = {
    ExitCode.OK: "ok: the command did what was asked",
    ExitCode.FINDING: "finding: it ran and the answer is no (bad rows, failing tests, isolation "
    "unavailable), or what it ran failed (an LM or server call, a missing recording offline)",
    ExitCode.BAD_INPUT: "bad input: an invalid config, argument or file, an unknown run or store "
    "(typer's own usage errors are 2 as well)",
    ExitCode.INCOMPLETE: "incomplete: a study that its budget stopped or whose cells did not all "
    "finish; re-run the same command to resume",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); finished work is kept",
}


def code_for_error(exc: BaseException) -> ExitCode:
    """The exit code of a liftdspy error: bad input for the ones that keep a `ValueError`,
    `LookupError` or `FileNotFoundError` base (a bad config, an unknown run, a missing file),
    a finding for the rest (a failed call, missing isolation)."""
    if isinstance(exc, ValueError | LookupError | FileNotFoundError):
        return ExitCode.BAD_INPUT
    return ExitCode.FINDING
