"""Batched decoding in the embedded engine, with the real SmolLM2-135M model.

Concurrent `LocalEngine.complete` calls on one lane share one llama.cpp context
(liftdspy.lm.local.batch). What is claimed and tested (docs/concepts/embedded-engine.md): an
answer decoded alone repeats byte for byte; inside a batch every answer keeps its own finish
reason and reporting; a seeded sampled answer follows its own request; requests join mid-batch,
fail alone, share a cached prefix and wait for a free sequence. Lanes: tests/test_lm_local_lanes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from dspy.lm15 import Config, Message, Request, Response

from liftdspy.lm.local import LocalEngine
from liftdspy.lm.models import ModelNotFoundError, locate_model

pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the `local` extra")
pytest.importorskip("xgrammar", reason="xgrammar is in the `local` extra")
try:
    locate_model("smollm2-135m")
except ModelNotFoundError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"SmolLM2 GGUF not installed: {exc}", allow_module_level=True)

pytestmark = pytest.mark.local

SYSTEM = (
    "You turn a request for a Python function into a JSON intermediate representation with "
    "the function's intent, signature (name, parameters, returns), effects, assertions and holes."
)


def ir_format() -> dict:
    """The response_format DSPy's JSONAdapter sends for the NL->IR signature."""
    from liftdspy.dspy_compat import strict_json_schema, structured_outputs_response_format
    from liftdspy.programs.signatures import NLToIRSignature

    schema = structured_outputs_response_format(NLToIRSignature).model_json_schema()
    return {
        "type": "json_schema",
        "name": "DSPyProgramOutputs",
        "strict": True,
        "schema": strict_json_schema(schema),
    }


def request(prompt: str, system: str = SYSTEM, **config: Any) -> Request:
    return Request(
        model="local/smollm2-135m",
        messages=(Message.user(prompt),),
        system=system,
        config=Config(**config),
    )


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    """One lane of two threads: these tests are about what one scheduler batches."""
    return LocalEngine(n_threads=2, lanes=1)


def answer(response: Response) -> tuple:
    """What must not depend on the batch: text, end, tokens, forced tokens, budget close."""
    local = response.provider_data["local"]
    return (
        response.text,
        response.finish_reason,
        response.usage.input_tokens,
        response.usage.output_tokens,
        local["forced_tokens"],
        local["budget_closed"],
    )


def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread at once; results (or the exception raised) in order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results


def mixed_requests() -> list[Request]:
    """Four requests unlike each other: two grammar-constrained IRs (one closed by its budget),
    free text that ends on its own, and a seeded sampled answer."""
    return [
        request(
            "Write a function that counts the vowels in a string.",
            max_tokens=160,
            temperature=0.0,
            response_format=ir_format(),
        ),
        request(
            "Write a function is_palindrome(s) that checks whether a string reads the same "
            "backwards.",
            max_tokens=120,
            temperature=0.0,
            response_format=ir_format(),
        ),
        request("Reply with one word: yes or no?", max_tokens=40, temperature=0.0),
        request("Name three colours.", max_tokens=24, temperature=0.8, seed=7),
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)  # eight answers on two shared cores
def test_alone_answers_repeat_and_batched_answers_keep_their_reporting(engine: LocalEngine) -> None:
    """What the README claims: an answer decoded alone is byte-identical on every repeat; inside a
    batch the text may differ (llama.cpp's batched float sums; seen in the full suite on
    2026-12-04), but every answer is still complete or reported cut, the same way."""
    requests = mixed_requests()
    alone = [engine.complete(r) for r in requests]
    assert [answer(engine.complete(r)) for r in requests] == [answer(r) for r in alone]
    before = engine.scheduler_stats()
    together = concurrently([lambda r=r: engine.complete(r) for r in requests])
    after = engine.scheduler_stats()
    assert all(isinstance(r, Response) for r in together), together
    assert [r.finish_reason for r in together] == [r.finish_reason for r in alone]
    # They were decoded together: steps with more than one sequence, up to all four.
    batched = {
        size: after.batch_sizes.get(size, 0) - before.batch_sizes.get(size, 0)
        for size in after.batch_sizes
    }
    assert any(size >= 3 and steps > 0 for size, steps in batched.items()), batched
    # What the batch must still report per answer: the IR closed by its budget, the free text
    # that ended on its own.
    assert alone[1].finish_reason == "length" and alone[1].provider_data["local"]["budget_closed"]
    assert alone[1].provider_data["local"]["forced_tokens"] > 0
    assert alone[2].finish_reason == "stop"


@pytest.mark.slow
def test_a_seeded_sampled_answer_follows_its_own_request(engine: LocalEngine) -> None:
    ask = request("Name three colours.", max_tokens=16, temperature=1.0, seed=11)
    other = request("Name three colours.", max_tokens=16, temperature=1.0, seed=12)
    first, second, third = concurrently([lambda r=r: engine.complete(r) for r in (ask, ask, other)])
    assert first.text == second.text  # same request, same seed: same answer beside each other
    assert engine.complete(ask).text == first.text  # and alone
    greedy = request("Name three colours.", max_tokens=16, temperature=0.0)
    assert len({engine.complete(greedy).text for _ in range(2)}) == 1
    assert third.text != first.text  # another seed, another random stream


