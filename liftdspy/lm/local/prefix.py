"""Which sequence a new prompt gets, and how much of its prompt is already in the KV cache.

The batch scheduler (`liftdspy.lm.local.batch`) keeps, per sequence id, the tokens its KV stream
holds. These functions decide, for a prompt that joins: which free sequence it takes, the prefix
to keep, and whether to copy that prefix from another sequence's cache first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Prompt tokens evaluated again even when the cache holds them all (the logits of the last one
# are needed, and the previous engine re-decoded two: answers stay those of a fresh run).
KEEP_LAST = 2
# Copy another sequence's cache only when it shares this many more tokens than the free one.
MIN_COPY_TOKENS = 32


@dataclass
class Slot:
    """One sequence id of the context and the tokens its KV stream holds (positions 0..n-1)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    job: Any = None  # the scheduler's job decoding on it, None when free


def place(slots: list[Slot], prompt: list[int]) -> tuple[Slot, int, Slot | None]:
    """A free sequence for `prompt`, the prefix to keep, and the sequence to copy it from
    (None: keep the free sequence's own cache). Prefers low ids: llama.cpp decodes a run of
    consecutive sequence ids in one pass."""
    limit = max(len(prompt) - KEEP_LAST, 0)
    shared = {s.seq_id: min(common_prefix(s.tokens, prompt), limit) for s in slots}
    free = [s for s in slots if s.job is None]
    best_free = max(free, key=lambda s: (shared[s.seq_id], -s.seq_id))
    best = max(slots, key=lambda s: (shared[s.seq_id], s.job is None, -s.seq_id))
    if shared[best.seq_id] - shared[best_free.seq_id] >= MIN_COPY_TOKENS:
        target = min(free, key=lambda s: (shared[s.seq_id], s.seq_id))
        return target, shared[best.seq_id], best
    if shared[best_free.seq_id] < MIN_COPY_TOKENS:
        best_free = free[0]  # nothing worth keeping: the lowest free id
    return best_free, shared[best_free.seq_id], None


def prefix_coming(slots: list[Slot], pending: list[list[int]], prompt: list[int]) -> bool:
    """Whether a prompt admitted this step and not yet evaluated (`pending`) shares more of
    `prompt` than any cache holds: then `prompt` waits one step and copies it (requests arriving
    together share their system prompt instead of each evaluating it)."""
    limit = max(len(prompt) - KEEP_LAST, 0)
    cached = max(min(common_prefix(s.tokens, prompt), limit) for s in slots)
    return any(min(common_prefix(p, prompt), limit) - cached >= MIN_COPY_TOKENS for p in pending)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
