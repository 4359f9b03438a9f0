"""Turn a preset into a ready DSPy optimizer and its compile arguments.

DSPy quirks handled here, each visibly (logged and reported in `BuildNotes`), never silently:
- MIPROv2 needs `optuna`: checked up front with an install hint.
- MIPROv2's `compile(seed=0)` falls back to its default seed (`seed or self.seed`): the seed is
  passed to the constructor instead, where 0 is kept.
- MIPROv2's minibatch (default 35) cannot exceed the validation set: clamped to its size.
- BootstrapFewShot(-WithRandomSearch) accept any truthy metric value as success, so half-wrong
  outputs become demos: a `metric_threshold` is set unless the preset gives one.
- GEPA needs a feedback metric and a reflection LM.
- MIPROv2's dataset summariser reads whole examples (over the embedded model's context on
  liftdspy's rows) and DSPy proposes without the summary when it fails: it gets a view of the
  trainset with capped fields, and a failed summary is an error (`data_summary.py`).
- Seeds: LabeledFewShot and BootstrapFewShot(-WithRandomSearch) draw demos with a fixed
  `random.Random(0)` (and random search numbers its candidates from a fixed range): the trainset
  is handed over in an order permuted with the run's seed, so the draws vary with it. SIMBA's
  `compile(seed=0)` default is replaced by the run's seed; MIPROv2 and GEPA get it in the
  constructor. Sampled LM calls get the seed through the LM (`liftdspy.lm.seeds`).
"""

from __future__ import annotations

import importlib.util
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
from pydantic import BaseModel, Field

from liftdspy.optimize.data_summary import DataSummaryWatch, summary_view
from liftdspy.optimize.presets import OptimizerPreset, PresetError, optimizer_class

logger = logging.getLogger(__name__)

DEFAULT_METRIC_THRESHOLD = 0.8


class BuildNotes(BaseModel):
    """What the builder changed or decided, to be logged with the run."""

    notes: list[str] = Field(default_factory=list)

    def add(self, note: str) -> None:
        logger.warning(note)
        self.notes.append(note)


class BuiltOptimizer(BaseModel):
    model_config = {"arbitrary_types_allowed": True}

    optimizer: Any
    compile_kwargs: dict[str, Any]
    uses_valset: bool
    notes: BuildNotes
    trainset_seed: int | None = None  # permute the trainset with it (optimizers seeded with 0)
    watch_data_summary: bool = False  # MIPROv2 with its data-aware proposer


@dataclass
class BuildRequest:
    """What every optimizer builder gets: the preset's arguments (copies, to adjust) and the run's
    metric, seed, threads, validation size and LMs."""

    name: str
    init: dict[str, Any]
    compile_kwargs: dict[str, Any]
    metric: Any
    feedback_metric: Any
    seed: int
    num_threads: int
    valset_size: int
    reflection_lm: dspy.LM | None
    lm: dspy.LM | None
    notes: BuildNotes = field(default_factory=BuildNotes)

    def built(
        self, optimizer: Any, *, uses_valset: bool, permute_trainset: bool = False
    ) -> BuiltOptimizer:
        return BuiltOptimizer(
            optimizer=optimizer,
            compile_kwargs=self.compile_kwargs,
            uses_valset=uses_valset,
            notes=self.notes,
            trainset_seed=self.seed if permute_trainset else None,
        )


def _mipro(req: BuildRequest, cls: type) -> BuiltOptimizer:
    if importlib.util.find_spec("optuna") is None:
        raise PresetError("MIPROv2 needs optuna: pip install optuna")
    req.init.setdefault("seed", req.seed)
    if "seed" in req.compile_kwargs:
        compile_seed = req.compile_kwargs.pop("seed")
        req.init["seed"] = compile_seed
        req.notes.add(
            f"MIPROv2: compile seed {compile_seed} moved to the constructor "
            "(compile() treats seed=0 as unset)"
        )
    req.init.setdefault("num_threads", req.num_threads)
    req.init.update(prompt_model=req.lm, task_model=req.lm)
    minibatch = req.compile_kwargs.get("minibatch", True)
    size = req.compile_kwargs.get("minibatch_size", 35)
    if minibatch and req.valset_size and size > req.valset_size:
        req.compile_kwargs["minibatch_size"] = req.valset_size
        req.notes.add(
            f"MIPROv2: minibatch_size {size} > validation set size {req.valset_size}; "
            f"clamped to {req.valset_size}"
        )
    built = req.built(cls(metric=req.metric, **req.init), uses_valset=True)
    built.watch_data_summary = bool(req.compile_kwargs.get("data_aware_proposer", True))
    return built


