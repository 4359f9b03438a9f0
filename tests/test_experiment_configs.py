"""Every shipped experiment config validates, and its preset and dataset splits resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from liftdspy.experiments.config import load_config
from liftdspy.experiments.runner import resolved_preset, select_tasks

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_resolves(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_config(path)
    assert config.name == path.stem
    preset = resolved_preset(config)
    assert preset.name == config.optimizer.preset
    splits = select_tasks(config)
    assert splits.train and splits.val and splits.eval
    assert {t.id for t in splits.eval}.isdisjoint({t.id for t in splits.train})
    if preset.optimizer == "GEPA":
        assert config.reflection_lm is not None


def test_there_is_a_demo_config():
    assert "demo" in {p.stem for p in CONFIGS}
