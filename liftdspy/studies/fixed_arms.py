"""The fixed arms: `zero-shot` (the program as built) and `random-demos` (k labelled train
examples drawn with the cell's seed, the baseline any optimizer must beat). The third,
`constant` (the metric's floor answer, no program, no LM), is run by
`liftdspy.studies.cell_runner` from `liftdspy.metrics.floor`.

DSPy's `LabeledFewShot` always samples with `random.Random(0)`, so its demos never change with the
seed; here the draw uses the seed, so seed-to-seed spread of the baseline is measured too.
"""

from __future__ import annotations

import random

import dspy

from liftdspy.datasets import LabelledTask
from liftdspy.studies.config import ArmConfig, StudyConfig


def draw_demo_tasks(
    train: list[LabelledTask], k: int, seed: int, predictors: int
) -> list[list[str]]:
    """Ids of the demos of each predictor, drawn in predictor order from one seeded generator."""
    rng = random.Random(seed)
    return [[t.id for t in rng.sample(train, min(k, len(train)))] for _ in range(predictors)]


def build_study_program(study: StudyConfig, arm: ArmConfig | None = None) -> dspy.Module:
    """The study's program, with `arm`'s program overrides when given."""
    return (study.arm_program(arm) if arm is not None else study.program).build()


def fixed_demo_ids(
    study: StudyConfig, arm: ArmConfig, seed: int | None, train: list[LabelledTask]
) -> list[list[str]]:
    """The demo ids per predictor a fixed arm's cell uses (none for zero-shot)."""
    if arm.fixed != "random-demos":
        return []
    predictors = len(build_study_program(study, arm).predictors())
    return draw_demo_tasks(train, arm.k, seed if seed is not None else 0, predictors)


def fixed_program(
    study: StudyConfig,
    arm: ArmConfig,
    seed: int | None,
    train: list[LabelledTask],
    trainset: list[dspy.Example],
) -> dspy.Module:
    """The fixed arm's program: the study program, with the drawn demos for random-demos."""
    program = build_study_program(study, arm)
    by_id = {str(example.id): example for example in trainset}
    for predictor, ids in zip(
        program.predictors(), fixed_demo_ids(study, arm, seed, train), strict=False
    ):
        predictor.demos = [by_id[i] for i in ids]
    return program
