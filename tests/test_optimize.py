"""Optimizer presets and the builder's handling of DSPy quirks (no LM call: construction only)."""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from liftdspy.metrics import IRMetric
from liftdspy.optimize import (
    OptimizerPreset,
    PresetError,
    available_presets,
    build_optimizer,
    load_preset,
)

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "optimizers"
LM = dspy.LM("openai/unused", api_key="not-a-real-key")  # constructed, never called


def test_every_shipped_preset_loads_and_builds():
    presets = available_presets(PRESETS)
    assert {p.optimizer for p in presets} >= {
        "MIPROv2",
        "COPRO",
        "BootstrapFewShot",
        "BootstrapFewShotWithRandomSearch",
        "GEPA",
        "SIMBA",
    }
    metric = IRMetric()
    for preset in presets:
        built = build_optimizer(
            preset,
            metric=metric,
            feedback_metric=metric.feedback,
            seed=1,
            valset_size=10,
            reflection_lm=LM,
            lm=LM,
        )
        assert type(built.optimizer).__name__ == preset.optimizer


def test_preset_keys_are_checked_against_the_optimizer_signature(tmp_path):
    with pytest.raises(ValueError, match=r"compile\.num_trails is not an argument of MIPROv2"):
        OptimizerPreset(name="x", optimizer="MIPROv2", compile={"num_trails": 3})
    with pytest.raises(ValueError, match=r"init\.metric is set by liftdspy itself"):
        OptimizerPreset(name="x", optimizer="COPRO", init={"metric": None})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\noptimizer: NotAnOptimizer\n")
    with pytest.raises(PresetError, match=r"bad\.yaml: optimizer: Input should be 'MIPROv2'"):
        load_preset(bad)
    with pytest.raises(PresetError, match=r"available: .*mipro-small"):
        load_preset("no-such-preset", PRESETS)


def test_mipro_keeps_seed_zero_and_clamps_the_minibatch():
    preset = OptimizerPreset(
        name="m",
        optimizer="MIPROv2",
        init={"auto": None, "num_candidates": 2},
        compile={"minibatch": True, "minibatch_size": 35, "seed": 0},
    )
    built = build_optimizer(preset, metric=IRMetric(), seed=5, valset_size=8, lm=LM)
    assert built.optimizer.seed == 0  # moved from compile(), where 0 means "unset"
    assert "seed" not in built.compile_kwargs
    assert built.compile_kwargs["minibatch_size"] == 8
    assert built.optimizer.prompt_model is LM and built.optimizer.task_model is LM
    assert any("clamped to 8" in note for note in built.notes.notes)


def test_bootstrap_gets_a_threshold_and_gepa_needs_feedback_and_reflection():
    metric = IRMetric()
    built = build_optimizer(
        OptimizerPreset(name="b", optimizer="BootstrapFewShot"), metric=metric, seed=0
    )
    assert built.optimizer.metric_threshold == 0.8
    gepa = OptimizerPreset(name="g", optimizer="GEPA", init={"auto": "light"})
    with pytest.raises(ValueError, match="feedback metric"):
        build_optimizer(gepa, metric=metric, seed=0, reflection_lm=LM)
    with pytest.raises(ValueError, match="reflection LM"):
        build_optimizer(gepa, metric=metric, feedback_metric=metric.feedback, seed=0)


def test_candidate_scores_are_on_the_metric_scale_not_evaluates_percentage():
    from liftdspy.optimize.candidates import extract_candidates

    compiled, other = dspy.Predict("question -> answer"), dspy.Predict("question -> answer")
    # what MIPROv2 / COPRO / random search leave: dspy.Evaluate's score, a percentage
    compiled.candidate_programs = [
        {"score": 37.75, "program": compiled, "full_eval": True},
        {"score": 20.0, "program": other, "full_eval": True},
    ]
    compiled.mb_candidate_programs = [(50.0, other)]
    scores = [c.score for c in extract_candidates(compiled)]
    assert scores == pytest.approx([0.3775, 0.2, 0.5])
