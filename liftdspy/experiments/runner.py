"""Run one experiment: baseline evaluation, optimization, evaluation of the compiled program,
and everything recorded in MLflow as it finishes.

The MLflow parent run gets the flattened config as params, baseline and optimized scores with
95% intervals (the crossed bootstrap with one seed, `liftdspy.stats.bootstrap`), the metric's
floor on the eval examples with the floor-normalised scores (`liftdspy.metrics.floor`), every
metric component, the paired comparison, cost, and artifacts
(compiled program JSON, exported prompts, per-example results tables). Each candidate program
the optimizer tried becomes a child run. Work is logged as soon as it is done, so an interrupted
run (Ctrl-C) is marked FAILED with what finished kept; re-running replays finished LM calls from
the recorder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict

import liftdspy
from liftdspy import sandbox
from liftdspy.datasets import LabelledTask
from liftdspy.experiments.config import ExperimentConfig
from liftdspy.experiments.evaluation import (
    EvaluationReport,
    ExampleResult,
    evaluate_program,
    with_floor,
)
from liftdspy.experiments.examples import to_examples
from liftdspy.experiments.metric_factory import make_metric
from liftdspy.lm.config import LMConfig, build_lm, recorder_of
from liftdspy.lm.seeds import set_sampling_seed
from liftdspy.optimize import (
    OptimizerPreset,
    build_optimizer,
    compile_program,
    extract_candidates,
    load_preset,
)
from liftdspy.programs.adapters import build_adapter
from liftdspy.stats import PairedComparison, paired_bootstrap
from liftdspy.tracking import configure_tracking, layout
from liftdspy.tracking.run_record import (
    CandidateSummary,
    RunCost,
    RunRecord,
    RunWriter,
    open_run,
)

logger = logging.getLogger(__name__)

PHASES = ("baseline", "compile", "optimized")


class ExperimentOutcome(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    experiment_id: str
    baseline: EvaluationReport
    optimized: EvaluationReport
    comparison: PairedComparison
    cost: dict[str, float]
    notes: list[str]


class Progress:
    """Hooks the CLI uses to draw progress bars; the library default does nothing."""

    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, result: ExampleResult | None = None) -> None:
        pass


class SplitTasks(BaseModel):
    train: list[LabelledTask]
    val: list[LabelledTask]
    eval: list[LabelledTask]


def select_tasks(config: ExperimentConfig) -> SplitTasks:
    """Load the dataset and pick the three splits (file order, truncated to the limits).
    Fails, naming the config key, when a split is empty."""
    ds = config.dataset
    tasks = ds.load_tasks()
    chosen: dict[str, list[LabelledTask]] = {}
    for role, split, limit in (
        ("train", ds.train_split, ds.max_train),
        ("val", ds.val_split, ds.max_val),
        ("eval", ds.eval_split, ds.max_eval),
    ):
        rows = [t for t in tasks if t.split == split][:limit]
        if not rows:
            raise ValueError(f"dataset.{role}_split: no {split!r} rows in {ds.describe_sources()}")
        chosen[role] = rows
    return SplitTasks(**chosen)


def resolved_preset(config: ExperimentConfig) -> OptimizerPreset:
    """The preset with the experiment's overrides merged in (validated again)."""
    preset = load_preset(config.optimizer.preset)
    data = preset.model_dump()
    data["init"].update(config.optimizer.init)
    data["compile"].update(config.optimizer.compile)
    return OptimizerPreset.model_validate(data)


def cost_report(lms: dict[str, dspy.LM | None], wall: dict[str, float]) -> dict[str, float]:
    """LM cost of every LM the run built (`{"task": lm, "reflection": reflection_lm}`), summed
    in `lm_*` and per role in `lm_calls.<role>`, `lm_cache_hits.<role>` and
    `lm_output_tokens.<role>`, plus wall time (the metrics of `RunCost`)."""
    return run_cost(lms, wall).metrics()


def run_cost(lms: dict[str, dspy.LM | None], wall: dict[str, float]) -> RunCost:
    stats = {role: recorder_of(lm).stats() for role, lm in lms.items() if lm is not None}
    return RunCost.from_stats(stats, wall)


