"""Loading labelled-task JSONL: every bad row is named as `file:line: what is wrong`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liftdspy.datasets import DatasetError, LabelledTask, load_tasks, read_tasks, write_tasks
from liftdspy.datasets.stats import dataset_stats
from liftdspy.ir import Intent, IntermediateRepresentation, Returns, Signature, TypedHole


def make_task(task_id: str, *, split: str = "train", holes: int = 0) -> LabelledTask:
    ir = IntermediateRepresentation(
        intent=Intent(summary="Add one to a number."),
        signature=Signature(name="inc", returns=Returns(type_hint="int")),
        holes=[
            TypedHole(identifier=f"h{i}", type_hint="bool", description="?", kind="intent")
            for i in range(holes)
        ],
    )
    return LabelledTask(
        id=task_id,
        prompt="Add one.",
        ir=ir,
        tests=["assert inc(1) == 2", "assert inc(-1) == 0"],
        reference="def inc(x):\n    return x + 1\n",
        tags=["numbers"],
        split=split,
    )


def row(task: LabelledTask) -> str:
    return task.model_dump_json()


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    """Line 2 malformed JSON, line 3 schema-invalid, line 5 a duplicate of line 1."""
    invalid = json.loads(row(make_task("t2")))
    invalid["split"] = "holdout"
    lines = [
        row(make_task("t1")),
        '{"id": "broken", ',
        json.dumps(invalid),
        row(make_task("t4")),
        row(make_task("t1")),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_bad_row_is_named_by_file_and_line(bad_file: Path) -> None:
    result = read_tasks([bad_file])
    assert [t.id for t in result.tasks] == ["t1", "t4"]
    messages = [str(e) for e in result.errors]
    assert messages[0].startswith(f"{bad_file}:2: not valid JSON")
    assert messages[1].startswith(f"{bad_file}:3: split:")
    assert messages[2] == f"{bad_file}:5: duplicate id 't1' (first at {bad_file}:1)"


def test_load_fails_on_a_bad_row_unless_keep_going(bad_file: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        load_tasks([bad_file])
    assert f"{bad_file}:2:" in str(caught.value)
    assert len(caught.value.errors) == 3
    kept = load_tasks([bad_file], keep_going=True)
    assert [t.id for t in kept] == ["t1", "t4"]


def test_round_trip_and_split_filter(tmp_path: Path) -> None:
    tasks = [make_task("a", split="train"), make_task("b", split="test", holes=2)]
    path = tmp_path / "sub" / "ok.jsonl"
    assert write_tasks(tasks, path) == 2
    assert load_tasks([tmp_path]) == tasks  # a directory expands to its *.jsonl
    assert [t.id for t in load_tasks([path], splits=["test"])] == ["b"]


def test_stats_count_splits_holes_and_tests() -> None:
    tasks = [make_task("a"), make_task("b", split="dev", holes=2), make_task("c", holes=1)]
    stats = dataset_stats("x", tasks)
    assert stats.tasks == 3
    assert stats.by_split == {"train": 2, "dev": 1}
    assert (stats.ambiguous, stats.holes) == (2, 3)
    assert stats.holes_by_kind == {"intent": 3}
    assert (stats.tests_min, stats.tests_max, stats.tests_mean) == (2, 2, 2.0)
    assert stats.by_tag == {"numbers": 3}
