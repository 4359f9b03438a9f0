"""Winner's curse: how much an optimizer's selected candidate loses from validation to evaluation.

An optimizer picks the candidate with the best validation score; that maximum is biased upward
(it is partly the luckiest noise), so the same program scores lower on held-out evaluation
examples. Per optimizer run, ``optimism = validation_score - evaluation_score``; a positive mean
optimism per arm means the arm's reported validation scores over-promise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from liftdspy.stats.errors import StatsInputError
from liftdspy.stats.scores import Seed
from liftdspy.versioning import Version


class SelectionRecord(BaseModel):
    """One optimizer run: its selected candidate's validation and evaluation scores."""

    model_config = ConfigDict(frozen=True)

    arm: str
    seed: Seed = None
    validation_score: float
    evaluation_score: float
    candidate: str | None = None  # the optimizer's id for the selected candidate, if any

    @property
    def optimism(self) -> float:
        return self.validation_score - self.evaluation_score


class RunOptimism(BaseModel):
    seed: Seed
    validation_score: float
    evaluation_score: float
    optimism: float
    candidate: str | None = None


class ArmOptimism(BaseModel):
    version: Version = "1"
    arm: str
    n_runs: int
    mean_validation: float
    mean_evaluation: float
    mean_optimism: float
    sd_optimism: float | None  # sample standard deviation over runs; None with one run
    runs: list[RunOptimism]


def optimism_by_arm(
    selections: Iterable[SelectionRecord | Mapping[str, Any]],
) -> list[ArmOptimism]:
    """Mean optimism per arm, arms in order of first appearance.

    Refuses a non-finite score and two runs of one arm with the same seed, naming them.
    """
    by_arm: dict[str, list[SelectionRecord]] = {}
    for item in selections:
        record = item if isinstance(item, SelectionRecord) else SelectionRecord(**item)
        for name in ("validation_score", "evaluation_score"):
            if not math.isfinite(getattr(record, name)):
                raise StatsInputError(
                    f"arm {record.arm!r}, seed {record.seed!r}: {name} "
                    f"{getattr(record, name)!r} is not a finite number"
                )
        runs = by_arm.setdefault(record.arm, [])
        if any(r.seed == record.seed for r in runs):
            raise StatsInputError(f"arm {record.arm!r}, seed {record.seed!r}: two optimizer runs")
        runs.append(record)
    out = []
    for arm, runs in by_arm.items():
        n = len(runs)
        optimism = [r.optimism for r in runs]
        mean = sum(optimism) / n
        sd = math.sqrt(sum((o - mean) ** 2 for o in optimism) / (n - 1)) if n > 1 else None
        out.append(
            ArmOptimism(
                arm=arm,
                n_runs=n,
                mean_validation=sum(r.validation_score for r in runs) / n,
                mean_evaluation=sum(r.evaluation_score for r in runs) / n,
                mean_optimism=mean,
                sd_optimism=sd,
                runs=[
                    RunOptimism(
                        seed=r.seed,
                        validation_score=r.validation_score,
                        evaluation_score=r.evaluation_score,
                        optimism=r.optimism,
                        candidate=r.candidate,
                    )
                    for r in runs
                ],
            )
        )
    return out
