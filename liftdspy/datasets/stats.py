"""Summary counts of labelled datasets: tasks per split and tag, ambiguity, tests and holes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, Field

from liftdspy.datasets.row import SPLITS, LabelledTask


class DatasetStats(BaseModel):
    """Counts over a group of tasks (one file, or all of them)."""

    name: str
    tasks: int = 0
    by_split: dict[str, int] = Field(default_factory=dict)
    by_tag: dict[str, int] = Field(default_factory=dict)
    ambiguous: int = Field(0, description="Tasks whose gold IR has at least one typed hole.")
    holes: int = Field(0, description="Typed holes over all tasks.")
    holes_by_kind: dict[str, int] = Field(default_factory=dict)
    tests_min: int = 0
    tests_max: int = 0
    tests_total: int = 0
    with_reference: int = 0

    @property
    def tests_mean(self) -> float:
        return self.tests_total / self.tasks if self.tasks else 0.0


def dataset_stats(name: str, tasks: Iterable[LabelledTask]) -> DatasetStats:
    tasks = list(tasks)
    tests = [len(t.tests) for t in tasks]
    splits = Counter(t.split for t in tasks)
    return DatasetStats(
        name=name,
        tasks=len(tasks),
        by_split={s: splits[s] for s in SPLITS if splits[s]},
        by_tag=dict(Counter(tag for t in tasks for tag in t.tags).most_common()),
        ambiguous=sum(t.is_ambiguous for t in tasks),
        holes=sum(len(t.ir.holes) for t in tasks),
        holes_by_kind=dict(Counter(h.kind.value for t in tasks for h in t.ir.holes).most_common()),
        tests_min=min(tests, default=0),
        tests_max=max(tests, default=0),
        tests_total=sum(tests),
        with_reference=sum(t.reference is not None for t in tasks),
    )
