"""Run a study: check everything without an LM (configs, presets, splits, leakage), make the plan,
then run the cells that are not finished yet under one MLflow study run, within the budget.

    prepared = prepare_study(config, root=Path.cwd())   # raises before any LM call
    print(prepared.plan)
    outcome = run_study(prepared, executor=InProcessExecutor())
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict, ValidationError

import liftdspy
from liftdspy.datasets import LabelledTask
from liftdspy.experiments.runner import SplitTasks, resolved_preset, select_tasks
from liftdspy.optimize import OptimizerPreset
from liftdspy.optimize.presets import PresetError
from liftdspy.redaction import redact_data
from liftdspy.studies.budget import Allowance
from liftdspy.studies.cell_runner import STUDY_TAG, CellTask
from liftdspy.studies.cells import Cell, absolute_tracking_uri, cell_hash, expand_cells
from liftdspy.studies.cells import experiment_config as cell_experiment
from liftdspy.studies.config import StudyConfig, StudyConfigError
from liftdspy.studies.executors import Executor
from liftdspy.studies.fixed_arms import build_study_program, fixed_demo_ids
from liftdspy.studies.leakage import check_leakage
from liftdspy.studies.pilot import expected_mde
from liftdspy.studies.plan import StudyPlan, make_plan
from liftdspy.studies.results import CellResult
from liftdspy.studies.tracking import HASH_TAG, close_interrupted, find_study_run, finished_cells
from liftdspy.tracking import configure_tracking, flatten_params
from liftdspy.tracking.layout import ROLE_TAG, STUDY_ROLE
from liftdspy.validation_errors import validation_problems

logger = logging.getLogger(__name__)


class PreparedStudy(BaseModel):
    """A study checked end to end without an LM, with its cells and plan."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: StudyConfig
    root: Path
    tracking_uri: str
    cells: list[Cell]
    hashes: dict[str, str]
    splits: SplitTasks
    presets: dict[str, OptimizerPreset]
    plan: StudyPlan
    finished: dict[str, CellResult] = {}
    parent_run_id: str | None = None
    expected_mde: str = ""  # the MDE this study will reach, from its earlier runs (or why not)


class StudyOutcome(BaseModel):
    parent_run_id: str
    results: list[CellResult]
    skipped: list[str]
    not_run: list[str]
    stopped_by_budget: str | None = None
    spent_lm_calls: int
    spent_output_tokens: int


def _check_presets(config: StudyConfig, root: Path) -> dict[str, OptimizerPreset]:
    presets = {}
    for i, arm in enumerate(config.arms):
        if arm.preset is None:
            continue
        cell = Cell(arm=arm.name, seed=config.seeds[0], lm=next(iter(config.named_lms())))
        try:
            presets[arm.name] = resolved_preset(cell_experiment(config, cell, root))
        except ValidationError as exc:
            problems = "; ".join(validation_problems(exc))
            raise StudyConfigError(f"arms.{i} ({arm.name}): {problems}") from None
        except (PresetError, ValueError) as exc:
            raise StudyConfigError(f"arms.{i} ({arm.name}): {exc}") from None
    return presets


