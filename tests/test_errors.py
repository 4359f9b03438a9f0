"""One error root: every error liftdspy defines derives from LiftdspyError; the CLI prints those.

The CLI cases use a two-command test app (logic only, no LM) built on the real root group class.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import typer
from typer.testing import CliRunner

import liftdspy
from liftdspy.cli import LiftdspyGroup
from liftdspy.errors import LiftdspyError

# Modules that need an optional extra at import time (Modal's SDK).
OPTIONAL_IMPORTS = {"liftdspy.serving.modal_app"}


def _liftdspy_modules():
    for info in pkgutil.walk_packages(liftdspy.__path__, prefix="liftdspy."):
        if info.name in OPTIONAL_IMPORTS or info.name.endswith(".__main__"):
            continue  # __main__ modules run the CLI when imported
        yield importlib.import_module(info.name)


def test_every_liftdspy_error_derives_from_the_root():
    defined = []
    for module in _liftdspy_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and issubclass(cls, BaseException)
                and not cls.__name__.startswith("_")  # private to a module (the sandbox child)
            ):
                defined.append(cls)
    assert len(defined) >= 20, "the walk should find liftdspy's error classes"
    stray = [
        f"{c.__module__}.{c.__qualname__}" for c in defined if not issubclass(c, LiftdspyError)
    ]
    assert stray == []


def test_errors_keep_their_builtin_base():
    from liftdspy.datasets.loader import DatasetError
    from liftdspy.lm.models import ModelNotFoundError

    assert issubclass(DatasetError, ValueError)
    assert issubclass(ModelNotFoundError, FileNotFoundError)


class _BadInput(LiftdspyError, ValueError):
    pass


class _FailedCall(LiftdspyError, RuntimeError):
    pass


def _test_app() -> typer.Typer:
    app = typer.Typer(cls=LiftdspyGroup)

    @app.command()
    def bad_input() -> None:
        raise _BadInput("datasets/x.jsonl:3: prompt: field required")

    @app.command()
    def failed_call() -> None:
        raise _FailedCall("http://127.0.0.1:9/v1: connection refused")

    @app.command()
    def bug() -> None:
        raise RuntimeError("a bug")

    return app


def test_cli_prints_liftdspy_errors_to_stderr_with_the_exit_code_of_their_class():
    result = CliRunner().invoke(_test_app(), ["bad-input"])
    assert result.exit_code == 2  # bad input: the error keeps a ValueError base
    assert "datasets/x.jsonl:3: prompt: field required" in result.stderr
    assert "datasets/x.jsonl" not in result.stdout
    failed = CliRunner().invoke(_test_app(), ["failed-call"])
    assert failed.exit_code == 1  # a failure (RuntimeError base), not the user's input
    assert "connection refused" in failed.stderr and failed.stdout == ""


def test_cli_lets_other_exceptions_through():
    result = CliRunner().invoke(_test_app(), ["bug"])
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize("argv", [["run", "experiments/does-not-exist.yaml"]])
def test_real_command_errors_go_to_stderr(argv):
    from liftdspy.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code != 0
    assert "does-not-exist.yaml" in result.stderr
