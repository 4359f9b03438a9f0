"""Quiet by default: `liftdspy run experiments/demo.yaml --recorder offline` (the committed demo
recording replayed, real DSPy/MIPROv2/MLflow) shows liftdspy's own progress and results on one
screen; DSPy's, MIPROv2's and MLflow's chatter is in the run's log artifact `logs/liftdspy.log`;
`-v` brings it back to the terminal. No credential reaches the log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from liftdspy.cli import logs
from liftdspy.lm.store import RecordingStore, ensure_imported

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"
CHATTER = (
    "mipro_optimizer_v2",
    "Input contains fields not in signature",
    "Bootstrapping set",
    "Average Metric",
    "Running without data aware proposer",
    "mlflow.store",
    "Downloading artifacts",
)


def _demo(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess, str]:
    store = tmp_path / "store"
    ensure_imported(RECORDING, RecordingStore(store))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("LIFTDSPY_RECORDER", "COLUMNS")}
    env["LIFTDSPY_LOG_DIR"] = str(tmp_path / "logs")
    argv = [*flags, "run", "experiments/demo.yaml", "--recorder", "offline"]
    argv += ["--set", f"lm.recorder.path={store}", "--set", f"tracking.uri={tracking}"]
    done = subprocess.run(
        [sys.executable, "-m", "liftdspy.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, tracking


@pytest.mark.local
@pytest.mark.slow
def test_demo_output_fits_one_screen_and_the_chatter_is_in_the_log_artifact(tmp_path):
    pytest.importorskip("llama_cpp", reason="the demo engine needs the `local` extra")
    done, tracking = _demo(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    terminal = done.stdout + done.stderr
    lines = terminal.splitlines()
    assert len(lines) <= 40, terminal
    assert max(len(line) for line in lines) <= 100, terminal
    assert [c for c in CHATTER if c in terminal] == []
    assert "optimized" in done.stdout and "MLflow run:" in done.stdout
    run_id = done.stdout.split("MLflow run: ")[1].split()[0]
    client = MlflowClient(tracking_uri=tracking)
    log = client.download_artifacts(run_id, logs.LOG_ARTIFACT, str(tmp_path / "dl"))
    text = Path(log).read_text(encoding="utf-8")
    for chatter in ("mipro_optimizer_v2", "Input contains fields not in signature"):
        assert chatter in text
    assert "INFO stdout: Bootstrapping set" in text  # DSPy's print()s, line by line


@pytest.mark.local
@pytest.mark.slow
def test_verbose_brings_the_chatter_back(tmp_path):
    pytest.importorskip("llama_cpp", reason="the demo engine needs the `local` extra")
    done, _ = _demo(tmp_path, "-v")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mipro_optimizer_v2" in done.stderr
    assert "Bootstrapping set" in done.stdout + done.stderr


def test_the_log_file_never_holds_a_credential(tmp_path, monkeypatch):
    secret = "sk-log-secret-1234567890"
    monkeypatch.setenv("LIFTDSPY_TEST_LOG_API_KEY", secret)
    path = tmp_path / "session.log"
    logs.setup(False, path)
    library = logging.getLogger("dspy.clients.lm")
    library.warning("calling with key %s", secret)
    library.info("endpoint http://user:%s@example.org/v1?token=abc123", "pw-in-url")
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        logging.getLogger("mlflow.tracking").exception("upload failed")
    text = logs.flush().read_text(encoding="utf-8")
    assert "calling with key <redacted>" in text
    assert "http://<redacted>@example.org/v1?token=<redacted>" in text
    assert secret not in text and "pw-in-url" not in text and "abc123" not in text
    assert "upload failed" in text and "RuntimeError" in text
    logs.teardown()
    assert not [h for h in logging.getLogger().handlers if h.get_name() == logs.FILE_HANDLER]