def prepare_study(config: StudyConfig, *, root: Path | None = None) -> PreparedStudy:
    """Every check that needs no LM: presets and overrides, the splits, the leakage guard; and
    the plan of the cells not finished in the tracking store yet."""
    root = (root or Path.cwd()).resolve()
    presets = _check_presets(config, root)
    cells = expand_cells(config)
    first = cell_experiment(config, cells[0], root)
    try:
        splits = select_tasks(first)
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None
    demos = {}
    for cell in cells:
        arm = config.arm(cell.arm)
        if arm.fixed is not None:
            ids = [i for per in fixed_demo_ids(config, arm, cell.seed, splits.train) for i in per]
            demos[cell.id] = ids
    seen: dict[str, list[LabelledTask]] = {"train": splits.train, "val": splits.val}
    check_leakage(splits.eval, seen, demos)
    hashes = {cell.id: cell_hash(config, cell, root) for cell in cells}

    tracking_uri = absolute_tracking_uri(config.tracking.uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    finished: dict[str, CellResult] = {}
    parent_id = None
    if client.get_experiment_by_name(config.tracking.experiment) is not None:
        parent = find_study_run(client, config.name, config.identity_hash())
        if parent is not None:
            parent_id = parent.info.run_id
            finished = {
                cell_id: result
                for cell_id, result in finished_cells(client, parent).items()
                if hashes.get(cell_id) == result.cell_hash
            }
    sizes = {"train": len(splits.train), "val": len(splits.val), "eval": len(splits.eval)}
    predictors = len(build_study_program(config).predictors())
    plan = make_plan(config, cells, presets, sizes, predictors, set(finished))
    mde = expected_mde(config, len(splits.eval))
    logger.info("%s", mde)  # said before any LM call (the CLI shows it)
    return PreparedStudy(
        config=config,
        root=root,
        tracking_uri=tracking_uri,
        cells=cells,
        hashes=hashes,
        splits=splits,
        presets=presets,
        plan=plan,
        finished=finished,
        parent_run_id=parent_id,
        expected_mde=mde,
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"version.liftdspy": liftdspy.__version__}
    for package in ("dspy", "optuna", "mlflow", "llama-cpp-python"):
        try:
            found[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            found[f"version.{package}"] = "not installed"
    return found


def _start_parent(prepared: PreparedStudy, client: MlflowClient) -> str:
    config = prepared.config
    if prepared.parent_run_id is not None:
        run = client.get_run(prepared.parent_run_id)
        closed = close_interrupted(client, run)
        if closed:
            logger.info("interrupted cells to run again: %s", ", ".join(closed))
        client.update_run(prepared.parent_run_id, status="RUNNING")
        return prepared.parent_run_id
    experiment_id = configure_tracking(prepared.tracking_uri, config.tracking.experiment)
    run = client.create_run(
        experiment_id,
        run_name=f"study-{config.name}",
        tags={
            ROLE_TAG: STUDY_ROLE,
            STUDY_TAG: config.name,
            HASH_TAG: config.identity_hash(),
        },
    )
    run_id = run.info.run_id
    params = flatten_params(config.model_dump(mode="json", exclude={"arms", "lms"}))
    for arm in config.arms:
        params[f"arm.{arm.name}"] = arm.kind
    params["seeds"] = ",".join(str(s) for s in config.seeds)
    params["lms"] = ",".join(config.named_lms())
    params.update(_versions())
    for key, value in params.items():
        client.log_param(run_id, key, value)
    client.log_dict(run_id, redact_data(config.model_dump(mode="json")), "study/config.json")
    return run_id


def run_study(
    prepared: PreparedStudy,
    executor: Executor,
    *,
    on_result: Callable[[CellResult], None] | None = None,
) -> StudyOutcome:
    """Run the unfinished cells (fixed arms first, then optimizer arms, so an optimizer cell's
    baseline replays the zero-shot calls) and record them under the study run."""
    client = MlflowClient(tracking_uri=prepared.tracking_uri)
    parent_id = _start_parent(prepared, client)
    client.log_dict(parent_id, prepared.plan.model_dump(mode="json"), "study/plan.json")
    budget = prepared.config.budget
    spent = {"lm_calls": 0, "output_tokens": 0}
    stopped: list[str] = []

    def next_allowance(outstanding: list[Allowance], free_slots: int) -> Allowance | None:
        """What is left, shared among the free slots, minus what running cells may spend."""
        limits = {}
        for key, limit in (
            ("lm_calls", budget.max_lm_calls),
            ("output_tokens", budget.max_output_tokens),
        ):
            if limit is None:
                limits[key] = None
                continue
            reserved = sum(getattr(a, key) or 0 for a in outstanding)
            left = limit - spent[key] - reserved
            if left <= 0:
                if not outstanding:
                    stopped.append(f"budget.max_{key} ({limit}) reached")
                return None
            limits[key] = max(1, left // max(1, free_slots))
        return Allowance(**limits)

    tasks = [
        CellTask(
            study=prepared.config,
            cell=cell,
            cell_hash=prepared.hashes[cell.id],
            root=prepared.root,
            parent_run_id=parent_id,
        )
        for cell in prepared.cells
        if cell.id not in prepared.finished
    ]
    results: list[CellResult] = []
    status = "FAILED"
    try:
        for result in executor.run(tasks, next_allowance):
            spent["lm_calls"] += result.cost.live_calls
            spent["output_tokens"] += result.cost.live_output_tokens
            results.append(result)
            if result.status == "budget" and not stopped:
                stopped.append(result.error or "budget reached")
            if on_result:
                on_result(result)
        status = "FINISHED"
    finally:
        executor.close()
        client.log_metric(parent_id, "study_live_lm_calls", spent["lm_calls"])
        client.log_metric(parent_id, "study_live_output_tokens", spent["output_tokens"])
        done = {r.cell.id for r in results if r.status == "finished"} | set(prepared.finished)
        all_done = all(c.id in done for c in prepared.cells)
        if status == "FINISHED" and not all_done:
            client.set_tag(parent_id, "liftdspy.study.incomplete", "true")
        client.set_terminated(parent_id, status)
    ran = {r.cell.id for r in results}
    not_run = [c.id for c in prepared.cells if c.id not in ran and c.id not in prepared.finished]
    not_run += [r.cell.id for r in results if r.status != "finished"]
    return StudyOutcome(
        parent_run_id=parent_id,
        results=results,
        skipped=sorted(prepared.finished),
        not_run=not_run,
        stopped_by_budget=stopped[0] if stopped else None,
        spent_lm_calls=spent["lm_calls"],
        spent_output_tokens=spent["output_tokens"],
    )
