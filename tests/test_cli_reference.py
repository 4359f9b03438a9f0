"""docs/reference/cli.md is what scripts/cli_reference.py prints from the typer app (regenerate:
`python scripts/cli_reference.py > docs/reference/cli.md`), and it names every `LIFTDSPY_*`
environment variable the code reads."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference" / "cli.md"


def _script():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts/cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_cli_reference_is_the_generated_one():
    assert PAGE.read_text(encoding="utf-8") == _script().render(), (
        "docs/reference/cli.md is stale: python scripts/cli_reference.py > docs/reference/cli.md"
    )


def test_every_command_and_json_flag_is_documented():
    page = PAGE.read_text(encoding="utf-8")
    for command in ("run", "evaluate", "compare", "export", "study run", "study report",
                    "cache stats", "datasets stats", "datasets validate", "datasets import mbpp",
                    "sandbox check", "sandbox isolation", "lm try", "lm info"):  # fmt: skip
        section = page.split(f"`liftdspy {command}`\n", 1)[1].split("\n#", 1)[0]
        assert "`--json`" in section, command
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in page


def test_every_liftdspy_environment_variable_is_documented():
    read = set()
    for path in (ROOT / "liftdspy").rglob("*.py"):
        read |= set(re.findall(r"\"(LIFTDSPY_[A-Z0-9_]+)\"", path.read_text(encoding="utf-8")))
    assert read, "the scan should find the variables"
    assert sorted(read - set(_script().ENVIRONMENT)) == []
