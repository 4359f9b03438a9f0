"""`liftdspy study plan`: the eval tasks × seeds that reach a target MDE at 80% power with Holm over
the arms, from a pilot's variance components and cost.

Known-answer tests simulate studies from the crossed model the statistics assume
(tests/stats_synthetic.py): a planted gain equal to the planned design's MDE is detected about
80% of the time by the study's own comparison (crossed bootstrap, Holm over the arms). The pilot
read-back runs a real study on a SQLite MLflow store with test_studies.py's scripted engine.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from dspy.lm15 import Request
from fixtures_engines import FunctionEngine, demos_shown, ir_answer
from fixtures_ir import IDENTITY_IR
from stats_synthetic import synthetic_scores, table_of
from test_studies import ROOT, write_study
from typer.testing import CliRunner

from liftdspy.lm.store import last_message_text, request_json
from liftdspy.stats import VarianceComponents, compare_to_baseline
from liftdspy.studies import load_study
from liftdspy.studies.executors import InProcessExecutor
from liftdspy.studies.pilot import read_pilot
from liftdspy.studies.power_plan import (
    ArmCostModel,
    PilotMeasurements,
    design_calls,
    plan_power,
)
from liftdspy.studies.runner import prepare_study, run_study

SD_SEED, SD_ARM_EXAMPLE, SD_NOISE = 0.03, 0.15, 0.10
ARMS = ["zero-shot", "random-demos", "mipro", "copro"]  # random-demos the baseline: 3 tests


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    yield
    mlflow.end_run()


def varied_answer(request: Request, number: int) -> str:
    """A scripted IR whose parameters, assertions and intent depend on the prompt's length and on
    how many demos it shows: scores differ by arm and task (a pilot with variance to plan from)."""
    ir = json.loads(json.dumps(IDENTITY_IR))
    words = last_message_text(request_json(request)).split()
    keep = (demos_shown(request) + len(words)) % 3
    ir["intent"]["summary"] = " ".join(words[-keep - 1 :])
    ir["signature"]["parameters"] = [
        {"name": f"p{i}", "type_hint": "int", "description": ""} for i in range(keep)
    ]
    ir["assertions"] = ir["assertions"][: keep % 2]
    return ir_answer(ir)


def varied_factory(config) -> FunctionEngine:
    return FunctionEngine(varied_answer, model="scripted-varied", usage=(100, 40), structured=True)


def _study(tmp_path, **overrides):
    arms = [
        {"name": "zero-shot", "fixed": "zero-shot"},
        {"name": "random-demos", "fixed": "random-demos", "k": 2},
        {"name": "mipro", "preset": "labeled-fewshot", "init": {"k": 1}},
        {"name": "copro", "preset": "labeled-fewshot", "init": {"k": 2}},
    ]
    return load_study(write_study(tmp_path, **({"arms": arms} | overrides)))


def _truth(seeded: bool = True) -> VarianceComponents:
    # An arm minus the baseline carries twice each arm's variance (independent arm terms).
    return VarianceComponents(
        n_seeds=3,
        n_examples=20,
        seed=2 * SD_SEED**2 if seeded else None,
        example=2 * SD_ARM_EXAMPLE**2,
        residual=2 * SD_NOISE**2,
    )


def _measurements(compile_calls: float = 30.0) -> PilotMeasurements:
    return PilotMeasurements(
        pilot="simulated",
        n_seeds=3,
        n_examples=20,
        components={arm: _truth() for arm in ("zero-shot", "mipro", "copro")},
        costs={
            "zero-shot": ArmCostModel(arm="zero-shot", seeded=False, compile_calls=0),
            "random-demos": ArmCostModel(arm="random-demos", seeded=True, compile_calls=0),
            "mipro": ArmCostModel(arm="mipro", seeded=True, compile_calls=compile_calls),
            "copro": ArmCostModel(arm="copro", seeded=True, compile_calls=compile_calls),
        },
        seconds_per_call=2.0,
    )


def test_a_gain_equal_to_the_planned_mde_is_detected_80_percent_with_holm(tmp_path):
    plan = plan_power(_study(tmp_path), _measurements(), 0.15, max_seeds=4)
    assert plan.comparisons == 3 and plan.alpha_per_test == pytest.approx(0.05 / 3)
    best = plan.recommended
    assert best is not None and best.mde <= 0.15
    rng = np.random.default_rng(18)
    studies, detected, detected_null = 200, 0, 0
    for i in range(studies):
        matrices = synthetic_scores(
            rng,
            {"random-demos": 0.0, "zero-shot": 0.0, "mipro": best.mde, "copro": 0.0},
            n_seeds=best.n_seeds,
            n_examples=best.n_examples,
            sd_seed=SD_SEED,
            sd_arm_example=SD_ARM_EXAMPLE,
            sd_noise=SD_NOISE,
        )
        found = {
            c.arm: c.significant
            for c in compare_to_baseline(table_of(matrices), resamples=1000, seed=i)
        }
        detected += found["mipro"]
        detected_null += found["copro"]
    # binomial sd at 200 studies: 0.028
    assert detected / studies == pytest.approx(0.80, abs=0.09)
    assert detected_null / studies <= 0.05  # Holm keeps the null arms' false positives down


def test_fewer_tasks_than_planned_miss_the_mde(tmp_path):
    plan = plan_power(_study(tmp_path), _measurements(), 0.15, max_seeds=4)
    best = plan.recommended
    from liftdspy.studies.power_plan import design_mde

    smaller, _ = design_mde(_measurements(), best.n_seeds, best.n_examples - 1, 0.05 / 3, 0.8)
    assert smaller > 0.15  # the plan is the fewest tasks for those seeds
    without_holm = plan_power(
        _study(
            tmp_path,
            arms=[
                {"name": "random-demos", "fixed": "random-demos"},
                {"name": "mipro", "preset": "labeled-fewshot"},
            ],
        ),
        _measurements(),
        0.15,
        min_seeds=best.n_seeds,
        max_seeds=best.n_seeds,
    )
    assert without_holm.comparisons == 1
    assert without_holm.recommended.n_examples < best.n_examples  # one test: a lower bar


def test_the_cost_is_counted_per_cell_from_the_pilot(tmp_path):
    study = _study(tmp_path)
    plan = plan_power(study, _measurements(compile_calls=30), 0.15, min_seeds=4, max_seeds=4)
    option = plan.recommended
    e = option.n_examples
    # zero-shot once, random-demos and two optimizers once per seed, each with its compile.
    # (3 seeds cannot reach 0.15 here: the seed term's 2 df make the t quantiles too wide.)
    assert option.lm_calls == e + 4 * e + 2 * 4 * (30 + e)
    assert option.lm_calls == design_calls(_measurements(30), 4, e, 1)
    assert option.lm_hours == pytest.approx(option.lm_calls * 2.0 / 3600, abs=1e-3)
    cheaper = plan_power(study, _measurements(compile_calls=300), 0.15, max_seeds=6)
    # expensive compiles favour fewer seeds (more tasks) over more cells
    assert (
        cheaper.recommended.n_seeds
        <= plan_power(study, _measurements(0), 0.15, max_seeds=6).recommended.n_seeds
    )


def test_an_unreachable_or_seedless_pilot_says_so(tmp_path):
    study = _study(tmp_path)
    one_seed = _measurements()
    one_seed.components = {"mipro": _truth(seeded=False)}
    plan = plan_power(study, one_seed, 0.15, max_seeds=3)
    assert any("one seed" in n for n in plan.notes)
    assert any("zero-shot" in n and "copro" in n for n in plan.notes)
    with pytest.raises(ValueError, match="must lie in"):
        plan_power(study, one_seed, 1.5)


def test_plan_from_a_pilot_study_in_mlflow_and_the_mde_said_before_a_run(tmp_path):
    from liftdspy.cli import app

    config = load_study(write_study(tmp_path))
    first = prepare_study(config)
    assert first.expected_mde.startswith("MDE: not known yet")
    run_study(first, InProcessExecutor(varied_factory))

    measured = read_pilot(config, None, None)
    assert measured.pilot == "logic" and measured.n_examples == 4 and measured.n_seeds == 2
    assert set(measured.costs) == {"zero-shot", "random-demos", "labeled"}
    assert measured.costs["labeled"].compile_calls == 0  # LabeledFewShot compiles without calls
    assert measured.seconds_per_call is not None

    # The scripted answers differ by how many demos a prompt shows: both compared arms vary.
    assert set(measured.components) == {"zero-shot", "labeled"}
    again = prepare_study(load_study(write_study(tmp_path)))
    assert again.expected_mde.startswith("MDE: with 4 tasks × 2 seeds"), again.expected_mde

    study_file = tmp_path / "study.yaml"
    result = CliRunner().invoke(app, ["study", "plan", str(study_file), "--mde", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["pilot"] == "logic" and plan["target_mde"] == 0.3
    assert plan["recommended"]["n_examples"] >= 2
    text = CliRunner().invoke(app, ["study", "plan", str(study_file), "--mde", "0.3"])
    assert text.exit_code == 0 and "eval tasks ×" in text.output

    # `study run` says the MDE it will reach before any LM call (here: the plan only).
    planned = CliRunner().invoke(app, ["study", "run", str(study_file), "--plan"])
    assert planned.exit_code == 0, planned.output
    assert "MDE: with 4 tasks × 2 seeds" in planned.output
    as_json = CliRunner().invoke(app, ["study", "run", str(study_file), "--plan", "--json"])
    assert json.loads(as_json.stdout)["expected_mde"].startswith("MDE: with 4 tasks × 2 seeds")
