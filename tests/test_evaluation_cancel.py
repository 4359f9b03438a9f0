"""With num_threads > 1, Ctrl-C or a fatal LM error stops an evaluation at once: queued examples
never start, Ctrl-C ends the process within 2 s, and the MLflow run is marked FAILED.

The LM is the test-only `FunctionEngine` answering every NL->IR request with the same IR after a
delay (a stand-in for a slow model): these tests are about cancellation, not quality.
Ctrl-C is a real SIGINT sent to a real `run_experiment` in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dspy
import pytest
from dspy import lm15
from dspy.lm15 import Request
from dspy.utils.exceptions import LMAuthError
from fixtures_engines import FunctionEngine, ir_answer
from fixtures_ir import IDENTITY_IR
from mlflow.tracking import MlflowClient

from liftdspy.datasets import load_tasks
from liftdspy.experiments.evaluation import evaluate_program
from liftdspy.experiments.examples import to_examples
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.metrics.ir_metric import IRMetric
from liftdspy.programs import NLToIR

ROOT = Path(__file__).resolve().parents[1]


def refused_then_slow(request: Request, number: int) -> str:
    """The first call is refused like a bad API key, the others are slow."""
    if number == 1:
        raise lm15.AuthError("scripted: the server refused the credentials", provider="x")
    time.sleep(0.3)
    return ir_answer(IDENTITY_IR)


def test_a_fatal_lm_error_cancels_the_queued_examples(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    tasks = load_tasks([ROOT / "datasets" / "core"], splits=["test"])[:12]
    engine = FunctionEngine(refused_then_slow, model="scripted-auth")
    config = LMConfig(
        kind="local", model="scripted-auth", recorder=RecorderConfig(mode="off", path=tmp_path)
    )
    with dspy.context(lm=build_lm(config, engine=engine), adapter=dspy.JSONAdapter()):
        started = time.monotonic()
        with pytest.raises(LMAuthError):
            evaluate_program(
                NLToIR(), to_examples(tasks, "nl_to_ir"), IRMetric(), label="t", threads=3
            )
        elapsed = time.monotonic() - started
    assert elapsed < 1.0  # not 12 examples x 0.3 s / 3 threads
    time.sleep(0.5)  # the calls in flight finish; nothing queued starts after the error
    assert engine.calls <= 3


SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    import yaml
    from fixtures_engines import FunctionEngine, ir_answer

    import liftdspy.experiments.runner as runner
    from liftdspy.cli import app
    from liftdspy.cli.run_cmd import RichProgress
    from liftdspy.lm import build_lm

    tmp, IR, dataset = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

    def slow_answer(request, number):  # the same IR after 1.5 s
        # one write per line: print() writes its arguments one by one, and two threads'
        # lines interleave ("CALLSCALLS 1 2"); the CLI logs print()s, hence sys.__stdout__
        sys.__stdout__.write(f"CALLS {number}\\n")
        sys.__stdout__.flush()
        time.sleep(1.5)
        return ir_answer(IR)

    engine = FunctionEngine(slow_answer, model="scripted-slow")
    runner.build_lm = lambda config: build_lm(config, engine=engine)
    advance = RichProgress.advance
    def report(self, result=None):
        sys.__stdout__.write("RESULT\\n")
        sys.__stdout__.flush()
        advance(self, result)
    RichProgress.advance = report

    config = {
        "name": "cancel-test",
        "dataset": {"paths": [dataset], "max_train": 2, "max_val": 2, "max_eval": 22},
        "program": {"name": "nl_to_ir"},
        "lm": {"kind": "local", "model": "scripted-slow",
               "recorder": {"mode": "off", "path": str(tmp / "rec")}},
        "optimizer": {"preset": "labeled-fewshot"},
        "num_threads": 2,
        "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment": "cancel-test"},
    }
    (tmp / "cancel.yaml").write_text(yaml.safe_dump(config))
    app(["run", str(tmp / "cancel.yaml")])
    """
)


def test_ctrl_c_stops_a_threaded_run_within_two_seconds_and_marks_it_failed(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    env["COLUMNS"] = "200"
    env.pop("LIFTDSPY_RECORDER", None)
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tmp_path),
            json.dumps(IDENTITY_IR),
            str(ROOT / "datasets/core"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    before: list[str] = []  # the lines read before the signal (CALLS lines among them)
    try:
        for line in process.stdout:
            before.append(line)
            if line.startswith("RESULT"):
                break
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-2000:]
    assert elapsed < 2.0, f"stopped {elapsed:.1f} s after SIGINT"
    lines = [line.rstrip("\n") for line in before] + out.splitlines()
    calls = [int(line.split()[1]) for line in lines if line.startswith("CALLS")]
    assert max(calls) <= 4  # 22 examples queued on 2 threads: the rest never started
    assert "marked FAILED" in err
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("cancel-test").experiment_id],
        "tags.`liftdspy.role` = 'experiment'",
    )
    assert run.info.status == "FAILED"
