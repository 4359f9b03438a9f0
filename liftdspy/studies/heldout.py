"""Held-out evaluation (`liftdspy evaluate PROGRAM --dataset PATH`): score a saved program on any
labelled dataset and log an evaluation run linked to the program's run.

PROGRAM is an MLflow run (id, name or `latest`), an export directory (`programs/NAME/`) or a
`program.json` (the program kind is read from a manifest beside it, else from its predictor
names). `runtime=True` also scores the exported prompt pack through `liftdspy.runtime` (no DSPy)
on the same examples and logs the paired difference.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict, Field

import liftdspy
from liftdspy.errors import LiftdspyError
from liftdspy.experiments.config import MetricConfig
from liftdspy.experiments.evaluation import EvaluationReport, evaluate_program, with_floor
from liftdspy.experiments.examples import to_examples
from liftdspy.experiments.metric_factory import make_metric
from liftdspy.export.prompt_pack import program_adapter
from liftdspy.lm.config import LMConfig, build_engine, build_lm, recorder_of
from liftdspy.lm.recorder import IdentifiedEngine
from liftdspy.programs.adapters import build_adapter
from liftdspy.stats import PairedComparison, paired_bootstrap
from liftdspy.tracking import configure_tracking, flatten_params, layout, resolve_tracking_uri
from liftdspy.tracking.run_record import RunRecord, open_run

logger = logging.getLogger(__name__)

PREDICTOR_PROGRAMS = {
    frozenset({"translate"}): "nl_to_ir",
    frozenset({"implement"}): "ir_to_code",
}


class EvaluateError(LiftdspyError, ValueError):
    """A program or dataset that cannot be evaluated; the message names it."""


class ProgramSource(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    program: dspy.Module
    name: str
    predictor: str
    options: dict[str, Any] = Field(default_factory=dict)
    source: str
    source_run_id: str | None = None
    lm: LMConfig | None = None
    export_dir: Path | None = None


class HeldoutOutcome(BaseModel):
    run_id: str
    source: str
    source_run_id: str | None
    dataset: list[str]
    split: str
    report: EvaluationReport
    runtime_scores: list[float] | None = None
    runtime_comparison: PairedComparison | None = None
    identical_requests: int | None = None
    cost: dict[str, float]


def _infer_program(program_file: Path) -> tuple[str, str]:
    try:
        state = json.loads(program_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvaluateError(f"{program_file}: not a readable program.json: {exc}") from None
    names = {key for key in state if key != "metadata"}
    roots = {name.split(".")[0] for name in names}
    if {"nl_to_ir", "ir_to_code"} <= roots:
        return "pipeline", "predict"
    kind = "cot" if any(".predict" in name for name in names) else "predict"
    stripped = frozenset(name.split(".")[0] for name in names)
    if stripped in PREDICTOR_PROGRAMS:
        return PREDICTOR_PROGRAMS[stripped], kind
    raise EvaluateError(
        f"{program_file}: cannot tell the program from its predictors {sorted(names)}; "
        "evaluate its export directory (with manifest.json) instead"
    )


def load_source(reference: str, *, tracking_uri: str | None, work_dir: Path) -> ProgramSource:
    """The program PROGRAM names, with its run id, LM config and export when known."""
    from liftdspy.export import load_exported_program, read_lm_config, read_manifest, write_export
    from liftdspy.programs import build_program

    path = Path(reference)
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise EvaluateError(f"{path}: no manifest.json (not an export directory)")
        manifest = read_manifest(path)
        return ProgramSource(
            program=load_exported_program(path),
            name=manifest.program or "nl_to_ir",
            predictor=manifest.predictor_kind or "predict",
            options=manifest.program_options,
            source=str(path),
            source_run_id=manifest.source_run_id,
            lm=read_lm_config(path),
            export_dir=path,
        )
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise EvaluateError(f"{path}: no such program file")
        if (path.parent / "manifest.json").is_file():
            return load_source(str(path.parent), tracking_uri=tracking_uri, work_dir=work_dir)
        name, predictor = _infer_program(path)
        program = build_program(name, predictor)  # type: ignore[arg-type]
        program.load(str(path))
        export_dir = work_dir / "export"
        write_export(program, export_dir, program_name=name, predictor=predictor)
        return ProgramSource(
            program=program,
            name=name,
            predictor=predictor,
            source=str(path),
            export_dir=export_dir,
        )
    from mlflow.tracking import MlflowClient

    from liftdspy.export.from_run import (
        RunExportError,
        read_run_program,
        rebuild_program,
        resolve_run_id,
        write_run_export,
    )
    from liftdspy.export.lm_config import exported_recorder_mode

    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    try:
        run_id = resolve_run_id(client, reference)
        description, program_file = read_run_program(client, run_id, work_dir)
        program = rebuild_program(description, program_file)
    except RunExportError as exc:
        raise EvaluateError(str(exc)) from None
    export_dir = work_dir / "export"
    write_run_export(program, description, export_dir)
    lm = description.lm
    if lm is not None:  # the recorder mode its export keeps, not the run's --recorder
        mode = exported_recorder_mode(lm.recorder.mode, description.file_recorder_mode)
        lm = lm.model_copy(update={"recorder": lm.recorder.model_copy(update={"mode": mode})})
    return ProgramSource(
        program=program,
        name=description.name,
        predictor=description.predictor,
        options=description.options,
        source=f"run {run_id}",
        source_run_id=run_id,
        lm=lm,
        export_dir=export_dir,
    )


def evaluate_heldout(
    reference: str,
    dataset: list[Path],
    *,
    split: str = "test",
    lm: LMConfig | None = None,
    metric: MetricConfig | None = None,
    runtime: bool = False,
    limit: int | None = None,
    tracking_uri: str | None = None,
    experiment: str = "liftdspy-evaluate",
    threads: int = 1,
    engine: IdentifiedEngine | None = None,
) -> HeldoutOutcome:
    """Score PROGRAM on `dataset`'s `split`; log an evaluation run (role `evaluation`, tag
    `liftdspy.source_run_id`)."""
    import mlflow

    from liftdspy.datasets import load_tasks

    with tempfile.TemporaryDirectory() as tmp:
        source = load_source(reference, tracking_uri=tracking_uri, work_dir=Path(tmp))
        lm_config = lm or source.lm
        if lm_config is None:
            raise EvaluateError(
                f"{source.source}: no LM config recorded with it; pass --lm FILE.yaml"
            )
        all_tasks = load_tasks(dataset)
        tasks = [t for t in all_tasks if t.split == split][:limit]
        if not tasks:
            where = ", ".join(str(p) for p in dataset)
            raise EvaluateError(f"--split {split}: no {split!r} rows in {where}")
        metric_config = metric or MetricConfig()
        if metric_config.name is None:
            from liftdspy.programs.registry import program_spec

            metric_config.name = program_spec(source.name).default_metric
        scorer = make_metric(metric_config)
        examples = to_examples(tasks, source.name)
        # The floor's constant answers come from the dataset's train split (none: content-free).
        train = to_examples([t for t in all_tasks if t.split == "train"], source.name)
        inner = engine if engine is not None else build_engine(lm_config)
        started = time.perf_counter()
        configure_tracking(tracking_uri, experiment)
        params = flatten_params({"lm": lm_config.model_dump(mode="json")})
        # The adapter the program runs with, as its export renders it (`program_adapter`).
        adapter = program_adapter(source.program, source.options.get("adapter"))
        params.update(
            {
                "program.name": source.name,
                "program.predictor": source.predictor,
                "program.adapter": adapter,
                "dataset.paths": ",".join(str(p) for p in dataset),
                "dataset.split": split,
                "data.eval_size": str(len(tasks)),
                "metric.name": str(metric_config.name),
                "runtime": str(runtime),
                "version.liftdspy": liftdspy.__version__,
                "version.dspy": dspy.__version__,
            }
        )
        record = RunRecord(
            params=params,
            tags={
                layout.ROLE_TAG: layout.EVALUATION_ROLE,
                layout.SOURCE_TAG: source.source[:500],
                layout.SOURCE_RUN_ID_TAG: source.source_run_id or "",
                layout.PROGRAM_TAG: source.name,
                layout.EVAL_IDS_TAG: ",".join(t.id for t in tasks)[: layout.MAX_TAG_CHARS],
            },
        )
        with open_run(record, run_name=f"evaluate-{time.strftime('%Y%m%d-%H%M%S')}") as writer:
            runtime_scores = comparison = identical = None
            if runtime:
                from liftdspy.export import write_export
                from liftdspy.studies.parity import score_parity

                # The pack carries the sampling of the LM it is run with, as DSPy sends it.
                pack_dir = Path(tmp) / "export-for-lm"
                write_export(
                    source.program,
                    pack_dir,
                    lm_config=lm_config,
                    program_name=source.name,
                    predictor=source.predictor,
                    program_options=source.options,
                )
                scores = score_parity(
                    source.program, pack_dir, source.name, examples, scorer, lm_config, inner
                )
                runtime_scores, identical = scores.runtime_scores, scores.identical_requests
                report = scores.dspy_report or _report_from_scores(examples, scores.dspy_scores)
                comparison = paired_bootstrap(scores.dspy_scores, scores.runtime_scores)
                writer.metrics(
                    {
                        "runtime_score": sum(runtime_scores) / len(runtime_scores),
                        "runtime_minus_dspy": comparison.difference.mean,
                        "runtime_minus_dspy_ci_low": comparison.difference.low,
                        "runtime_minus_dspy_ci_high": comparison.difference.high,
                        "runtime_identical_requests": float(identical),
                    }
                )
                writer.artifact(scores.model_dump(mode="json"), layout.RUNTIME_ARTIFACT)
                cost = {"lm_requests": float(scores.requests * 2)}
            else:
                lm_obj = build_lm(lm_config, engine=inner)
                with dspy.context(lm=lm_obj, adapter=build_adapter(adapter)):
                    report = evaluate_program(
                        source.program, examples, scorer, label="evaluation", threads=threads
                    )
                stats = recorder_of(lm_obj).stats()
                cost = {
                    "lm_calls": float(stats.calls),
                    "lm_cache_hits": float(stats.hits),
                    "lm_output_tokens": float(stats.output_tokens),
                }
                mlflow.log_table(
                    data=report.table(), artifact_file=layout.results_artifact("evaluation")
                )
            report = with_floor(report, scorer, train, examples)
            cost["wall_seconds"] = time.perf_counter() - started
            scores = {
                "eval_score": report.score.mean,
                "eval_score_ci_low": report.score.low,
                "eval_score_ci_high": report.score.high,
            }
            normalised = report.score_normalised
            if report.floor is not None:
                scores[layout.FLOOR_METRIC] = report.floor.floor
            if normalised is not None:
                scores["eval_score_normalised"] = normalised.mean
                scores["eval_score_normalised_ci_low"] = normalised.low
                scores["eval_score_normalised_ci_high"] = normalised.high
            writer.metrics({**scores, **cost})
            writer.artifact(report.model_dump(mode="json"), layout.report_artifact("evaluation"))
            return HeldoutOutcome(
                run_id=writer.run_id,
                source=source.source,
                source_run_id=source.source_run_id,
                dataset=[str(p) for p in dataset],
                split=split,
                report=report,
                runtime_scores=runtime_scores,
                runtime_comparison=comparison,
                identical_requests=identical,
                cost=cost,
            )


def _report_from_scores(examples: list[dspy.Example], scores: list[float]) -> EvaluationReport:
    from liftdspy.experiments.evaluation import ExampleResult
    from liftdspy.stats import bootstrap_ci

    results = [ExampleResult(id=str(e.id), score=s) for e, s in zip(examples, scores, strict=True)]
    return EvaluationReport(
        label="evaluation",
        n=len(results),
        score=bootstrap_ci(scores),
        components={},
        results=results,
        seconds=0.0,
    )
