"""Plan a study to a precision: how many eval tasks × seeds reach a target minimum detectable
effect (MDE), from a pilot study's variance components and measured cost per LM call.

(`liftdspy.studies.plan` is the other plan: the cells of a given study and their LM calls.)

For each arm compared with the baseline, the pilot's paired difference matrix (arm − baseline,
seeds × examples) gives variance components (seed, example, residual; `stats.hierarchical`).
A design of S seeds × E tasks reaches the target when, for every arm, ::

    MDE(S, E) = (t_{df, 1 - α'/2} + t_{df, power}) * SE(S, E)
    SE(S, E) = sqrt(var_seed / S + var_example / E + var_res / (S E))

is at most the target, with α' = α / k for k arms against the baseline: the first step of Holm's
procedure, the strictest, so each arm's test has that power at the family's level. The MDE is
not the formula above with the true components' df (which overstates the power at a Holm α with
few seeds) but the study's own test simulated from the components' sampling distribution
(`stats.design_power.simulated_mde`). The cost of a design is counted from the pilot's cells: an
arm's compile calls per cell (its measured requests minus its evaluation), plus one evaluation
of E tasks per cell, times its cells (S for seeded arms, 1 for zero-shot), at the pilot's
measured LM seconds per call.
"""

from __future__ import annotations

import logging
import math

from pydantic import BaseModel, Field

from liftdspy.stats import VarianceComponents
from liftdspy.stats.design_power import simulated_mde
from liftdspy.stats.power import DEFAULT_ALPHA, DEFAULT_POWER
from liftdspy.studies.config import StudyConfig
from liftdspy.studies.plan import calls_per_example
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 100_000  # the search's ceiling on eval tasks (beyond any dataset here)


class ArmCostModel(BaseModel):
    """What one cell of an arm costs, measured in the pilot."""

    arm: str
    seeded: bool
    compile_calls: float = Field(description="requests per cell beyond its evaluation")
    measured: bool = True  # False: the pilot had no cell of this arm (its compile counted 0)


class PilotMeasurements(BaseModel):
    """What a plan needs from a pilot: each compared arm's variance components and the cost."""

    version: Version = "1"
    pilot: str
    n_seeds: int
    n_examples: int
    components: dict[str, VarianceComponents]  # arm -> of its paired difference vs baseline
    costs: dict[str, ArmCostModel]
    seconds_per_call: float | None  # LM seconds per request (live and replayed alike)


class DesignOption(BaseModel):
    n_seeds: int
    n_examples: int | None  # None: no number of tasks reaches the target with these seeds
    mde: float | None  # the largest arm's MDE at this design
    limiting_arm: str | None
    lm_calls: int | None
    lm_hours: float | None
    within_pool: bool


class PowerPlan(BaseModel):
    version: Version = "1"
    study: str
    pilot: str
    target_mde: float
    power: float
    alpha: float
    comparisons: int
    alpha_per_test: float  # alpha / comparisons: Holm's first step
    eval_pool: int | None  # tasks in the eval split
    options: list[DesignOption]
    recommended: DesignOption | None
    seconds_per_call: float | None
    notes: list[str] = Field(default_factory=list)


def arm_mde(
    components: VarianceComponents, n_seeds: int, n_examples: int, alpha: float, power: float
) -> float | None:
    """The MDE of one arm's comparison at S × E (None: the pilot showed no variance)."""
    return simulated_mde(components, n_seeds, n_examples, alpha, power)


def design_mde(
    measurements: PilotMeasurements, n_seeds: int, n_examples: int, alpha: float, power: float
) -> tuple[float | None, str | None]:
    """The largest MDE over the compared arms at S × E, and which arm it is."""
    worst: tuple[float | None, str | None] = (None, None)
    for arm, components in measurements.components.items():
        mde = arm_mde(components, n_seeds, n_examples, alpha, power)
        if mde is not None and (worst[0] is None or mde > worst[0]):
            worst = (mde, arm)
    return worst


def design_calls(
    measurements: PilotMeasurements, n_seeds: int, n_examples: int, per_example: int
) -> int:
    """LM requests of a study of S seeds × E tasks with the pilot's per-cell compile cost."""
    total = 0.0
    for cost in measurements.costs.values():
        cells = n_seeds if cost.seeded else 1
        total += cells * (cost.compile_calls + n_examples * per_example)
    return math.ceil(total)


