"""The hand-written core dataset: size, splits, ambiguity, and every reference passing its tests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from liftdspy.datasets import load_tasks
from liftdspy.ir import parse_signature
from liftdspy.sandbox import SandboxJob, run_many

CORE = Path(__file__).resolve().parents[1] / "datasets" / "core"


@pytest.fixture(scope="module")
def tasks():
    return load_tasks([CORE])


def test_size_splits_and_ambiguity(tasks):
    assert len(tasks) >= 80
    splits = Counter(t.split for t in tasks)
    assert splits["train"] >= 40 and splits["dev"] >= 20 and splits["test"] >= 20
    ambiguous = [t for t in tasks if t.is_ambiguous]
    assert len(ambiguous) >= 12
    assert {t.split for t in ambiguous} == {"train", "dev", "test"}
    assert all("ambiguous" in t.tags for t in ambiguous)
    assert all(len(t.tests) >= 3 and t.reference for t in tasks)


def test_gold_signatures_match_the_references(tasks):
    def normalise(hint: str) -> str:
        return "".join(hint.split())

    for task in tasks:
        parsed = parse_signature(task.reference, task.entry_point)
        gold = task.ir.signature
        assert [p.name for p in parsed.parameters] == [p.name for p in gold.parameters], task.id
        assert [normalise(p.type_hint) for p in parsed.parameters] == [
            normalise(p.type_hint) for p in gold.parameters
        ], task.id
        assert normalise(parsed.returns.type_hint) == normalise(gold.returns.type_hint), task.id


def test_every_reference_passes_every_test_in_the_sandbox(tasks):
    jobs = [SandboxJob(code=t.reference, tests=t.tests, setup=t.test_setup) for t in tasks]
    results = run_many(jobs)
    failing = {
        t.id: [f"{r.source}: {r.outcome} {r.message}" for r in res.tests if r.outcome != "passed"]
        or [res.load_error]
        for t, res in zip(tasks, results, strict=True)
        if res.pass_rate < 1.0
    }
    assert failing == {}
