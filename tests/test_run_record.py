"""The RunRecord: logged with `log_run` and read back with `read_run` against a real MLflow
SQLite store, in the layout runs always had (older runs, without the version fields, still read).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from liftdspy.experiments.config import ExperimentConfig, load_config
from liftdspy.experiments.evaluation import EvaluationReport, ExampleResult
from liftdspy.lm.recorder import RecorderStats
from liftdspy.optimize import OptimizerPreset, PredictorSnapshot, load_preset
from liftdspy.stats import bootstrap_ci, paired_bootstrap
from liftdspy.tracking import configure_tracking, flatten_params, layout
from liftdspy.tracking.run_record import (
    CandidateSummary,
    RunCost,
    RunRecord,
    RunRecordError,
    log_run,
    read_run,
)

ROOT = Path(__file__).resolve().parents[1]
IDS = ["t1", "t2", "t3", "t4"]

# Creating the SQLite store (MLflow's migrations) takes ~15 s on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    configure_tracking(uri, "run-record-test")
    yield uri
    mlflow.set_tracking_uri("")


def report(label: str, scores: list[float]) -> EvaluationReport:
    results = [
        ExampleResult(id=i, score=s, components={"schema": s}, truncated=i == "t4")
        for i, s in zip(IDS, scores, strict=True)
    ]
    return EvaluationReport(
        label=label,
        n=len(results),
        score=bootstrap_ci(scores, seed=7),
        components={"schema": sum(scores) / len(scores)},
        results=results,
        seconds=1.25,
    )


def config() -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "record-test",
            "dataset": {"paths": ["datasets/core"], "max_eval": 4},
            "program": {"name": "nl_to_ir"},
            "lm": {"kind": "openai", "model": "m-1", "base_url": "http://127.0.0.1:9/v1"},
            "optimizer": {"preset": "labeled-fewshot", "init": {"k": 2}},
            "seed": 7,
        }
    )


def full_record() -> RunRecord:
    baseline, optimized = report("baseline", [0.1, 0.2, 0.3, 0.4]), report("optimized", [0.5] * 4)
    stats = {
        "task": RecorderStats(mode="replay", calls=3, hits=5, live_output_tokens=30, truncated=1),
        "reflection": RecorderStats(mode="replay", calls=2, replayed_output_tokens=7),
    }
    return RunRecord(
        config=config(),
        preset=OptimizerPreset(name="p", optimizer="LabeledFewShot", init={"k": 2}),
        params={"data.eval_size": "4", "version.liftdspy": "test"},
        tags={
            layout.ROLE_TAG: layout.EXPERIMENT_ROLE,
            layout.EXPERIMENT_TAG: "record-test",
            layout.BOOTSTRAP_SEED_TAG: "7",
            "liftdspy.study.cell": "arm/seed=1/lm=default",
        },
        reports={"baseline": baseline, "optimized": optimized},
        comparison=paired_bootstrap(baseline.scores(), optimized.scores(), seed=7),
        cost=RunCost.from_stats(stats, {"baseline": 1.5, "compile": 2.0}),
        candidates=[
            CandidateSummary(
                index=i,
                score=0.5 + i / 10,
                full_eval=i == 0,
                predictors=[PredictorSnapshot(name="translate", instructions=f"Do {i}.", demos=i)],
            )
            for i in range(2)
        ],
    )


def test_a_logged_record_reads_back_the_same(uri) -> None:
    record = full_record()
    run_id = log_run(record, run_name="record-run")
    back = read_run(run_id, uri)

    assert (back.run_id, back.run_name, back.status) == (run_id, "record-run", "FINISHED")
    assert back.role == layout.EXPERIMENT_ROLE and back.bootstrap_seed() == 7
    assert back.config == record.config and back.preset == record.preset
    assert back.params == record.params
    assert back.tags == record.tags
    assert back.reports == record.reports and back.comparison == record.comparison
    assert back.cost == record.cost
    assert back.cost.metrics()["lm_calls.reflection"] == 2.0
    assert [c.model_copy(update={"run_id": ""}) for c in back.candidates] == record.candidates
    assert all(c.run_id for c in back.candidates) and not back.has_program
    assert back.problems == []
    with pytest.raises(RunRecordError, match=r"record-run.*config/resolved\.json") as info:
        back.model_copy(update={"config": None}).require_config()
    assert run_id in str(info.value)


def test_the_record_keeps_the_mlflow_layout(uri) -> None:
    record = full_record()
    run_id = log_run(record, run_name="layout-run")
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.params == record.logged_params()
    assert run.data.params["optimizer.preset"] == "labeled-fewshot"
    assert run.data.params["preset.optimizer"] == "LabeledFewShot"
    assert run.data.metrics["optimized_score"] == 0.5
    assert run.data.metrics["optimized_truncated_rate"] == 0.25
    assert run.data.metrics["gain"] == record.comparison.difference.mean
    assert run.data.metrics["wall_seconds.total"] == 3.5
    assert run.data.metrics[layout.CANDIDATES_METRIC] == 2.0
    client = MlflowClient(tracking_uri=uri)
    listed = {
        item.path
        for folder in ("config", "reports", "results")
        for item in client.list_artifacts(run_id, folder)
    }
    assert {
        "config/resolved.json",
        "config/preset.json",
        "reports/baseline.json",
        "reports/optimized.json",
        "reports/comparison.json",
        "reports/cost.json",
        "results/baseline.json",
        "results/optimized.json",
    } <= listed


def test_a_run_without_the_role_tag_is_not_a_liftdspy_run(uri) -> None:
    with mlflow.start_run(run_name="someone-elses") as run:
        mlflow.log_param("alpha", "0.1")
    with pytest.raises(RunRecordError, match=r"someone-elses.*not a liftdspy run.*liftdspy\.role"):
        read_run(run.info.run_id, uri)
    with pytest.raises(RunRecordError, match=r"0123456789abcdef0123456789abcdef is not in"):
        read_run("0123456789abcdef0123456789abcdef", uri)


def test_an_older_run_without_version_fields_still_reads(uri) -> None:
    """A run as liftdspy logged it before the record: no `version` in the resolved config or the
    reports, no `config/preset.json`, the preset only as `preset.*` params."""
    old_config = config().model_dump(mode="json")
    old_config.pop("version")
    old_report = report("optimized", [0.5, 0.6, 0.7, 0.8]).model_dump(mode="json")
    old_report.pop("version")
    with mlflow.start_run(run_name="old-run") as run:
        params = flatten_params(old_config)
        params.update({"preset.optimizer": "LabeledFewShot", "data.eval_size": "4"})
        mlflow.log_params(params)
        mlflow.set_tags({layout.ROLE_TAG: layout.EXPERIMENT_ROLE})  # no bootstrap seed tag
        mlflow.log_dict(old_config, "config/resolved.json")
        mlflow.log_dict(old_report, "reports/optimized.json")
        mlflow.log_metrics({"lm_calls": 4.0, "wall_seconds.total": 2.0})
    back = read_run(run.info.run_id, uri)
    assert back.config is not None and back.config.version == "1"
    assert back.config.lm.model == "m-1" and back.bootstrap_seed() == 7
    assert back.require_report("optimized").version == "1"
    assert back.require_report("optimized").scores() == [0.5, 0.6, 0.7, 0.8]
    assert back.preset is None and back.params == {
        "optimizer.preset": "labeled-fewshot",
        "preset.optimizer": "LabeledFewShot",
        "data.eval_size": "4",
    }
    assert back.cost.metrics() == {"lm_calls": 4.0, "wall_seconds.total": 2.0}
    with pytest.raises(RunRecordError, match=r"old-run.*status FINISHED.*reports/baseline\.json"):
        back.require_report("baseline")


def test_an_artifact_that_does_not_validate_is_named(uri) -> None:
    with mlflow.start_run(run_name="broken-run") as run:
        mlflow.set_tag(layout.ROLE_TAG, layout.EXPERIMENT_ROLE)
        mlflow.log_dict({"label": "optimized"}, "reports/optimized.json")
    back = read_run(run.info.run_id, uri)
    assert back.reports == {} and back.problems[0].startswith("reports/optimized.json")
    with pytest.raises(RunRecordError, match=r"reports/optimized\.json is not an evaluation"):
        back.require_report("optimized")


def test_cost_metrics_round_trip() -> None:
    cost = full_record().cost
    assert RunCost.from_metrics(cost.metrics()) == cost
    assert list(cost.metrics())[:2] == ["lm_calls", "lm_cache_hits"]
    assert cost.metrics()["lm_output_tokens"] == 37.0


def test_committed_configs_and_presets_load_without_a_version_field() -> None:
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        assert "version" not in (yaml.safe_load(path.read_text()) or {}), path
        assert load_config(path).version == "1"
    for path in sorted((ROOT / "optimizers").glob("*.yaml")):
        assert load_preset(path).version == "1"
    with pytest.raises(ValueError, match="version"):
        OptimizerPreset(name="p", optimizer="LabeledFewShot", version="2")


def test_runner_export_and_evaluate_go_through_the_record(tmp_path, monkeypatch) -> None:
    """`liftdspy run` writes a record; `evaluate` reads its program back through it (an
    NL->IR program: no sandbox) and writes an evaluation record linked to it."""
    from liftdspy.experiments.runner import run_experiment
    from liftdspy.lm import build_lm
    from liftdspy.studies.heldout import evaluate_heldout
    from tests.test_runner import make_config, scripted_ir_engine

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    experiment = make_config(tmp_path)
    store = experiment.tracking.uri
    engine = scripted_ir_engine()
    try:
        outcome = run_experiment(experiment, lm_factory=lambda c: build_lm(c, engine=engine))
        run = read_run(outcome.run_id, store)
        assert run.config == experiment and run.has_program
        assert run.preset is not None and run.preset.optimizer == "LabeledFewShot"
        assert run.reports["optimized"] == outcome.optimized
        assert run.comparison == outcome.comparison
        assert run.cost.metrics() == outcome.cost
        assert [c.index for c in run.candidates] == [0]

        heldout = evaluate_heldout(
            outcome.run_id,
            [ROOT / "datasets" / "core"],
            limit=3,
            tracking_uri=store,
            engine=scripted_ir_engine(),
        )
    finally:
        mlflow.end_run()
    evaluation = read_run(heldout.run_id, store)
    assert evaluation.role == layout.EVALUATION_ROLE and evaluation.config is None
    assert evaluation.tags[layout.SOURCE_RUN_ID_TAG] == outcome.run_id
    assert evaluation.params["program.name"] == "nl_to_ir"
    assert evaluation.require_report("evaluation") == heldout.report
