"""Lanes: several batch schedulers over one model's weights, one per group of cores.

A small model gains little from several llama.cpp compute threads: its matrices are too small
for the work of one step to outweigh the threads meeting at OpenMP barriers. Measured on
2 cores (SmolLM2-135M, a ~540-token prompt, `benchmarks/lm_under_load.py`): one thread decoded
~70 tokens/s, two threads with sleeping waits (`OMP_WAIT_POLICY=PASSIVE`) ~32, two spinning
threads 70-106 on an idle machine but ~11 beside two busy processes. So the engine runs one lane
per core by default: a `BatchScheduler` with its own llama.cpp context and one compute thread,
all lanes sharing the weights. `llama_decode` releases the GIL, so the lanes decode at once.
Prompt evaluation is the exception: a chunk of many tokens does gain from more threads (~2.4x
from two on the demo's prompts), so a lane evaluating a prompt while every other lane is idle
borrows their threads (`LanePool.prefill_threads`); one request at a time then evaluates its
prompt on every core and decodes on one.

A request goes to the lane with the fewest requests (running or waiting); among equally busy
lanes, to the one whose KV cache holds the longest prefix of its prompt (a system message and
demos evaluated there before), then the first. Prefix sharing works within a lane: each lane
evaluates a shared prefix once for itself.

The lanes change which requests share a batch, never what a request is: an answer decoded
alone is byte-identical on one lane of one thread and on one lane of two threads
(tests/test_lm_local_lanes.py); answers inside a batch are not claimed identical
(docs/concepts/embedded-engine.md).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

from liftdspy.lm.local.batch import BatchScheduler, SchedulerStats
from liftdspy.lm.local.prefix import common_prefix

if TYPE_CHECKING:
    from liftdspy.lm.local.decode import Generation, SequenceDecoder
    from liftdspy.lm.local.model import LoadedModel

logger = logging.getLogger(__name__)


class LanePool:
    """`lanes` batch schedulers on one model; `submit` picks a lane per request."""

    def __init__(self, model: LoadedModel, *, lanes: int, max_batch: int) -> None:
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, got {lanes}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        self.threads_per_lane = max(1, model.n_threads // lanes)
        per_lane = -(-max_batch // lanes)  # ceil: every lane holds at least one sequence
        self._load = [0] * lanes
        self._lock = threading.Lock()
        self.lanes = [
            BatchScheduler(
                model,
                max_batch=per_lane,
                n_threads=self.threads_per_lane,
                prefill_threads=functools.partial(self.prefill_threads, lane),
            )
            for lane in range(lanes)
        ]
        logger.info(
            "%s: %d lane(s) x %d sequence(s), %d thread(s) each",
            model.located.name,
            lanes,
            per_lane,
            self.threads_per_lane,
        )

    def submit(self, decoder: SequenceDecoder) -> Generation:
        """Decode `decoder`'s request on the lane `choose_lane` picks; block until it ends."""
        with self._lock:
            lane = choose_lane(self._load, [lane.cached_tokens() for lane in self.lanes], decoder)
            self._load[lane] += 1
        try:
            return self.lanes[lane].submit(decoder)
        finally:
            with self._lock:
                self._load[lane] -= 1

    def prefill_threads(self, lane: int) -> int:
        """Threads `lane` may evaluate a prompt with: every thread of the model while no other
        lane has a request, else its own (a request arriving on another lane meanwhile decodes
        beside the borrowed threads, the cores oversubscribed, for at most one chunk of
        `N_BATCH` tokens)."""
        with self._lock:
            load = list(self._load)
        return lendable_threads(load, lane, total=self.model.n_threads, own=self.threads_per_lane)

    def stats(self) -> SchedulerStats:
        """Every lane's counters added up (`max_active`: the busiest lane's)."""
        return merged_stats([lane.stats() for lane in self.lanes])

    def lane_stats(self) -> list[SchedulerStats]:
        return [lane.stats() for lane in self.lanes]

    def cached_tokens(self) -> list[list[int]]:
        """What each sequence of every lane holds, lane after lane."""
        return [tokens for lane in self.lanes for tokens in lane.cached_tokens()]

    def stop(self) -> None:
        for lane in self.lanes:
            lane.stop()

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


def choose_lane(load: list[int], cached: list[list[list[int]]], decoder: SequenceDecoder) -> int:
    """The least busy lane; among those, the one caching the longest prefix of the prompt."""
    least = min(load)
    candidates = [i for i, n in enumerate(load) if n == least]
    if len(candidates) == 1:
        return candidates[0]
    prompt = decoder.prompt

    def best_prefix(lane: int) -> int:
        return max((common_prefix(tokens, prompt) for tokens in cached[lane]), default=0)

    return max(candidates, key=lambda lane: (best_prefix(lane), -lane))


def lendable_threads(load: list[int], lane: int, *, total: int, own: int) -> int:
    """All `total` threads for `lane` while every other lane's load is 0, else its `own`."""
    others_idle = all(n == 0 for i, n in enumerate(load) if i != lane)
    return max(total, own) if others_idle else own


def merged_stats(parts: list[SchedulerStats]) -> SchedulerStats:
    total = SchedulerStats()
    for part in parts:
        for name, value in vars(part).items():
            if name == "batch_sizes":
                for size, steps in value.items():
                    total.batch_sizes[size] = total.batch_sizes.get(size, 0) + steps
            elif name == "max_active":
                total.max_active = max(total.max_active, value)
            else:
                setattr(total, name, getattr(total, name) + value)
    return total


_pools: dict[tuple[int, int], LanePool] = {}
_pools_lock = threading.Lock()


def pool_for(model: LoadedModel, *, lanes: int, max_batch: int) -> LanePool:
    """The one pool of `lanes` lanes on `model`, made on first use with room for `max_batch`
    sequences in all; engines asking later for the same lanes share it at that size."""
    with _pools_lock:
        pool = _pools.get((id(model), lanes))
        if pool is None:
            pool = LanePool(model, lanes=lanes, max_batch=max_batch)
            _pools[(id(model), lanes)] = pool
        elif pool.max_batch != max_batch:
            logger.info(
                "%s: the %d-lane pool holds %d sequences; max_batch=%d ignored",
                model.located.name,
                lanes,
                pool.max_batch,
                max_batch,
            )
        return pool
