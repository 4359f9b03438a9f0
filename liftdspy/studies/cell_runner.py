"""Run one study cell: an ordinary experiment (optimizer arms, `run_experiment`) or a fixed
program's evaluation (zero-shot, random-demos; constant: the metric's floor answer, no LM), as an
MLflow run nested under the study run. Every cell records the metric's floor on its eval examples.

`run_cell` is what every executor calls (in-process, in a worker process, as a Ray task). It
takes and returns plain pydantic data, so it pickles; the LM engine is built inside the worker
(the embedded model is loaded once per process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import dspy
from pydantic import BaseModel, ConfigDict

import liftdspy
from liftdspy.experiments.config import ExperimentConfig
from liftdspy.experiments.evaluation import (
    EvaluationReport,
    constant_report,
    evaluate_program,
    with_floor,
)
from liftdspy.experiments.examples import to_examples
from liftdspy.experiments.metric_factory import make_metric
from liftdspy.experiments.runner import Progress, run_experiment, select_tasks
from liftdspy.lm.config import LMConfig, build_engine, build_lm, recorder_of
from liftdspy.lm.recorder import IdentifiedEngine, RecorderStats
from liftdspy.lm.seeds import set_sampling_seed
from liftdspy.metrics.floor import metric_floor
from liftdspy.programs.adapters import build_adapter
from liftdspy.studies.budget import Allowance, BudgetedEngine, BudgetExhaustedError
from liftdspy.studies.cells import Cell, experiment_config
from liftdspy.studies.config import StudyConfig
from liftdspy.studies.fixed_arms import fixed_demo_ids, fixed_program
from liftdspy.studies.results import CELL_ARTIFACT, CellCost, CellResult
from liftdspy.tracking import configure_tracking, layout
from liftdspy.tracking.run_record import RunRecord, open_run, read_run

logger = logging.getLogger(__name__)

EngineFactory = Callable[[LMConfig], IdentifiedEngine]

STUDY_TAG = "liftdspy.study"
CELL_TAG = "liftdspy.study.cell"
CELL_HASH_TAG = "liftdspy.study.cell_hash"
STATUS_TAG = "liftdspy.study.status"
DEMOS_ARTIFACT = "study/demos.json"  # a fixed arm's demos (example ids per predictor)
FLOOR_ARTIFACT = "study/floor.json"  # the constant arm's floor: every candidate answer


class CellTask(BaseModel):
    """Everything a worker needs to run one cell."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    study: StudyConfig
    cell: Cell
    cell_hash: str
    root: Path
    parent_run_id: str
    allowance: Allowance = Allowance()


def cell_tags(task: CellTask) -> dict[str, str]:
    cell = task.cell
    return {
        STUDY_TAG: task.study.name,
        CELL_TAG: cell.id,
        CELL_HASH_TAG: task.cell_hash,
        "liftdspy.study.arm": cell.arm,
        "liftdspy.study.seed": "any" if cell.seed is None else str(cell.seed),
        "liftdspy.study.lm": cell.lm,
        "liftdspy.study.arm_kind": task.study.arm(cell.arm).kind,
    }


class _CostProbe(Progress):
    """Snapshots the recorder's counters when the compile phase starts (after the baseline)."""

    def __init__(self, lms: list[dspy.LM]):
        self.lms = lms
        self.at_compile: RecorderStats | None = None

    def phase(self, name: str, total: int | None) -> None:
        if name == "compile" and self.lms:
            self.at_compile = recorder_of(self.lms[0]).stats()


def _cost(now: RecorderStats, before: RecorderStats | None, wall: float) -> CellCost:
    return CellCost.from_stats(now.since(before), wall)


def _selected_val_score(tracking_uri: str, run_id: str) -> tuple[float | None, int]:
    """The best full-evaluation candidate score among the run's candidates (the one MIPROv2 /
    COPRO / random search select), and the number of candidates."""
    candidates = read_run(run_id, tracking_uri).candidates
    scores = [c.score for c in candidates if c.score is not None and c.full_eval]
    return (max(scores) if scores else None), len(candidates)


def _finish(tracking_uri: str, result: CellResult) -> CellResult:
    from mlflow.tracking import MlflowClient

    if result.run_id:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.log_text(result.run_id, result.model_dump_json(indent=2), CELL_ARTIFACT)
        client.set_tag(result.run_id, STATUS_TAG, result.status)
    return result