class _Setup(BaseModel):
    """What a run works with, built and checked before any LM call (the load phase)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: ExperimentConfig
    splits: SplitTasks
    preset: OptimizerPreset
    metric: Any
    program: Any  # dspy.Module
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    evalset: list[dspy.Example]
    lms: dict[str, Any]  # every LM the run builds, for the cost: task, reflection (or None)
    built: Any  # BuiltOptimizer
    wall: dict[str, float] = {}  # seconds per phase
    floor: Any = None  # the metric's floor on the eval split (MetricFloor), computed once


def _load(config: ExperimentConfig, lm_factory: Callable[[LMConfig], dspy.LM]) -> _Setup:
    splits = select_tasks(config)
    preset = resolved_preset(config)
    metric = make_metric(config.metric)
    program = config.program.build()
    # A repair loop needs the tests as inputs (it runs them and shows the LM the failures).
    with_tests = config.program.repair_rounds > 0
    trainset = to_examples(splits.train, config.program.name, with_tests=with_tests)
    valset = to_examples(splits.val, config.program.name, with_tests=with_tests)
    evalset = to_examples(splits.eval, config.program.name, with_tests=with_tests)

    # The run's seed is every sampled call's seed (liftdspy.lm.seeds); greedy calls ignore it.
    lm = set_sampling_seed(lm_factory(config.lm), config.seed)
    reflection_lm = set_sampling_seed(
        lm_factory(config.reflection_lm) if config.reflection_lm else None, config.seed
    )
    built = build_optimizer(
        preset,
        metric=metric,
        feedback_metric=metric.feedback,
        seed=config.seed,
        num_threads=config.num_threads,
        valset_size=len(valset),
        reflection_lm=reflection_lm,
        lm=lm,
    )
    sandbox.configure(isolation=config.sandbox.isolation)  # "none" logs the UNSAFE warning
    if config.sandbox.isolation != "none" and config.program.name != "nl_to_ir":
        sandbox.require_isolation()  # fail now, not as a zero score per example
    for note in built.notes.notes:
        logger.info("optimizer note: %s", note)
    return _Setup(
        config=config,
        splits=splits,
        preset=preset,
        metric=metric,
        program=program,
        trainset=trainset,
        valset=valset,
        evalset=evalset,
        lms={"task": lm, "reflection": reflection_lm},
        built=built,
    )


def _record(setup: _Setup, tags: dict[str, str] | None) -> RunRecord:
    """The run's record as it starts: config, preset, params and tags."""
    config, preset, notes = setup.config, setup.preset, setup.built.notes.notes
    run_tags = dict(tags or {})
    run_tags.update(
        {
            layout.ROLE_TAG: layout.EXPERIMENT_ROLE,
            layout.EXPERIMENT_TAG: config.name,
            layout.PROGRAM_TAG: config.program.name,
            layout.OPTIMIZER_TAG: preset.optimizer,
            layout.EVAL_IDS_TAG: ",".join(t.id for t in setup.splits.eval)[: layout.MAX_TAG_CHARS],
            layout.ISOLATION_TAG: config.sandbox.isolation,
            layout.BOOTSTRAP_SEED_TAG: str(config.seed),
        }
    )
    if notes:
        run_tags[layout.OPTIMIZER_NOTES_TAG] = " | ".join(notes)[: layout.MAX_TAG_CHARS]
    return RunRecord(
        config=config,
        preset=preset,
        params={
            "data.train_size": str(len(setup.trainset)),
            "data.val_size": str(len(setup.valset)),
            "data.eval_size": str(len(setup.evalset)),
            "version.liftdspy": liftdspy.__version__,
            "version.dspy": dspy.__version__,
        },
        tags=run_tags,
    )


def _evaluate(
    setup: _Setup, writer: RunWriter, progress: Progress, label: str, program: dspy.Module
) -> EvaluationReport:
    """An evaluation phase: the program on the eval split, logged with the cost so far."""
    config = setup.config
    started = time.perf_counter()
    progress.phase(label, len(setup.evalset))
    report = evaluate_program(
        program,
        setup.evalset,
        setup.metric,
        label=label,
        threads=config.num_threads,
        on_result=progress.advance,
        seed=config.seed,
    )
    # The floor on exactly the examples scored (no LM; code answers run in the sandbox).
    report = with_floor(report, setup.metric, setup.trainset, setup.evalset, setup.floor)
    setup.floor = report.floor
    setup.wall[label] = time.perf_counter() - started
    writer.report(report, label)
    writer.cost(run_cost(setup.lms, setup.wall))
    return report


