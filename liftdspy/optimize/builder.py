"""Turn a preset into a ready DSPy optimizer and its compile arguments.

DSPy quirks handled here, each visibly (logged and reported in `BuildNotes`), never silently:
- MIPROv2 needs `optuna`: checked up front with an install hint.
- MIPROv2's `compile(seed=0)` falls back to its default seed (`seed or self.seed`): the seed is
  passed to the constructor instead, where 0 is kept.
- MIPROv2's minibatch (default 35) cannot exceed the validation set: clamped to its size.
- BootstrapFewShot(-WithRandomSearch) accept any truthy metric value as success, so half-wrong
  outputs become demos: a `metric_threshold` is set unless the preset gives one.
- GEPA needs a feedback metric and a reflection LM.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import dspy
from pydantic import BaseModel, Field

from liftdspy.optimize.presets import OptimizerPreset, optimizer_class

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
    notes = BuildNotes()
    init = dict(preset.init)
    compile_kwargs = dict(preset.compile)
    name = preset.optimizer
    cls = optimizer_class(name)
    uses_valset = name in {"MIPROv2", "BootstrapFewShotWithRandomSearch", "GEPA"}

    if name == "MIPROv2":
        if importlib.util.find_spec("optuna") is None:
            raise RuntimeError("MIPROv2 needs optuna: pip install optuna")
        init.setdefault("seed", seed)
        if "seed" in compile_kwargs:
            compile_seed = compile_kwargs.pop("seed")
            init["seed"] = compile_seed
            notes.add(
                f"MIPROv2: compile seed {compile_seed} moved to the constructor "
                "(compile() treats seed=0 as unset)"
            )
        init.setdefault("num_threads", num_threads)
        init.update(prompt_model=lm, task_model=lm)
        minibatch = compile_kwargs.get("minibatch", True)
        size = compile_kwargs.get("minibatch_size", 35)
        if minibatch and valset_size and size > valset_size:
            compile_kwargs["minibatch_size"] = valset_size
            notes.add(
                f"MIPROv2: minibatch_size {size} > validation set size {valset_size}; "
                f"clamped to {valset_size}"
            )
    elif name in {"BootstrapFewShot", "BootstrapFewShotWithRandomSearch"}:
        if "metric_threshold" not in init:
            init["metric_threshold"] = DEFAULT_METRIC_THRESHOLD
            notes.add(
                f"{name}: metric_threshold set to {DEFAULT_METRIC_THRESHOLD} "
                "(DSPy accepts any truthy score as a successful demo)"
            )
        if name == "BootstrapFewShotWithRandomSearch":
            init.setdefault("num_threads", num_threads)
    elif name == "COPRO":
        init["prompt_model"] = lm
        compile_kwargs.setdefault("eval_kwargs", {"num_threads": num_threads})
    elif name == "GEPA":
        if feedback_metric is None:
            raise ValueError("GEPA needs a feedback metric (score + text feedback)")
        if reflection_lm is None:
            raise ValueError("GEPA needs a reflection LM: set `reflection_lm` in the experiment")
        init.setdefault("seed", seed)
        init.setdefault("num_threads", num_threads)
        optimizer = cls(metric=feedback_metric, reflection_lm=reflection_lm, **init)
        return BuiltOptimizer(
            optimizer=optimizer, compile_kwargs=compile_kwargs, uses_valset=True, notes=notes
        )
    elif name == "SIMBA":
        init.setdefault("num_threads", num_threads)
        init["prompt_model"] = lm
    elif name == "LabeledFewShot":
        # Random labelled demos: no metric. The honest baseline for demo-selecting optimizers.
        return BuiltOptimizer(
            optimizer=cls(**init), compile_kwargs=compile_kwargs, uses_valset=False, notes=notes
        )

    optimizer = cls(metric=metric, **init)
    return BuiltOptimizer(
        optimizer=optimizer, compile_kwargs=compile_kwargs, uses_valset=uses_valset, notes=notes
    )


def compile_program(
    built: BuiltOptimizer,
    program: dspy.Module,
    trainset: list[dspy.Example],
    valset: list[dspy.Example],
) -> dspy.Module:
    kwargs = dict(built.compile_kwargs)
    if built.uses_valset and valset:
        kwargs["valset"] = valset
    return built.optimizer.compile(program, trainset=trainset, **kwargs)
