"""The main job, replayed offline from its committed recording (`cache/recordings/demo.jsonl`).

The recording was made by `liftdspy run experiments/demo.yaml` on the embedded SmolLM2-135M. In
offline mode every LM call must come from the recording (a miss is an error), so this runs the
real programs, optimizer, metric and MLflow tracking with zero model calls, and checks that the
recorded optimization beats the unoptimized program on the held-out split.
"""

from __future__ import annotations

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


def test_demo_replays_offline_and_the_optimized_program_wins(tmp_path, demo_store):
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