def _optimize(setup: _Setup, writer: RunWriter, progress: Progress) -> dspy.Module:
    """The compile phase: the compiled program and every candidate the optimizer tried."""
    config = setup.config
    started = time.perf_counter()
    progress.phase("compile", None)
    compiled = compile_program(setup.built, setup.program, setup.trainset, setup.valset)
    setup.wall["compile"] = time.perf_counter() - started
    writer.program(compiled)
    candidates = extract_candidates(compiled)
    writer.candidates(
        [CandidateSummary.of(c) for c in candidates],
        preset_name=config.optimizer.preset,
        programs={c.index: c.program for c in candidates if c.program is not None}
        if config.tracking.log_candidate_programs
        else None,
    )
    writer.cost(run_cost(setup.lms, setup.wall))
    return compiled


def _compare(
    baseline: EvaluationReport, optimized: EvaluationReport, seed: int, writer: RunWriter
) -> PairedComparison:
    comparison = paired_bootstrap(baseline.scores(), optimized.scores(), seed=seed)
    writer.comparison(comparison)
    return comparison


def run_experiment(
    config: ExperimentConfig,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
    on_run_started: Callable[[str], None] | None = None,
    lm_factory: Callable[[LMConfig], dspy.LM] | None = None,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> ExperimentOutcome:
    """Evaluate the unoptimized program, compile it, evaluate the compiled program, and record
    everything in MLflow (a `RunRecord`). Everything that can be checked without an LM is
    checked first.

    `lm_factory` builds each LM from its config (default `build_lm`: engine + recorder).
    `parent_run_id` nests the run under another (a study's cells) and `tags` are added to it.
    """
    progress = progress or Progress()
    setup = _load(config, lm_factory or build_lm)
    experiment_id = configure_tracking(config.tracking.uri, config.tracking.experiment)
    _trace(config)
    record = _record(setup, tags)
    with open_run(
        record,
        run_name=f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        parent_run_id=parent_run_id,
        config_path=config_path,
        on_started=on_run_started,
    ) as writer:
        with dspy.context(lm=setup.lms["task"], adapter=build_adapter(config.program.adapter)):
            baseline = _evaluate(setup, writer, progress, "baseline", setup.program)
            compiled = _optimize(setup, writer, progress)
            optimized = _evaluate(setup, writer, progress, "optimized", compiled)
        writer.export(compiled, config)
        comparison = _compare(baseline, optimized, config.seed, writer)
        cost = run_cost(setup.lms, setup.wall)  # already logged after the optimized evaluation
        writer.cost_artifact(cost)
        return ExperimentOutcome(
            run_id=writer.run_id,
            experiment_id=experiment_id,
            baseline=baseline,
            optimized=optimized,
            comparison=comparison,
            cost=cost.metrics(),
            notes=setup.built.notes.notes,
        )


def _trace(config: ExperimentConfig) -> None:
    if config.tracking.traces:
        import mlflow

        # Traces of every module and LM call (the GenAI view of the UI). Compiles and evals are
        # logged by this runner itself, so autolog's own runs for them stay off.
        mlflow.dspy.autolog(log_traces=True, log_compiles=False, log_evals=False, silent=True)


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump() if model is not None else None


def _scaled(comparison: PairedComparison, floor: float) -> dict[str, Any] | None:
    """The gain in floor-normalised units: divided by 1 - floor."""
    if floor >= 1.0:
        return None
    d = comparison.difference
    return {"mean": d.mean / (1 - floor), "low": d.low / (1 - floor), "high": d.high / (1 - floor)}


def outcome_summary(outcome: ExperimentOutcome) -> dict[str, Any]:
    floor = outcome.optimized.floor
    return json.loads(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "baseline": outcome.baseline.score.model_dump(),
                "optimized": outcome.optimized.score.model_dump(),
                "gain": outcome.comparison.difference.model_dump(),
                "p_value": outcome.comparison.p_value,
                "floor": floor.floor if floor else None,
                "floor_answer": floor.winner if floor else None,
                "baseline_normalised": _dump(outcome.baseline.score_normalised),
                "optimized_normalised": _dump(outcome.optimized.score_normalised),
                "gain_normalised": _scaled(outcome.comparison, floor.floor) if floor else None,
                "cost": outcome.cost,
            }
        )
    )
