"""`liftdspy run` flags and config checks that need no LM: --recorder beats LIFTDSPY_RECORDER,
and an evaluation split shared with a training split is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import liftdspy.cli.run_cmd as run_cmd
from liftdspy.cli import app
from liftdspy.experiments.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"


class Seen(Exception):
    pass


def test_recorder_flag_beats_the_environment(monkeypatch):
    monkeypatch.setenv("LIFTDSPY_RECORDER", "offline")
    seen = {}

    def capture(config, **kwargs):  # stands in for the experiment: records the mode it gets
        seen["lm"] = config.lm.recorder.effective_mode().value
        raise ValueError("stop here")

    monkeypatch.setattr(run_cmd, "run_experiment", capture)
    result = CliRunner().invoke(app, ["run", str(DEMO), "--recorder", "record"])
    assert seen == {"lm": "record"}, result.output
    assert "overrides LIFTDSPY_RECORDER=offline" in result.output
    import os

    assert os.environ["LIFTDSPY_RECORDER"] == "offline"  # restored after the command


@pytest.mark.parametrize("role", ["train_split", "val_split"])
def test_eval_split_must_differ_from_the_training_splits(role):
    split = "train" if role == "train_split" else "dev"
    with pytest.raises(ConfigError, match=rf"eval_split '{split}' is also the {role}"):
        load_config(DEMO, [f"dataset.eval_split={split}"])