@pytest.mark.slow
def test_a_request_arriving_mid_batch_joins_at_the_next_step(engine: LocalEngine) -> None:
    long_one = request("Write a short story about a robot.", max_tokens=60, temperature=0.0)
    short_one = request("Say hello.", max_tokens=4, temperature=0.0)
    alone_long, alone_short = engine.complete(long_one), engine.complete(short_one)
    before = engine.scheduler_stats()
    results: dict[str, Response] = {}
    runner = threading.Thread(target=lambda: results.update(long=engine.complete(long_one)))
    runner.start()
    deadline = time.monotonic() + 300
    while engine.scheduler_stats().steps < before.steps + 5:  # the long one is decoding
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.02)
    results["short"] = engine.complete(short_one)  # joins, finishes early, leaves
    assert runner.is_alive()  # the long one was still running when the short one ended
    runner.join(timeout=300)
    after = engine.scheduler_stats()
    assert after.joined_running == before.joined_running + 1
    assert after.batch_sizes.get(2, 0) > before.batch_sizes.get(2, 0)
    assert answer(results["short"]) == answer(alone_short)
    assert answer(results["long"]) == answer(alone_long)


@pytest.mark.slow
def test_a_failing_request_does_not_stop_the_others(engine: LocalEngine) -> None:
    """Fault injection (a decoder made to raise mid-answer), beside real requests."""
    from liftdspy.lm.local.decode import Sampling, SequenceDecoder

    class FailingDecoder(SequenceDecoder):
        """Raises at its fourth token, as a grammar or sampling error would."""

        def step(self, logits):  # type: ignore[no-untyped-def]
            if len(self.out) == 3:
                raise RuntimeError("injected failure at token 4")
            return super().step(logits)

    model = engine.loaded()
    tokens = model.tokenize_prompt(
        model.template.render([_turn("system", SYSTEM), _turn("user", "Count to ten.")])
    )
    failing = FailingDecoder(model, tokens, None, max_tokens=30, sampling=Sampling())
    good = [
        request("Write a function that reverses a list.", max_tokens=40, temperature=0.0),
        request("Reply with one word: yes or no?", max_tokens=40, temperature=0.0),
    ]
    alone = [engine.complete(r) for r in good]
    outcome = concurrently(
        [lambda: engine.pool(model).submit(failing)]
        + [lambda r=r: engine.complete(r) for r in good]
    )
    assert isinstance(outcome[0], RuntimeError) and "injected failure" in str(outcome[0])
    assert [answer(r) for r in outcome[1:]] == [answer(r) for r in alone]
    # The scheduler keeps serving.
    assert answer(engine.complete(good[1])) == answer(alone[1])


@pytest.mark.slow
def test_a_shared_system_prompt_is_evaluated_once(engine: LocalEngine) -> None:
    system = SYSTEM + " " + " ".join(f"Rule {i}: keep names short and clear." for i in range(40))
    asks = [
        request(f"Write a function that returns {what}.", system=system, max_tokens=6)
        for what in ("the square of x", "the cube of x", "the sign of x")
    ]
    before = engine.scheduler_stats()
    together = concurrently([lambda r=r: engine.complete(r) for r in asks])
    after = engine.scheduler_stats()
    evaluated = [r.provider_data["local"]["prompt_tokens_evaluated"] for r in together]
    prompt = together[0].usage.input_tokens
    # The ~400-token system prompt was evaluated by one request; the others copied its cache.
    assert sorted(evaluated)[1] < prompt / 4, evaluated
    assert after.prefix_copies >= before.prefix_copies + 2
    assert [answer(r) for r in together] == [answer(engine.complete(r)) for r in asks]


@pytest.mark.slow
def test_more_requests_than_sequences_wait_for_a_free_one(engine: LocalEngine) -> None:
    """A scheduler of two sequences (its own context) serving four requests at once."""
    from liftdspy.lm.local.batch import BatchScheduler
    from liftdspy.lm.local.decode import Sampling, SequenceDecoder

    model = engine.loaded()
    small = BatchScheduler(model, max_batch=2)
    try:
        prompts = ["Say hello.", "Say goodbye.", "Name a fruit.", "Name a tree."]
        decoders = [
            SequenceDecoder(
                model,
                model.tokenize_prompt(
                    model.template.render([_turn("system", SYSTEM), _turn("user", p)])
                ),
                None,
                max_tokens=8,
                sampling=Sampling(),
            )
            for p in prompts
        ]
        results = concurrently([lambda d=d: small.submit(d) for d in decoders])
        stats = small.stats()
        assert stats.max_active == 2 and stats.sequences == 4
        alone = [engine.complete(request(p, max_tokens=8, temperature=0.0)).text for p in prompts]
        assert [g.text for g in results] == alone
    finally:
        small.close()


def _turn(role: str, text: str) -> Any:
    from liftdspy.lm.local_chat import ChatTurn

    return ChatTurn(role, text)