def _fewest_examples(
    measurements: PilotMeasurements, n_seeds: int, target: float, alpha: float, power: float
) -> int | None:
    """The smallest E with every arm's MDE ≤ target (binary search: MDE falls as E grows)."""

    def reaches(e: int) -> bool:
        mde, _ = design_mde(measurements, n_seeds, e, alpha, power)
        return mde is not None and mde <= target

    if not reaches(MAX_EXAMPLES):
        return None
    low, high = 2, MAX_EXAMPLES
    if reaches(low):
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid
    return high


def plan_power(
    study: StudyConfig,
    measurements: PilotMeasurements,
    target_mde: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    max_seeds: int = 10,
    min_seeds: int = 2,
    eval_pool: int | None = None,
) -> PowerPlan:
    """The designs (S = min_seeds..max_seeds seeds, each with its fewest tasks) that reach
    `target_mde` for every arm at `power`, Holm over the arms, and the cheapest of them."""
    if not 0 < target_mde < 1:
        raise ValueError(f"--mde must lie in (0, 1), got {target_mde!r}")
    compared = [a.name for a in study.arms if a.name != study.baseline]
    comparisons = max(1, len(compared))
    alpha_per_test = alpha / comparisons
    notes = []
    missing = [a for a in compared if a not in measurements.components]
    if missing:
        notes.append(
            f"no pilot comparison for {', '.join(missing)} (not in the pilot, or no variance): "
            "the plan covers the other arms only"
        )
    if not measurements.components:
        raise ValueError(
            f"pilot {measurements.pilot!r} has no arm compared with {study.baseline!r} whose "
            "paired differences vary: it cannot size a study"
        )
    if any(c.seed is None for c in measurements.components.values()):
        notes.append(
            "the pilot had one seed: seed-to-seed variance was not measured and counts as 0, "
            "so the planned size is a lower bound"
        )
    unmeasured = [c.arm for c in measurements.costs.values() if not c.measured]
    if unmeasured:
        notes.append(f"no pilot cost for {', '.join(unmeasured)}: its compile calls count 0")
    per_example = calls_per_example(study)
    lms = len(study.named_lms())
    options = []
    for seeds in range(min_seeds, max_seeds + 1):
        examples = _fewest_examples(measurements, seeds, target_mde, alpha_per_test, power)
        if examples is None:
            options.append(
                DesignOption(
                    n_seeds=seeds,
                    n_examples=None,
                    mde=None,
                    limiting_arm=None,
                    lm_calls=None,
                    lm_hours=None,
                    within_pool=False,
                )
            )
            continue
        mde, arm = design_mde(measurements, seeds, examples, alpha_per_test, power)
        calls = lms * design_calls(measurements, seeds, examples, per_example)
        hours = (
            calls * measurements.seconds_per_call / 3600
            if measurements.seconds_per_call is not None
            else None
        )
        options.append(
            DesignOption(
                n_seeds=seeds,
                n_examples=examples,
                mde=mde,
                limiting_arm=arm,
                lm_calls=calls,
                lm_hours=None if hours is None else round(hours, 3),
                within_pool=eval_pool is None or examples <= eval_pool,
            )
        )
    reachable = [o for o in options if o.lm_calls is not None]
    fitting = [o for o in reachable if o.within_pool] or reachable
    recommended = min(fitting, key=lambda o: (o.lm_calls, o.n_seeds)) if fitting else None
    if recommended is not None and not recommended.within_pool:
        notes.append(
            f"every design needs more eval tasks than the {eval_pool} of the eval split: "
            "import more tasks (liftdspy datasets import) or accept a larger MDE"
        )
    return PowerPlan(
        study=study.name,
        pilot=measurements.pilot,
        target_mde=target_mde,
        power=power,
        alpha=alpha,
        comparisons=comparisons,
        alpha_per_test=alpha_per_test,
        eval_pool=eval_pool,
        options=options,
        recommended=recommended,
        seconds_per_call=measurements.seconds_per_call,
        notes=notes,
    )


def eval_pool(study: StudyConfig) -> int:
    """How many tasks the study's eval split holds (the ceiling on its eval size)."""
    tasks = study.dataset.load_tasks()
    return sum(1 for t in tasks if t.split == study.dataset.eval_split)
