"""The experiment runner's logic: MLflow records, interruption, config errors.

The LM here is `scripted_ir_engine()`, the test-only `FunctionEngine` answering every NL->IR
request with the same IR: these tests are about what the runner records, not about model quality
(the replayed demo in test_demo_replay.py runs the real embedded model's recordings).
"""

from __future__ import annotations

from pathlib import Path

import dspy
import mlflow
import pytest
from dspy.lm15 import Request
from fixtures_engines import FunctionEngine, ir_answer
from fixtures_ir import IDENTITY_IR
from mlflow.tracking import MlflowClient

from liftdspy.experiments.config import ConfigError, ExperimentConfig, load_config
from liftdspy.experiments.runner import run_experiment
from liftdspy.lm import build_lm
from liftdspy.programs import NLToIR

ROOT = Path(__file__).resolve().parents[1]

SCRIPTED_IR = IDENTITY_IR


def scripted_ir_engine(interrupt_after: int | None = None) -> FunctionEngine:
    """Every answer is the same IR; with `interrupt_after`, the call after that many is a Ctrl-C."""

    def answer(request: Request, number: int) -> str:
        if interrupt_after is not None and number > interrupt_after:
            raise KeyboardInterrupt
        return ir_answer(SCRIPTED_IR)

    return FunctionEngine(answer, model="scripted-ir", usage=(100, 40))


def make_config(tmp_path: Path, **overrides) -> ExperimentConfig:
    data = {
        "name": "runner-test",
        "dataset": {
            "paths": [str(ROOT / "datasets" / "core")],
            "max_train": 6,
            "max_val": 4,
            "max_eval": 5,
        },
        "program": {"name": "nl_to_ir"},
        "lm": {
            "kind": "local",
            "model": "scripted-ir",
            "recorder": {"mode": "replay", "path": str(tmp_path / "rec")},
        },
        "optimizer": {"preset": "labeled-fewshot"},
        "seed": 3,
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "runner-test"},
    }
    data.update(overrides)
    return ExperimentConfig.model_validate(data)


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # presets are read from optimizers/
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    yield
    mlflow.end_run()


def test_run_records_params_scores_candidates_and_artifacts(tmp_path, in_repo):
    engine = scripted_ir_engine()
    config = make_config(tmp_path)
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))

    assert outcome.baseline.n == outcome.optimized.n == 5
    assert engine.calls == 10  # baseline + optimized; LabeledFewShot makes no LM call
    client = MlflowClient(tracking_uri=config.tracking.uri)
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["optimizer.preset"] == "labeled-fewshot"
    assert params["preset.optimizer"] == "LabeledFewShot"
    assert params["lm.model"] == "scripted-ir"
    assert params["data.eval_size"] == "5"
    metrics = run.data.metrics
    for key in (
        "baseline_score",
        "optimized_score",
        "optimized_score_ci_low",
        "gain",
        "lm_calls",
        "baseline_truncated_rate",
        "optimized_truncated_rate",
    ):
        assert key in metrics, key
    assert metrics["baseline.name"] == pytest.approx(outcome.baseline.components["name"])
    assert metrics["lm_calls"] == 10
    assert metrics["lm_input_tokens"] == 1000
    assert metrics["baseline_score_ci_low"] <= metrics["baseline_score"]
    # The floor (best constant answer, no LM call) on the same 5 eval examples, normalised
    # scores beside the raw ones.
    floor = outcome.optimized.floor
    assert floor is not None and floor.example_ids == [r.id for r in outcome.optimized.results]
    assert outcome.baseline.floor == floor
    assert metrics["floor"] == pytest.approx(floor.floor)
    for which, report in (("baseline", outcome.baseline), ("optimized", outcome.optimized)):
        expected = (report.score.mean - floor.floor) / (1 - floor.floor)
        assert metrics[f"{which}_score_normalised"] == pytest.approx(expected)
        assert metrics[f"{which}_score_normalised_ci_low"] <= expected
    assert outcome.optimized.score.method == "crossed"

    artifacts = {a.path for a in client.list_artifacts(outcome.run_id, "reports")}
    assert {"reports/baseline.json", "reports/optimized.json", "reports/cost.json"} <= artifacts
    local = client.download_artifacts(outcome.run_id, "program/program.json", str(tmp_path))
    loaded = NLToIR()
    loaded.load(local)
    assert len(loaded.translate.demos) == 3

    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.run_id}'"
    )
    assert len(children) == 1 and children[0].data.tags["liftdspy.role"] == "candidate"


