"""A run's seed reaches every source of randomness: sampled LM calls (each candidate and rollout
its own seed), demo draws, and the optimizers' own generators.

The optimizer tests use `seeded_sampling_engine()`, a test-only `FunctionEngine` that answers every
JSON-schema field with text drawn from `random.Random(request.config.seed)`: it samples exactly as
the embedded engine does (the answer is a function of the request's seed), so these tests are
about which seed each call carries. That the real embedded engine's text does depend on the seed
is `test_the_embedded_engine_samples_with_the_request_seed` (`-m local`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import dspy
import pytest
from dspy.lm15 import Config, Message, Request
from fixtures_engines import STRUCTURED_PARAMS, FunctionEngine
from fixtures_ir import IDENTITY_IR

from liftdspy.datasets import load_tasks
from liftdspy.experiments.examples import to_examples
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.lm.recorder import RECORDER_MODE_ENV
from liftdspy.lm.seeds import candidate_seed, set_sampling_seed
from liftdspy.metrics import IRMetric
from liftdspy.optimize import build_optimizer, compile_program, extract_candidates, load_preset
from liftdspy.programs import NLToIR

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("alpha", "bravo", "delta", "kilo", "lima", "oscar", "sierra", "tango", "zulu", "echo")


def seeded_sampling_engine() -> FunctionEngine:
    """Answers each JSON-schema request: `ir` with a fixed IR, every string field with words
    drawn from `random.Random(config.seed)` when the call samples (temperature > 0)."""

    def answer(request: Request, number: int) -> str:
        config = request.config
        schema = (config.response_format or {}).get("schema", {})
        rng = random.Random(config.seed)
        sampled = (config.temperature or 0) > 0
        fields = {}
        for name in schema.get("properties", {}):
            if name == "ir":
                fields[name] = IDENTITY_IR
            else:
                words = rng.sample(WORDS, 3) if sampled else ["greedy"]
                fields[name] = f"Write the IR ({' '.join(words)})."
        return json.dumps(fields)

    engine = FunctionEngine(answer, model="seeded-sampling")
    engine.supports_response_schema = True
    engine.supported_params = STRUCTURED_PARAMS | {"seed"}
    return engine


@pytest.fixture
def no_env_mode(monkeypatch):
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)


def _lm(tmp_path: Path, engine: FunctionEngine, seed: int) -> dspy.LM:
    config = LMConfig(
        kind="local",
        model=engine.model,
        recorder=RecorderConfig(mode="replay", path=tmp_path / f"rec-{seed}-{id(engine)}"),
    )
    return set_sampling_seed(build_lm(config, engine=engine), seed)


def _examples(n: int) -> list[dspy.Example]:
    tasks = [t for t in load_tasks([ROOT / "datasets" / "core"]) if t.split == "train"][:n]
    return to_examples(tasks, "nl_to_ir")


def _proposals(tmp_path: Path, preset_name: str, seed: int, **init) -> list[str]:
    """The instructions of every candidate the optimizer tried, compiled with `seed`."""
    preset = load_preset(ROOT / "optimizers" / f"{preset_name}.yaml")
    preset = preset.model_copy(update={"init": {**preset.init, **init}})
    engine = seeded_sampling_engine()
    lm = _lm(tmp_path, engine, seed)
    built = build_optimizer(preset, metric=IRMetric(), seed=seed, valset_size=2, lm=lm)
    if preset.optimizer == "MIPROv2":
        built.compile_kwargs.update(num_trials=2, minibatch=False)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        compiled = compile_program(built, NLToIR(), _examples(3), _examples(2))
    return sorted({p.instructions for c in extract_candidates(compiled) for p in c.predictors})


def test_copro_proposals_follow_the_seed(tmp_path, no_env_mode):
    kwargs = {"breadth": 3, "depth": 1}
    first = _proposals(tmp_path / "a", "copro", 1, **kwargs)
    again = _proposals(tmp_path / "b", "copro", 1, **kwargs)
    other = _proposals(tmp_path / "c", "copro", 2, **kwargs)
    proposed = [p for p in first if "(" in p]
    # breadth 3: COPRO asks n=2 new instructions in one call; each candidate samples its own.
    assert len(proposed) >= 2, first
    assert first == again
    assert set(proposed).isdisjoint(other)


def test_mipro_proposals_follow_the_seed(tmp_path, no_env_mode):
    kwargs = {"num_candidates": 2, "max_bootstrapped_demos": 0, "max_labeled_demos": 1}
    first = _proposals(tmp_path / "a", "mipro-small", 3, **kwargs)
    again = _proposals(tmp_path / "b", "mipro-small", 3, **kwargs)
    other = _proposals(tmp_path / "c", "mipro-small", 4, **kwargs)
    assert any("(" in p for p in first), first
    assert first == again
    assert first != other


def test_greedy_calls_are_one_recording_for_every_seed(tmp_path, no_env_mode):
    seen: list[int | None] = []

    def answer(request: Request, number: int) -> str:
        seen.append(request.config.seed)
        return "[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]"

    engine = FunctionEngine(answer, model="seen")
    engine.supported_params = STRUCTURED_PARAMS | {"seed"}
    config = LMConfig(
        kind="local", model="seen", recorder=RecorderConfig(mode="replay", path=tmp_path / "r")
    )
    for seed in (1, 2):
        lm = set_sampling_seed(build_lm(config, engine=engine), seed)
        lm("hello", temperature=0.0)
        lm("hello", temperature=0.8)
    # One greedy call (no seed: the second seed replays it), one sampled call per seed.
    assert seen == [None, 1, 2]


def test_n_candidates_and_rollouts_each_get_their_own_seed(tmp_path, no_env_mode):
    seen: list[int | None] = []

    def answer(request: Request, number: int) -> str:
        seen.append(request.config.seed)
        return "[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]"

    engine = FunctionEngine(answer, model="seen")
    engine.supported_params = STRUCTURED_PARAMS | {"seed"}
    config = LMConfig(
        kind="local", model="seen", recorder=RecorderConfig(mode="replay", path=tmp_path / "r")
    )
    lm = set_sampling_seed(build_lm(config, engine=engine), 5)
    lm("hello", temperature=0.8, n=3)
    lm("hello", temperature=0.8, rollout_id=1)
    assert seen == [
        5,
        candidate_seed(5, None, 1),
        candidate_seed(5, None, 2),
        candidate_seed(5, 1, 0),
    ]
    assert len(set(seen)) == 4


def test_demo_draws_follow_the_seed():
    trainset = _examples(12)

    def demos(seed: int) -> list[str]:
        built = build_optimizer(
            load_preset(ROOT / "optimizers" / "labeled-fewshot.yaml"), metric=None, seed=seed
        )
        compiled = compile_program(built, NLToIR(), trainset, [])
        return [d["id"] for _, p in compiled.named_predictors() for d in p.demos]

    assert demos(1) == demos(1)
    assert demos(1) != demos(2)


def test_simba_gets_the_run_seed():
    built = build_optimizer(
        load_preset(ROOT / "optimizers" / "simba.yaml"), metric=IRMetric(), seed=9, lm=None
    )
    assert built.compile_kwargs["seed"] == 9


@pytest.mark.local
@pytest.mark.slow
def test_the_embedded_engine_samples_with_the_request_seed():
    pytest.importorskip("llama_cpp", reason="the embedded engine needs the `local` extra")
    from liftdspy.lm.local_engine import LocalEngine

    engine = LocalEngine(n_threads=2)

    def text(seed: int) -> str:
        request = Request(
            model="local/smollm2-135m",
            messages=(Message.user("Suggest a name for a function that adds two numbers."),),
            config=Config(max_tokens=24, temperature=0.9, seed=seed),
        )
        return engine.complete(request).text

    first, again, other = text(11), text(11), text(12)
    assert first == again
    assert first != other


def test_an_experiment_passes_its_seed_to_the_optimizer_lm(tmp_path, monkeypatch):
    from test_runner import make_config

    from liftdspy.experiments.runner import run_experiment
    from liftdspy.tracking.run_record import read_run

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)

    def instructions(seed: int) -> set[str]:
        config = make_config(
            tmp_path / str(seed),
            seed=seed,
            optimizer={"preset": "copro", "init": {"breadth": 2, "depth": 1}},
            dataset={
                "paths": [str(ROOT / "datasets" / "core")],
                "max_train": 2,
                "max_val": 2,
                "max_eval": 2,
            },
        )
        outcome = run_experiment(
            config, lm_factory=lambda c: build_lm(c, engine=seeded_sampling_engine())
        )
        dspy.settings.configure(lm=None)
        candidates = read_run(outcome.run_id, config.tracking.uri).candidates
        return {p.instructions for c in candidates for p in c.predictors if "(" in p.instructions}

    one, two = instructions(1), instructions(2)
    assert one and two and one.isdisjoint(two)
