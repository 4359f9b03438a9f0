"""Run one experiment: baseline evaluation, optimization, evaluation of the compiled program,
and everything recorded in MLflow as it finishes.

The MLflow parent run gets the flattened config as params, baseline and optimized scores with
bootstrap 95% intervals, every metric component, the paired comparison, cost, and artifacts
(compiled program JSON, exported prompts, per-example results tables). Each candidate program
the optimizer tried becomes a child run. Work is logged as soon as it is done, so an interrupted
run (Ctrl-C) is marked FAILED with what finished kept; re-running replays finished LM calls from
the recorder.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict

import liftdspy
from liftdspy import sandbox
from liftdspy.datasets import LabelledTask, load_tasks
from liftdspy.experiments.config import ExperimentConfig
from liftdspy.experiments.evaluation import EvaluationReport, ExampleResult, evaluate_program
from liftdspy.experiments.examples import to_examples
from liftdspy.experiments.metric_factory import make_metric
from liftdspy.lm.config import LMConfig, build_lm, recorder_of
from liftdspy.optimize import (
    OptimizerPreset,
    build_optimizer,
    compile_program,
    extract_candidates,
    load_preset,
)
from liftdspy.redaction import redact_data, redact_text
from liftdspy.stats import PairedComparison, paired_bootstrap
from liftdspy.tracking import configure_tracking, flatten_params
from liftdspy.tracking.runs import BOOTSTRAP_SEED_TAG

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
    tasks = load_tasks(ds.paths)
    chosen: dict[str, list[LabelledTask]] = {}
    for role, split, limit in (
        ("train", ds.train_split, ds.max_train),
        ("val", ds.val_split, ds.max_val),
        ("eval", ds.eval_split, ds.max_eval),
    ):
        rows = [t for t in tasks if t.split == split][:limit]
        if not rows:
            paths = ", ".join(str(p) for p in ds.paths)
            raise ValueError(f"dataset.{role}_split: no {split!r} rows in {paths}")
        chosen[role] = rows
    return SplitTasks(**chosen)


def resolved_preset(config: ExperimentConfig) -> OptimizerPreset:
    """The preset with the experiment's overrides merged in (validated again)."""
    preset = load_preset(config.optimizer.preset)
    data = preset.model_dump()
    data["init"].update(config.optimizer.init)
    data["compile"].update(config.optimizer.compile)
    return OptimizerPreset.model_validate(data)


def _log_report(mlflow, report: EvaluationReport, prefix: str) -> None:
    metrics = {
        f"{prefix}_score": report.score.mean,
        f"{prefix}_score_ci_low": report.score.low,
        f"{prefix}_score_ci_high": report.score.high,
        f"{prefix}_seconds": report.seconds,
        f"{prefix}_errors": float(sum(1 for r in report.results if r.error)),
        f"{prefix}_truncated_rate": report.truncated_rate,
    }
    for name, value in report.components.items():
        metrics[f"{prefix}.{name}"] = value
    mlflow.log_metrics(metrics)
    mlflow.log_table(data=report.table(), artifact_file=f"results/{prefix}.json")
    mlflow.log_dict(report.model_dump(mode="json"), f"reports/{prefix}.json")


def _log_candidates(mlflow, compiled: dspy.Module, config: ExperimentConfig, tmp: Path) -> int:
    candidates = extract_candidates(compiled)
    for candidate in candidates:
        with mlflow.start_run(run_name=f"candidate-{candidate.index:02d}", nested=True):
            params = {
                "candidate.index": str(candidate.index),
                "candidate.full_eval": str(candidate.full_eval),
                "optimizer.preset": config.optimizer.preset,
            }
            for predictor in candidate.predictors:
                params[f"{predictor.name}.demos"] = str(predictor.demos)
                params[f"{predictor.name}.instructions"] = predictor.instructions[:500]
            mlflow.log_params(params)
            if candidate.score is not None:
                mlflow.log_metric("candidate_score", candidate.score)
            mlflow.set_tag("liftdspy.role", "candidate")
            if config.tracking.log_candidate_programs and candidate.program is not None:
                path = tmp / f"candidate-{candidate.index:02d}.json"
                candidate.program.save(str(path))
                mlflow.log_artifact(str(path), "program")
    return len(candidates)


