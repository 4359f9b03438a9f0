"""Lanes (liftdspy.lm.local.lanes): one batch scheduler per core over the same weights.

The routing rule is logic, tested on plain lists; what the lanes do to answers is tested with the
real SmolLM2-135M model: requests in flight spread over the lanes, and an answer decoded alone on
a lane of one thread is byte-identical to the same request on a lane of two threads.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from liftdspy.lm.local.batch import SchedulerStats
from liftdspy.lm.local.lanes import choose_lane, lendable_threads, merged_stats


def _decoder(prompt: list[int]) -> SimpleNamespace:
    return SimpleNamespace(prompt=prompt)


def test_a_request_goes_to_the_least_busy_lane() -> None:
    cached = [[[1, 2, 3, 4]], [[]], [[]]]
    # Lane 0 caches the whole prompt but runs two requests: the idle lane 1 wins.
    assert choose_lane([2, 0, 0], cached, _decoder([1, 2, 3, 4, 5])) == 1
    assert choose_lane([0, 1, 0], [[[]], [[]], [[]]], _decoder([7])) == 0


def test_among_equally_busy_lanes_the_longest_cached_prefix_wins_then_the_first() -> None:
    cached = [[[9, 9], []], [[1, 2, 0]], [[1, 2, 3, 8], [5]]]
    assert choose_lane([1, 1, 1], cached, _decoder([1, 2, 3, 4])) == 2
    assert choose_lane([1, 1, 3], cached, _decoder([1, 2, 3, 4])) == 1
    assert choose_lane([0, 0, 0], [[[]], [[]], [[]]], _decoder([1, 2])) == 0


def test_a_lane_borrows_every_thread_for_a_prompt_only_while_the_other_lanes_are_idle() -> None:
    assert lendable_threads([1, 0], 0, total=2, own=1) == 2
    assert lendable_threads([1, 1], 0, total=2, own=1) == 1
    assert lendable_threads([0, 0, 3], 2, total=6, own=2) == 6
    assert lendable_threads([0, 1, 3], 2, total=6, own=2) == 2
    assert lendable_threads([4], 0, total=2, own=2) == 2  # one lane: its own threads


def test_the_pool_adds_its_lanes_counters() -> None:
    a = SchedulerStats(steps=3, tokens_decoded=10, max_active=2, decode_seconds=1.5)
    a.batch_sizes = {1: 1, 2: 2}
    b = SchedulerStats(steps=4, tokens_decoded=5, max_active=3, decode_seconds=0.5)
    b.batch_sizes = {2: 1, 3: 3}
    total = merged_stats([a, b])
    assert (total.steps, total.tokens_decoded, total.max_active) == (7, 15, 3)
    assert total.decode_seconds == pytest.approx(2.0)
    assert total.batch_sizes == {1: 1, 2: 3, 3: 3}


@pytest.mark.local
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lanes_share_the_requests_and_change_no_answer_decoded_alone() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the `local` extra")
    from test_lm_local_batch import SYSTEM, answer, concurrently, ir_format, request

    from liftdspy.lm.local import LocalEngine

    two_lanes = LocalEngine(n_threads=2)  # the default: one lane per thread
    one_lane = LocalEngine(n_threads=2, lanes=1)
    assert (two_lanes.lanes, one_lane.lanes) == (2, 1)
    assert two_lanes.info()["lanes"] == "2 x 1 thread(s)"
    # Engines on one model share their lanes and the lanes' prefix caches, so a system message
    # no other test sends keeps the prompt uncached: its evaluation is a chunk of >= 64 tokens.
    system = "Lanes test. " + SYSTEM
    asks = [
        request(what, system=system, max_tokens=160, temperature=0.0, response_format=ir_format())
        for what in (
            "Write a function that counts the vowels in a string.",
            "Write a function that returns the largest of three numbers.",
            "Write a function that reverses the words of a sentence.",
            "Write a function that tells whether a year is a leap year.",
        )
    ]
    # Alone: the same bytes on a lane of one thread (its prompt evaluated on both cores, the
    # other lane being idle) as on a lane of two.
    wide_before = two_lanes.pool().stats().wide_chunks
    alone_one_thread = [answer(two_lanes.complete(r)) for r in asks[:2]]
    assert two_lanes.pool().stats().wide_chunks > wide_before
    assert alone_one_thread == [answer(one_lane.complete(r)) for r in asks[:2]]
    # In flight together: both lanes decode, and every answer ends as it does alone.
    before = [lane.steps for lane in two_lanes.pool().lane_stats()]
    together = concurrently([lambda r=r: two_lanes.complete(r) for r in asks])
    after = [lane.steps for lane in two_lanes.pool().lane_stats()]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    alone = [two_lanes.complete(r) for r in asks]
    assert [r.finish_reason for r in together] == [r.finish_reason for r in alone]
    assert threading.active_count() < 50  # one worker per lane, not one per request
