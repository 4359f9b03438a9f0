"""The plan printed before any LM call: the cells, and per arm the estimated LM calls and output
tokens, from the optimizer's parameters and the split sizes.

Estimates are upper-bound-ish counts of requests (a recorded call replayed later costs nothing);
output tokens are bounded by calls x `lm.max_tokens`. Optimizers whose cost is not a function of
their parameters (GEPA, SIMBA) are marked as not estimated.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from liftdspy.optimize import OptimizerPreset
from liftdspy.studies.cells import Cell
from liftdspy.studies.config import ArmConfig, StudyConfig
from liftdspy.versioning import Version


class ArmPlan(BaseModel):
    arm: str
    kind: str
    cells: int
    calls_per_cell: int | None
    calls: int | None
    output_tokens_max: int | None
    detail: str


class StudyPlan(BaseModel):
    version: Version = "1"
    study: str
    cells: list[str]
    skipped: list[str] = []
    split_sizes: dict[str, int]
    arms: list[ArmPlan]

    @property
    def calls(self) -> int | None:
        values = [a.calls for a in self.arms]
        return None if any(v is None for v in values) else sum(values)  # type: ignore[misc]

    @property
    def output_tokens_max(self) -> int | None:
        values = [a.output_tokens_max for a in self.arms]
        return None if any(v is None for v in values) else sum(values)  # type: ignore[misc]


def calls_per_example(study: StudyConfig) -> int:
    """LM calls one evaluated example costs at most (the pipeline: IR, code, repairs)."""
    if study.program.name == "pipeline":
        return 2 + study.program.repair_rounds
    return 1


def compile_calls(preset: OptimizerPreset, train: int, val: int, predictors: int) -> int | None:
    """Estimated requests of one compile, by optimizer (None: not a function of the params)."""
    init: dict[str, Any] = preset.init
    comp: dict[str, Any] = preset.compile
    name = preset.optimizer
    if name == "LabeledFewShot":
        return 0
    if name == "BootstrapFewShot":
        return train * int(init.get("max_rounds", 1))
    if name == "BootstrapFewShotWithRandomSearch":
        return int(init.get("num_candidate_programs", 16)) * (train + val)
    if name == "MIPROv2":
        candidates = int(init.get("num_candidates") or 10)
        bootstrap = candidates * train if int(init.get("max_bootstrapped_demos", 4)) > 0 else 0
        proposals = math.ceil(train / 10) + 2 + predictors + candidates * predictors
        trials = int(comp.get("num_trials") or 10)
        if comp.get("minibatch", True):
            size = min(int(comp.get("minibatch_size", 35)), val)
            steps = int(comp.get("minibatch_full_eval_steps", 10))
            evals = trials * size + (trials // steps + 1) * val
        else:
            evals = (trials + 1) * val
        return bootstrap + proposals + evals
    if name == "COPRO":
        breadth = int(init.get("breadth", 10))
        depth = int(init.get("depth", 3))
        return depth * predictors * breadth + depth * breadth * train
    return None


def arm_plan(
    study: StudyConfig,
    arm: ArmConfig,
    preset: OptimizerPreset | None,
    cells: int,
    sizes: dict[str, int],
    predictors: int,
) -> ArmPlan:
    per_example = calls_per_example(study)
    evaluation = sizes["eval"] * per_example
    max_tokens = max(lm.max_tokens for lm in study.named_lms().values())
    if arm.fixed == "constant":
        per_cell: int | None = 0
        detail = "the metric's floor: a constant answer, no LM call"
    elif preset is None:
        per_cell = evaluation
        detail = f"{sizes['eval']} eval examples x {per_example}"
    else:
        compiled = compile_calls(preset, sizes["train"], sizes["val"], predictors)
        per_cell = None if compiled is None else 2 * evaluation + compiled
        detail = (
            f"{preset.optimizer}: compile ~{compiled if compiled is not None else '?'}, "
            f"baseline + optimized eval {2 * evaluation} (baseline replays zero-shot's calls)"
        )
    total = None if per_cell is None else per_cell * cells
    return ArmPlan(
        arm=arm.name,
        kind=arm.kind,
        cells=cells,
        calls_per_cell=per_cell,
        calls=total,
        output_tokens_max=None if total is None else total * max_tokens,
        detail=detail,
    )


def make_plan(
    study: StudyConfig,
    cells: list[Cell],
    presets: dict[str, OptimizerPreset],
    sizes: dict[str, int],
    predictors: int,
    finished: set[str] | None = None,
) -> StudyPlan:
    """The plan of the cells still to run (`finished` cell ids are listed as skipped)."""
    finished = finished or set()
    todo = [c for c in cells if c.id not in finished]
    arms = []
    for arm in study.arms:
        count = sum(1 for c in todo if c.arm == arm.name)
        arms.append(arm_plan(study, arm, presets.get(arm.name), count, sizes, predictors))
    return StudyPlan(
        study=study.name,
        cells=[c.id for c in todo],
        skipped=[c.id for c in cells if c.id in finished],
        split_sizes=sizes,
        arms=arms,
    )