def _bootstrap(req: BuildRequest, cls: type) -> BuiltOptimizer:
    if "metric_threshold" not in req.init:
        req.init["metric_threshold"] = DEFAULT_METRIC_THRESHOLD
        req.notes.add(
            f"{req.name}: metric_threshold set to {DEFAULT_METRIC_THRESHOLD} "
            "(DSPy accepts any truthy score as a successful demo)"
        )
    random_search = req.name == "BootstrapFewShotWithRandomSearch"
    if random_search:
        req.init.setdefault("num_threads", req.num_threads)
    return req.built(
        cls(metric=req.metric, **req.init), uses_valset=random_search, permute_trainset=True
    )


def _copro(req: BuildRequest, cls: type) -> BuiltOptimizer:
    req.init["prompt_model"] = req.lm
    req.compile_kwargs.setdefault("eval_kwargs", {"num_threads": req.num_threads})
    return req.built(cls(metric=req.metric, **req.init), uses_valset=False)


def _gepa(req: BuildRequest, cls: type) -> BuiltOptimizer:
    if req.feedback_metric is None:
        raise PresetError("GEPA needs a feedback metric (score + text feedback)")
    if req.reflection_lm is None:
        raise PresetError("GEPA needs a reflection LM: set `reflection_lm` in the experiment")
    req.init.setdefault("seed", req.seed)
    req.init.setdefault("num_threads", req.num_threads)
    optimizer = cls(metric=req.feedback_metric, reflection_lm=req.reflection_lm, **req.init)
    return req.built(optimizer, uses_valset=True)


def _simba(req: BuildRequest, cls: type) -> BuiltOptimizer:
    req.init.setdefault("num_threads", req.num_threads)
    req.init["prompt_model"] = req.lm
    req.compile_kwargs.setdefault("seed", req.seed)
    return req.built(cls(metric=req.metric, **req.init), uses_valset=False)


def _labeled_fewshot(req: BuildRequest, cls: type) -> BuiltOptimizer:
    # Random labelled demos: no metric. The honest baseline for demo-selecting optimizers.
    return req.built(cls(**req.init), uses_valset=False, permute_trainset=True)


# One small builder per DSPy optimizer a preset may name.
BUILDERS: dict[str, Callable[[BuildRequest, type], BuiltOptimizer]] = {
    "MIPROv2": _mipro,
    "BootstrapFewShot": _bootstrap,
    "BootstrapFewShotWithRandomSearch": _bootstrap,
    "COPRO": _copro,
    "GEPA": _gepa,
    "SIMBA": _simba,
    "LabeledFewShot": _labeled_fewshot,
}


def build_optimizer(
    preset: OptimizerPreset,
    *,
    metric,
    feedback_metric=None,
    seed: int,
    num_threads: int = 1,
    valset_size: int = 0,
    reflection_lm: dspy.LM | None = None,
    lm: dspy.LM | None = None,
) -> BuiltOptimizer:
    """A configured optimizer for `preset`. `metric` is `(example, prediction, trace) -> float`;
    `feedback_metric` is GEPA's form (score + feedback). `lm` is the task LM, also used as the
    prompt model of optimizers that propose instructions (MIPROv2, COPRO, SIMBA), since liftdspy
    never configures a global LM."""
    name = preset.optimizer
    cls = optimizer_class(name)
    builder = BUILDERS.get(name)
    if builder is None:
        known = ", ".join(sorted(BUILDERS))
        raise PresetError(f"optimizer {name!r} has no builder: expected one of {known}")
    request = BuildRequest(
        name=name,
        init=dict(preset.init),
        compile_kwargs=dict(preset.compile),
        metric=metric,
        feedback_metric=feedback_metric,
        seed=seed,
        num_threads=num_threads,
        valset_size=valset_size,
        reflection_lm=reflection_lm,
        lm=lm,
    )
    return builder(request, cls)


def compile_program(
    built: BuiltOptimizer,
    program: dspy.Module,
    trainset: list[dspy.Example],
    valset: list[dspy.Example],
) -> dspy.Module:
    kwargs = dict(built.compile_kwargs)
    if built.trainset_seed is not None:
        trainset = seeded_order(trainset, built.trainset_seed)
    if built.uses_valset and valset:
        kwargs["valset"] = valset
    if not built.watch_data_summary:
        return built.optimizer.compile(program, trainset=trainset, **kwargs)
    watch = DataSummaryWatch()
    callbacks = [*(dspy.settings.get("callbacks") or []), watch]
    with dspy.context(callbacks=callbacks):
        compiled = built.optimizer.compile(program, trainset=summary_view(trainset), **kwargs)
    watch.check()
    return compiled


def seeded_order(examples: list[dspy.Example], seed: int) -> list[dspy.Example]:
    """`examples` permuted with `seed` (a new list; the same seed gives the same order)."""
    ordered = list(examples)
    random.Random(seed).shuffle(ordered)
    return ordered