def run_cell(task: CellTask, engine_factory: EngineFactory | None = None) -> CellResult:
    """Run the cell and record it; a failure is returned as a result (status and error)."""
    engine_factory = engine_factory or build_engine
    config = experiment_config(task.study, task.cell, task.root)
    spent = {"lm_calls": 0, "output_tokens": 0}
    lms: list[dspy.LM] = []

    def lm_factory(lm_config: LMConfig) -> dspy.LM:
        engine = BudgetedEngine(engine_factory(lm_config), task.allowance, spent)
        lm = build_lm(lm_config, engine=engine)
        lms.append(lm)
        return lm

    run_ids: list[str] = []
    started = time.perf_counter()
    result = CellResult(cell=task.cell, cell_hash=task.cell_hash, status="failed")
    arm = task.study.arm(task.cell.arm)
    try:
        if arm.fixed is None:
            probe = _CostProbe(lms)
            outcome = run_experiment(
                config,
                progress=probe,
                on_run_started=run_ids.append,
                lm_factory=lm_factory,
                parent_run_id=task.parent_run_id,
                tags=cell_tags(task),
            )
            selected, candidates = _selected_val_score(config.tracking.uri, outcome.run_id)
            report = outcome.optimized
            result.selected_val_score = selected
            result.candidates = candidates
            cost = _cost(
                recorder_of(lms[0]).stats(), probe.at_compile, time.perf_counter() - started
            )
        else:
            report, demo_ids = _run_fixed(task, config, lm_factory, run_ids)
            result.demo_ids = demo_ids
            wall = time.perf_counter() - started
            # The constant arm builds no LM: its cost is its wall time alone.
            cost = (
                _cost(recorder_of(lms[0]).stats(), None, wall)
                if lms
                else CellCost(wall_seconds=round(wall, 3))
            )
        result.status = "finished"
        result.eval_ids = [r.id for r in report.results]
        result.scores = report.scores()
        result.components = report.components
        result.floor = report.floor
        result.cost = cost
    except BudgetExhaustedError as exc:
        result.status, result.error = "budget", str(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failed cell is reported; the study goes on with the others
        logger.exception("cell %s failed", task.cell.id)
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        import mlflow

        if mlflow.active_run() is not None:  # a fixed cell stopped mid-way
            mlflow.end_run("FAILED")
    if lms:
        result.lm_identity = recorder_of(lms[0]).identity()
    if lms and result.status != "finished":
        result.cost = _cost(recorder_of(lms[0]).stats(), None, time.perf_counter() - started)
    result.run_id = run_ids[0] if run_ids else None
    return _finish(config.tracking.uri or "", result)


def _run_fixed(
    task: CellTask,
    config: ExperimentConfig,
    lm_factory: Callable[[LMConfig], dspy.LM],
    run_ids: list[str],
) -> tuple[EvaluationReport, list[list[str]]]:
    """A fixed arm: build its program, evaluate it on the eval split, log it as an experiment
    run's record (params, scores, per-example table, program.json and the export)."""
    study, cell = task.study, task.cell
    arm = study.arm(cell.arm)
    splits = select_tasks(config)
    trainset = to_examples(splits.train, config.program.name)
    evalset = to_examples(splits.eval, config.program.name)
    metric = make_metric(config.metric)
    if arm.fixed == "constant":
        return _run_constant(task, config, run_ids, splits, trainset, evalset, metric), []
    program = fixed_program(study, arm, cell.seed, splits.train, trainset)
    demo_ids = fixed_demo_ids(study, arm, cell.seed, splits.train)
    lm = set_sampling_seed(lm_factory(config.lm), config.seed)
    record = _fixed_record(task, config, splits, len(evalset))
    with open_run(
        record,
        run_name=f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        parent_run_id=task.parent_run_id,
        on_started=run_ids.append,
    ) as writer:
        writer.artifact({"demo_ids": demo_ids}, DEMOS_ARTIFACT)
        with dspy.context(lm=lm, adapter=build_adapter(config.program.adapter)):
            report = evaluate_program(
                program, evalset, metric, label="optimized", threads=config.num_threads
            )
        report = with_floor(report, metric, trainset, evalset)
        writer.report(report, "optimized")
        writer.program(program)
        writer.export(program, config)
    return report, demo_ids


def _fixed_record(task: CellTask, config: ExperimentConfig, splits, eval_size: int) -> RunRecord:
    """A fixed arm's run record: params, tags (no preset: a fixed arm has no optimizer)."""
    arm = task.study.arm(task.cell.arm)
    configure_tracking(config.tracking.uri, config.tracking.experiment)
    return RunRecord(
        config=config,
        params={
            "arm.fixed": arm.fixed or "",
            "arm.k": str(arm.k) if arm.fixed == "random-demos" else "0",
            "data.train_size": str(len(splits.train)),
            "data.val_size": str(len(splits.val)),
            "data.eval_size": str(eval_size),
            "version.liftdspy": liftdspy.__version__,
            "version.dspy": dspy.__version__,
        },
        tags=cell_tags(task)
        | {
            layout.ROLE_TAG: layout.EXPERIMENT_ROLE,
            layout.EXPERIMENT_TAG: config.name,
            layout.PROGRAM_TAG: config.program.name,
            layout.OPTIMIZER_TAG: arm.fixed or "",
            layout.EVAL_IDS_TAG: ",".join(t.id for t in splits.eval)[: layout.MAX_TAG_CHARS],
        },
    )


def _run_constant(
    task: CellTask,
    config: ExperimentConfig,
    run_ids: list[str],
    splits,
    trainset: list[dspy.Example],
    evalset: list[dspy.Example],
    metric,
) -> EvaluationReport:
    """The `constant` arm: the metric's floor answer (chosen from the train golds, best on the
    eval examples) scored on every eval example, with no LM; every candidate is logged."""
    record = _fixed_record(task, config, splits, len(evalset))
    with open_run(
        record,
        run_name=f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        parent_run_id=task.parent_run_id,
        on_started=run_ids.append,
    ) as writer:
        floor = metric_floor(metric, trainset, evalset)
        writer.artifact(floor.model_dump(mode="json"), FLOOR_ARTIFACT)
        report = constant_report(floor, metric, evalset, label="optimized")
        writer.report(report, "optimized")
    return report
