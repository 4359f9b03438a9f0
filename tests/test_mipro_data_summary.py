"""MIPROv2's data summary fits the embedded model's context, and a failed one is an error.

The compile tests use the test-only `seeded_sampling_engine()` of test_seeds.py (a scripted
engine answering every JSON field); one variant refuses the summariser's prompt as the embedded
engine refuses an over-long one (`ContextLengthError`). The fit test measures the real prompt
with the embedded model's own tokenizer (`-m local`).
"""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest
from dspy.lm15 import Request
from dspy.propose.dataset_summary_generator import DatasetDescriptor, order_input_keys_in_string
from test_seeds import _examples, _lm, seeded_sampling_engine

from liftdspy.lm.recorder import RECORDER_MODE_ENV
from liftdspy.lm.store import request_json
from liftdspy.metrics import IRMetric
from liftdspy.optimize import build_optimizer, compile_program, load_preset
from liftdspy.optimize.data_summary import SUMMARY_FIELD_CHARS, DataSummaryError, summary_view
from liftdspy.programs import NLToIR

ROOT = Path(__file__).resolve().parents[1]
N_CTX = 8192


@pytest.fixture
def no_env_mode(monkeypatch):
    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)


def _mipro(tmp_path: Path, engine, **compile_kwargs):
    preset = load_preset(ROOT / "optimizers" / "mipro-small.yaml")
    preset = preset.model_copy(update={"init": {**preset.init, "max_bootstrapped_demos": 0}})
    lm = _lm(tmp_path, engine, 1)
    built = build_optimizer(preset, metric=IRMetric(), seed=1, valset_size=2, lm=lm)
    built.compile_kwargs.update(num_trials=1, minibatch=False, **compile_kwargs)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return compile_program(built, NLToIR(), _examples(3), _examples(2))


def _refusing_summaries():
    engine = seeded_sampling_engine()
    answer = engine.answer

    def refuse(request: Request, number: int):
        if "observations" in str(request_json(request).get("system")):
            from liftdspy.lm.local.engine import ContextLengthError

            raise ContextLengthError("the prompt has 8773 tokens, n_ctx is 8192", provider="x")
        return answer(request, number)

    engine.answer = refuse
    return engine


def test_a_failed_data_summary_is_an_error_not_a_silent_fallback(tmp_path, no_env_mode):
    with pytest.raises(DataSummaryError, match=r"data summary failed .*8773 tokens"):
        _mipro(tmp_path, _refusing_summaries())


def test_without_the_data_aware_proposer_nothing_is_summarised(tmp_path, no_env_mode):
    compiled = _mipro(tmp_path, _refusing_summaries(), data_aware_proposer=False)
    assert compiled.named_predictors()


def test_the_summariser_sees_capped_fields_and_demos_keep_theirs():
    trainset = _examples(12)
    view = summary_view(trainset)
    assert [v.toDict() for v in view] == [e.toDict() for e in trainset]
    assert view[0].inputs().keys() == trainset[0].inputs().keys()
    longest = max(len(str(v)) for e in trainset for v in e.values())
    assert longest > SUMMARY_FIELD_CHARS  # the cap does something on these rows
    assert len(repr(view)) < len(repr(trainset)) / 2
    assert type(view[0].copy()) is type(view[0])


@pytest.mark.local
def test_the_summary_prompt_of_the_demo_trainset_fits_the_embedded_context():
    pytest.importorskip("llama_cpp", reason="the embedded engine needs the `local` extra")
    from liftdspy.lm.local_engine import LocalEngine

    model = LocalEngine(n_threads=1).loaded()
    adapter = dspy.JSONAdapter()

    def prompt_tokens(trainset: list[dspy.Example]) -> int:
        examples = order_input_keys_in_string(repr(trainset[0:10]))
        messages = adapter.format(DatasetDescriptor, demos=[], inputs={"examples": examples})
        return len(model.tokenize_text("\n".join(m["content"] for m in messages).encode()))

    trainset = _examples(12)  # the demo's max_train
    assert prompt_tokens(trainset) > N_CTX  # what DSPy sent before: over the context
    assert prompt_tokens(summary_view(trainset)) < N_CTX // 2