def test_rerun_replays_every_call_from_the_recorder(tmp_path, in_repo):
    config = make_config(tmp_path)
    first = scripted_ir_engine()
    run_experiment(config, lm_factory=lambda c: build_lm(c, engine=first))
    again = scripted_ir_engine()
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=again))
    assert again.calls == 0
    assert outcome.cost["lm_cache_hits"] == 10


def test_interrupt_marks_the_run_failed_and_keeps_finished_work(tmp_path, in_repo):
    engine = scripted_ir_engine(interrupt_after=5)  # baseline (5 calls) finishes, then Ctrl-C
    config = make_config(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))
    client = MlflowClient(tracking_uri=config.tracking.uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("runner-test").experiment_id],
        "tags.`liftdspy.role` = 'experiment'",
    )
    assert run.info.status == "FAILED"
    assert "baseline_score" in run.data.metrics
    assert "optimized_score" not in run.data.metrics
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/baseline.json" in paths


def test_bad_config_fails_before_any_lm_call(tmp_path, in_repo):
    engine = scripted_ir_engine()
    (tmp_path / "empty").mkdir()
    config = make_config(tmp_path, dataset={"paths": [str(tmp_path / "empty")]})
    with pytest.raises(ValueError, match=r"dataset\.train_split: no .train. rows"):
        run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))
    bad_preset = make_config(
        tmp_path, optimizer={"preset": "mipro-small", "compile": {"num_trails": 3}}
    )
    with pytest.raises(ValueError, match=r"compile.num_trails is not an argument of MIPROv2"):
        run_experiment(bad_preset, lm_factory=lambda c: build_lm(c, engine=engine))
    assert engine.calls == 0


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text((ROOT / "experiments" / "demo.yaml").read_text())
    with pytest.raises(ConfigError, match=r"lm.temprature: Extra inputs"):
        load_config(path, ["lm.temprature=0.5"])
    with pytest.raises(ConfigError, match=r"seed: Input should be a valid integer"):
        load_config(path, ["seed=abc"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["seed"])
    config = load_config(path, ["optimizer.compile.num_trials=5", "lm.recorder.mode=offline"])
    assert config.optimizer.compile == {"num_trials": 5}
    assert config.lm.recorder.mode == "offline"
    assert isinstance(dspy.__version__, str)


def test_api_key_never_reaches_mlflow_or_the_recordings(tmp_path, in_repo, monkeypatch):
    secret = "sk-liftdspy-test-0123456789abcdef"
    monkeypatch.setenv("LIFTDSPY_TEST_API_KEY", secret)
    config = make_config(
        tmp_path,
        lm={
            "kind": "openai",
            "model": "scripted-ir",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "LIFTDSPY_TEST_API_KEY",
            "recorder": {"mode": "record", "path": str(tmp_path / "rec")},
        },
    )
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=scripted_ir_engine()))
    params = MlflowClient(tracking_uri=config.tracking.uri).get_run(outcome.run_id).data.params
    assert params["lm.api_key_env"] == "LIFTDSPY_TEST_API_KEY"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in written)
    assert any("mlartifacts" in p.parts for p in written)
    leaks = [p for p in written if secret.encode() in p.read_bytes()]
    assert leaks == []