def cost_report(lms: dict[str, dspy.LM | None], wall: dict[str, float]) -> dict[str, float]:
    """LM cost of every LM the run built (`{"task": lm, "reflection": reflection_lm}`), summed
    in `lm_*` and per role in `lm_calls.<role>`, `lm_cache_hits.<role>` and
    `lm_output_tokens.<role>`, plus wall time."""
    built = {role: lm for role, lm in lms.items() if lm is not None}
    stats = {role: recorder_of(lm).stats() for role, lm in built.items()}
    cost = {
        "lm_calls": 0.0,
        "lm_cache_hits": 0.0,
        "lm_cache_misses": 0.0,
        "lm_input_tokens": 0.0,
        "lm_output_tokens": 0.0,
        "lm_truncated": 0.0,
        "lm_live_seconds": 0.0,
        "lm_saved_seconds": 0.0,
    }
    for role, s in stats.items():
        output_tokens = float(s.live_output_tokens + s.replayed_output_tokens)
        cost["lm_calls"] += s.calls
        cost["lm_cache_hits"] += s.hits
        cost["lm_cache_misses"] += s.misses
        cost["lm_input_tokens"] += s.live_input_tokens + s.replayed_input_tokens
        cost["lm_output_tokens"] += output_tokens
        cost["lm_truncated"] += s.truncated
        cost["lm_live_seconds"] += s.live_seconds
        cost["lm_saved_seconds"] += s.saved_seconds
        cost[f"lm_calls.{role}"] = float(s.calls)
        cost[f"lm_cache_hits.{role}"] = float(s.hits)
        cost[f"lm_output_tokens.{role}"] = output_tokens
    cost.update({f"wall_seconds.{phase}": seconds for phase, seconds in wall.items()})
    cost["wall_seconds.total"] = sum(wall.values())
    return cost


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
    everything in MLflow. Everything that can be checked without an LM is checked first.

    `lm_factory` builds each LM from its config (default `build_lm`: engine + recorder).
    `parent_run_id` nests the run under another (a study's cells) and `tags` are added to it.
    """
    import mlflow

    lm_factory = lm_factory or build_lm
    progress = progress or Progress()
    splits = select_tasks(config)
    preset = resolved_preset(config)
    metric = make_metric(config.metric)
    program = config.program.build()
    # A repair loop needs the tests as inputs (it runs them and shows the LM the failures).
    with_tests = config.program.repair_rounds > 0
    trainset = to_examples(splits.train, config.program.name, with_tests=with_tests)
    valset = to_examples(splits.val, config.program.name, with_tests=with_tests)
    evalset = to_examples(splits.eval, config.program.name, with_tests=with_tests)

    lm = lm_factory(config.lm)
    reflection_lm = lm_factory(config.reflection_lm) if config.reflection_lm else None
    lms = {"task": lm, "reflection": reflection_lm}  # every LM the run builds, for the cost
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
    experiment_id = configure_tracking(config.tracking.uri, config.tracking.experiment)
    if config.tracking.traces:
        # Traces of every module and LM call (the GenAI view of the UI). Compiles and evals are
        # logged by this runner itself, so autolog's own runs for them stay off.
        mlflow.dspy.autolog(log_traces=True, log_compiles=False, log_evals=False, silent=True)
    wall: dict[str, float] = {}
    run_name = f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with (
        mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id, tags=tags) as run,
        tempfile.TemporaryDirectory() as tmp_dir,
    ):
        tmp = Path(tmp_dir)
        if on_run_started:
            on_run_started(run.info.run_id)
        params = flatten_params(config.model_dump(mode="json"))
        params.update(flatten_params(preset.model_dump(mode="json"), "preset."))
        params.update(
            {
                "data.train_size": str(len(trainset)),
                "data.val_size": str(len(valset)),
                "data.eval_size": str(len(evalset)),
                "version.liftdspy": liftdspy.__version__,
                "version.dspy": dspy.__version__,
            }
        )
        mlflow.log_params(params)
        mlflow.set_tags(
            {
                "liftdspy.role": "experiment",
                "liftdspy.experiment": config.name,
                "liftdspy.program": config.program.name,
                "liftdspy.optimizer": preset.optimizer,
                "liftdspy.eval_ids": ",".join(t.id for t in splits.eval)[:5000],
                "liftdspy.sandbox.isolation": config.sandbox.isolation,  # "none": UNSAFE run
                BOOTSTRAP_SEED_TAG: str(config.seed),
            }
        )
        if config_path is not None:
            raw = tmp / "config" / Path(config_path).name
            raw.parent.mkdir()
            raw.write_text(redact_text(Path(config_path).read_text(encoding="utf-8")), "utf-8")
            mlflow.log_artifact(str(raw), "config")
        mlflow.log_dict(redact_data(config.model_dump(mode="json")), "config/resolved.json")
        for note in built.notes.notes:
            logger.info("optimizer note: %s", note)
        if built.notes.notes:
            mlflow.set_tag("liftdspy.optimizer_notes", " | ".join(built.notes.notes)[:5000])

        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):

            def evaluate_phase(label: str, candidate: dspy.Module) -> EvaluationReport:
                started = time.perf_counter()
                progress.phase(label, len(evalset))
                report = evaluate_program(
                    candidate,
                    evalset,
                    metric,
                    label=label,
                    threads=config.num_threads,
                    on_result=progress.advance,
                    seed=config.seed,
                )
                wall[label] = time.perf_counter() - started
                _log_report(mlflow, report, label)
                mlflow.log_metrics(cost_report(lms, wall))
                return report

            baseline = evaluate_phase("baseline", program)

            started = time.perf_counter()
            progress.phase("compile", None)
            compiled = compile_program(built, program, trainset, valset)
            wall["compile"] = time.perf_counter() - started
            program_path = tmp / "program.json"
            compiled.save(str(program_path))
            mlflow.log_artifact(str(program_path), "program")
            n_candidates = _log_candidates(mlflow, compiled, config, tmp)
            mlflow.log_metric("candidates", float(n_candidates))
            mlflow.log_metrics(cost_report(lms, wall))

            optimized = evaluate_phase("optimized", compiled)

        export_dir = tmp / "export"
        from liftdspy.export import write_export

        write_export(
            compiled,
            export_dir,
            lm_config=config.lm,
            program_name=config.program.name,
            predictor=config.program.predictor,
            program_options=config.program.options(),
        )
        mlflow.log_artifacts(str(export_dir), "export")

        comparison = paired_bootstrap(baseline.scores(), optimized.scores(), seed=config.seed)
        mlflow.log_metrics(
            {
                "gain": comparison.difference.mean,
                "gain_ci_low": comparison.difference.low,
                "gain_ci_high": comparison.difference.high,
                "gain_p_value": comparison.p_value,
                "wins": float(comparison.wins),
                "losses": float(comparison.losses),
                "ties": float(comparison.ties),
            }
        )
        mlflow.log_dict(comparison.model_dump(mode="json"), "reports/comparison.json")
        cost = cost_report(lms, wall)  # already logged as metrics after the optimized evaluation
        mlflow.log_dict(cost, "reports/cost.json")
        return ExperimentOutcome(
            run_id=run.info.run_id,
            experiment_id=experiment_id,
            baseline=baseline,
            optimized=optimized,
            comparison=comparison,
            cost=cost,
            notes=built.notes.notes,
        )


def outcome_summary(outcome: ExperimentOutcome) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "baseline": outcome.baseline.score.model_dump(),
                "optimized": outcome.optimized.score.model_dump(),
                "gain": outcome.comparison.difference.model_dump(),
                "p_value": outcome.comparison.p_value,
                "cost": outcome.cost,
            }
        )
    )
