"""Quiet by default: `liftdspy run experiments/demo.yaml --recorder offline` (the committed demo
recording replayed, real DSPy/MIPROv2/MLflow) shows liftdspy's own progress and results on one
screen; DSPy's, MIPROv2's and MLflow's chatter is in the run's log artifact `logs/liftdspy.log`;
`-v` brings it back to the terminal. The worker processes of `study run --workers N` follow the
same rule (a subset of the shipped study replayed offline). No credential reaches the log."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from liftdspy.cli import logs
from liftdspy.lm.store import RecordingStore, ensure_imported

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"
STUDY = ROOT / "studies" / "demo.yaml"
STUDY_RECORDING = ROOT / "cache" / "recordings" / "study-demo.jsonl"
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
    # The run's export keeps the experiment file's recorder mode, not this run's --recorder.
    exported = client.download_artifacts(run_id, "export/lm_config.json", str(tmp_path / "ex"))
    assert json.loads(Path(exported).read_text())["lm"]["recorder"]["mode"] == "replay"


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


def _small_study(tmp_path: Path) -> Path:
    """The shipped study cut to its first seed, its baseline and its optimizer arms (whatever they
    are called), parity off: every DSPy record then comes from a worker process."""
    data = yaml.safe_load(STUDY.read_text(encoding="utf-8"))
    baseline = data.get("baseline", "random-demos")
    data["arms"] = [a for a in data["arms"] if a["name"] == baseline or "preset" in a]
    assert any("preset" in a for a in data["arms"]), "the shipped study has no optimizer arm"
    data["seeds"] = data["seeds"][:1]
    data["parity"] = {"enabled": False}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.local
@pytest.mark.slow
def test_study_workers_send_their_chatter_to_the_log_file(tmp_path):
    """`study run --workers 2` on a subset of the shipped study, replayed offline: the terminal
    shows the plan, one line per cell and the report; the optimizers' records (logged in the
    worker processes) and their print()s are in the study's log file."""
    pytest.importorskip("llama_cpp", reason="the study's engine needs the `local` extra")
    store = tmp_path / "store"
    ensure_imported(STUDY_RECORDING, RecordingStore(store))
    env = {k: v for k, v in os.environ.items() if k not in ("LIFTDSPY_RECORDER", "COLUMNS")}
    env["LIFTDSPY_LOG_DIR"] = str(tmp_path / "logs")
    argv = ["study", "run", str(_small_study(tmp_path)), "--workers", "2"]
    argv += ["--recorder", "offline", "--set", f"lm.recorder.path={store}"]
    argv += ["--set", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    argv += ["--report", str(tmp_path / "report")]
    done = subprocess.run(
        [sys.executable, "-m", "liftdspy.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    terminal = done.stdout + done.stderr
    # 3: some cell has no complete recording (a re-recorded study); the routing is the same.
    assert done.returncode in (0, 3), terminal[-3000:]
    assert "cell " in done.stderr and "study run: " in done.stdout
    assert [c for c in CHATTER if c in terminal] == [], terminal
    assert " dspy." not in terminal and "INFO stdout" not in terminal, terminal
    (log,) = (tmp_path / "logs").glob("*.log")
    text = log.read_text(encoding="utf-8")
    assert " dspy.teleprompt." in text  # the optimizers ran in the workers only
    assert "INFO stdout: " in text


def _chatter(n: int) -> str:
    """Run in a worker: a library record, a warning, a print and a liftdspy warning."""
    logging.getLogger("dspy.teleprompt.demo").info("library record %d", n)
    warnings.warn(f"library warning {n}", UserWarning, stacklevel=1)
    print(f"library print {n}")
    logging.getLogger("liftdspy.studies.demo").warning("own warning %d", n)
    sys.stdout.flush()
    return "done"


@pytest.mark.parametrize("verbose", [False, True])
def test_a_spawned_worker_routes_its_records_as_the_command_does(tmp_path, capfd, verbose):
    """Logic of `logs.worker_setup()`: in a spawned worker, library records, warnings and prints
    go to the command's log file, the terminal gets liftdspy's own warnings; with -v, all of it."""
    path = tmp_path / "session.log"
    logs.setup(verbose, path)
    try:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn, initializer=logs.worker_setup()) as pool:
            assert pool.submit(_chatter, 7).result() == "done"
    finally:
        logs.teardown()
    captured = capfd.readouterr()
    terminal = captured.out + captured.err
    text = path.read_text(encoding="utf-8")
    assert "own warning 7" in terminal and "own warning 7" in text
    for chatter in ("library record 7", "library warning 7", "library print 7"):
        assert (chatter in terminal) == verbose, (chatter, terminal)
        assert verbose or chatter in text, chatter
    assert "library record 7" in text  # with -v the log file keeps the records too


def test_a_bar_from_a_tqdm_imported_before_setup_stays_off_the_terminal(tmp_path, monkeypatch):
    """tqdm reads TQDM_DISABLE at import, and DSPy imports it before the CLI's setup: GEPA's
    "GEPA Optimization" bar (no `disable` argument) drew on the terminal of a quiet `study run`."""
    from tqdm import tqdm

    monkeypatch.setenv("TQDM_DISABLE", "1")  # what setup sets, restored after the test
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logs.setup(verbose=False, log_path=tmp_path / "quiet.log")
    try:
        assert tqdm(total=3, desc="GEPA Optimization").disable
        assert not tqdm(total=3, disable=False).disable  # a caller's own choice stands
    finally:
        logs.teardown()
    bar = tqdm(total=3, file=io.StringIO())
    assert not bar.disable  # teardown gives tqdm back as it was
    bar.close()
    logs.setup(verbose=True, log_path=tmp_path / "verbose.log")
    try:
        bar = tqdm(total=3, file=io.StringIO())
        assert not bar.disable
        bar.close()
    finally:
        logs.teardown()