def test_cost_counts_every_lm_the_run_builds(tmp_path, in_repo):
    from liftdspy.experiments.runner import cost_report
    from liftdspy.lm import LMConfig, RecorderConfig

    def lm(name: str):
        config = LMConfig(
            kind="local", model=name, recorder=RecorderConfig(mode="off", path=tmp_path / name)
        )
        return build_lm(config, engine=scripted_ir_engine())

    task, reflection = lm("task"), lm("reflection")
    task("a task call")
    reflection("a reflection call")
    reflection("another reflection call")
    cost = cost_report({"task": task, "reflection": reflection}, {"baseline": 1.0})
    assert cost["lm_calls"] == 3.0
    assert cost["lm_calls.task"] == 1.0 and cost["lm_calls.reflection"] == 2.0
    assert cost["lm_output_tokens"] == 3 * 40.0

    # A run with a reflection LM reports it (LabeledFewShot never calls it).
    config = make_config(
        tmp_path,
        reflection_lm={
            "kind": "local",
            "model": "scripted-reflection",
            "recorder": {"mode": "off", "path": str(tmp_path / "refl")},
        },
    )
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=scripted_ir_engine()))
    assert outcome.cost["lm_calls.reflection"] == 0.0
    assert outcome.cost["lm_calls.task"] == outcome.cost["lm_calls"] == 10.0


def test_compare_uses_the_bootstrap_seed_stored_on_the_run(tmp_path, in_repo):
    from liftdspy.compare import compare_runs
    from liftdspy.stats import paired_bootstrap

    engine = scripted_ir_engine()
    first = run_experiment(
        make_config(tmp_path, seed=3), lm_factory=lambda c: build_lm(c, engine=engine)
    )
    second = run_experiment(
        make_config(tmp_path, seed=5), lm_factory=lambda c: build_lm(c, engine=engine)
    )
    assert first.comparison.seed == 3
    assert first.comparison == paired_bootstrap(
        first.baseline.scores(), first.optimized.scores(), seed=3
    )
    uri = make_config(tmp_path).tracking.uri
    comparison = compare_runs([first.run_id, second.run_id], tracking_uri=uri)
    summary = comparison.runs[0]
    assert summary.seed == 3 and comparison.runs[1].seed == 5
    assert summary.score == first.optimized.score  # the same interval as the run logged
    assert summary.baseline == first.baseline.score
    assert summary.truncated_rate == 0.0
    assert summary.floor == pytest.approx(first.optimized.floor.floor)
    assert summary.score_normalised == first.optimized.score_normalised
    (pair,) = comparison.pairs
    assert pair.floor == pytest.approx(first.optimized.floor.floor)  # same eval examples
    assert pair.test.seed == 3  # a pair uses run A's seed


def test_evaluate_reports_the_floor_of_the_examples_it_scored(tmp_path, in_repo):
    """`liftdspy evaluate` (held-out evaluation of a run's program) scores the metric's floor on
    the same examples, its constant answers from the dataset's train split, and logs it."""
    from liftdspy.experiments.examples import to_examples
    from liftdspy.metrics import IRMetric
    from liftdspy.metrics.floor import metric_floor
    from liftdspy.studies.heldout import evaluate_heldout

    engine = scripted_ir_engine()
    config = make_config(tmp_path)
    outcome = run_experiment(config, lm_factory=lambda c: build_lm(c, engine=engine))
    core = ROOT / "datasets" / "core"
    held = evaluate_heldout(
        outcome.run_id,
        [core],
        split="dev",
        limit=4,
        tracking_uri=config.tracking.uri,
        engine=scripted_ir_engine(),
    )
    from liftdspy.datasets import load_tasks

    tasks = load_tasks([core])
    dev = to_examples([t for t in tasks if t.split == "dev"][:4], "nl_to_ir")
    train = to_examples([t for t in tasks if t.split == "train"], "nl_to_ir")
    expected = metric_floor(IRMetric(), train, dev)
    floor = held.report.floor
    assert floor is not None and floor.example_ids == [str(e.id) for e in dev]
    assert floor.floor == pytest.approx(expected.floor) and floor.winner == expected.winner
    metrics = MlflowClient(tracking_uri=config.tracking.uri).get_run(held.run_id).data.metrics
    assert metrics["floor"] == pytest.approx(floor.floor)
    normalised = (held.report.score.mean - floor.floor) / (1 - floor.floor)
    assert metrics["eval_score_normalised"] == pytest.approx(normalised)
