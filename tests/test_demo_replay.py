"""The main job, replayed offline from its committed recording (`cache/recordings/demo.jsonl`).

The recording was made by `liftdspy run experiments/demo.yaml --recorder record` on the embedded
SmolLM2-135M. In offline mode every LM call must come from the recording (a miss is an error), so
this runs the real programs, optimizer, metric and MLflow tracking with zero model calls, checks
that the published demo table (docs/measurements/demo.md), with the metric's floor, the
floor-normalised scores and the share of recorded answers that ended on their own, is exactly
what the replay produces (`scripts/demo_table.py` prints it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from liftdspy.cli import app
from liftdspy.experiments.config import load_config
from liftdspy.experiments.runner import run_experiment
from liftdspy.lm.recorder import RecordingMissError
from liftdspy.lm.store import RecordingStore, ensure_imported

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"
DEMO = ROOT / "experiments" / "demo.yaml"

pytestmark = [pytest.mark.local, pytest.mark.slow]

llama_cpp = pytest.importorskip("llama_cpp", reason="the demo engine needs the `local` extra")


@pytest.fixture
def demo_store(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    store_path = tmp_path / "demo-store"
    ensure_imported(RECORDING, RecordingStore(store_path))
    yield store_path
    mlflow.end_run()


def _demo_table_module():
    spec = importlib.util.spec_from_file_location("demo_table", ROOT / "scripts" / "demo_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_replays_offline_and_the_published_table_is_what_it_gives(tmp_path, demo_store):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_config(
        DEMO,
        [
            "lm.recorder.mode=offline",
            f"lm.recorder.path={demo_store}",
            f"tracking.uri={tracking}",
        ],
    )
    outcome = run_experiment(config, config_path=DEMO)

    assert outcome.cost["lm_calls"] == 0
    assert outcome.cost["lm_cache_hits"] > 0
    assert outcome.optimized.score.mean > outcome.baseline.score.mean
    assert outcome.comparison.wins > outcome.comparison.losses

    client = MlflowClient(tracking_uri=tracking)
    run = client.get_run(outcome.run_id)
    assert run.data.metrics["optimized_score"] == pytest.approx(outcome.optimized.score.mean)
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.run_id}'"
    )
    assert len(children) >= 2  # MIPROv2's candidate programs
    assert all("candidate_score" in c.data.metrics for c in children)
    # on the metric's 0-1 scale like optimized_score, not dspy.Evaluate's percentage
    assert all(0.0 <= c.data.metrics["candidate_score"] <= 1.0 for c in children)

    demo_table = _demo_table_module()
    rendered = demo_table.render_table(outcome, demo_table.recording_endings(RECORDING))
    assert demo_table.published_table(demo_table.MEASUREMENTS) == rendered, (
        "docs/measurements/demo.md's demo table is stale: paste the output of "
        "`python scripts/demo_table.py`"
    )
    assert demo_table.published_table(demo_table.ROOT / "README.md") == rendered, (
        "README.md's demo table is stale: paste the output of `python scripts/demo_table.py`"
    )
    floor = outcome.optimized.floor
    assert floor is not None and floor.n == outcome.optimized.n
    assert run.data.metrics["floor"] == pytest.approx(floor.floor)


def test_demo_baseline_never_scores_a_cut_off_answer(demo_store):
    """Every recorded zero-shot answer that ended at max_tokens scores 0, with the reason, and
    the report's truncated_rate counts them (the recording of 2026-11-21 had all 16 cut at 450
    tokens: strict baseline 0.000, where JSON repair had scored 0.073)."""
    import dspy

    from liftdspy.experiments.evaluation import evaluate_program
    from liftdspy.experiments.examples import to_examples
    from liftdspy.experiments.metric_factory import make_metric
    from liftdspy.experiments.runner import select_tasks
    from liftdspy.lm import build_lm
    from liftdspy.lm.config import recorder_of

    config = load_config(DEMO, ["lm.recorder.mode=offline", f"lm.recorder.path={demo_store}"])
    lm = build_lm(config.lm)
    evalset = to_examples(select_tasks(config).eval, "nl_to_ir")
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        report = evaluate_program(
            config.program.build(), evalset, make_metric(config.metric), label="baseline"
        )
    stats = recorder_of(lm).stats()
    assert stats.hits == report.n == len(evalset) and stats.calls == 0
    cut = [r for r in report.results if r.truncated]
    assert stats.truncated == len(cut)
    assert report.truncated_rate == len(cut) / report.n
    max_tokens = config.lm.max_tokens
    for result in cut:
        assert result.score == 0.0 and result.components["schema_valid"] == 0.0
        assert result.error.startswith(f"answer truncated at {max_tokens} tokens")


def test_demo_cli_in_offline_mode_prints_the_scores(tmp_path, demo_store):
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(DEMO),
            "--recorder",
            "offline",
            "--set",
            f"lm.recorder.path={demo_store}",
            "--set",
            f"tracking.uri=sqlite:///{tmp_path / 'cli.db'}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "optimized" in result.output and "baseline" in result.output
    assert "MLflow run:" in result.output


def test_offline_run_without_a_recording_names_the_missing_call(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    config = load_config(
        DEMO,
        [
            "lm.recorder.mode=offline",
            # Another name: the committed demo.jsonl would be imported into the empty store.
            "lm.recorder.name=demo-uncommitted",
            f"lm.recorder.path={tmp_path / 'empty-store'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "dataset.max_eval=2",
        ],
    )
    with pytest.raises(RecordingMissError, match="smollm2-135m"):
        run_experiment(config)
    mlflow.end_run()
