"""The batch scheduler: one llama.cpp context decodes every concurrent request of a model.

Calls to `LocalEngine.complete` from several threads (DSPy's `num_threads`, `dspy.Evaluate`, a
study's cells in one process) each hand a `SequenceDecoder` to `BatchScheduler.submit` and wait.
One worker thread owns the llama.cpp context and runs steps:

1. Requests that arrived since the last step join (up to `max_batch` sequences; later ones
   wait for a free sequence). Each gets a sequence id (a KV stream of `n_ctx` positions) and the
   longest prompt prefix already in the KV cache: the tokens its sequence still holds from its
   last call, or, when another sequence (running or idle) shares more, a copy of that sequence's
   cache (`llama_memory_seq_cp`) cut to the shared prefix. A system message and demos common to
   the requests are so evaluated once and stay cached between calls. At least the last two prompt
   tokens are always evaluated again (see `liftdspy.lm.local.prefix.KEEP_LAST`).
2. One `llama_decode` (split in chunks of `N_BATCH` tokens when prompts are long) feeds every
   active sequence what it needs next: a joining sequence its uncached prompt, the others the
   token they sampled plus any text the grammar forces (jump-forward).
3. Each sequence takes its logits (`llama_get_logits_ith`) and picks its next token with its own
   grammar matcher and random stream. A finished sequence returns its `Generation` to its caller
   and frees its sequence id; its KV stays cached for the next request.

A request that fails (its grammar rejects a token, a decode error on its tokens) fails alone:
its caller gets the exception, the other sequences go on.

Determinism (measured limits in docs/concepts/embedded-engine.md): one KV stream per sequence
(`kv_unified=False`) and no flash
attention, so each sequence's attention reads only its own cache, in position order, and every
matrix product of llama.cpp's CPU backend computes each output from one token's row: measured on
SmolLM2 with llama-cpp-python 0.3.36, short-prompt answers are byte-identical alone and in a
batch (tests/test_lm_local_batch.py), but ~2,100-token prompts in batches of 4-8 gave different
answers for some requests (cause not yet found; docs/concepts/embedded-engine.md).
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dspy.lm15 import InvalidRequestError

from liftdspy.errors import LiftdspyError
from liftdspy.lm.local.decode import PROVIDER, Generation, SequenceDecoder
from liftdspy.lm.local.model import LoadedModel, require_llama_cpp
from liftdspy.lm.local.prefix import Slot, place, prefix_coming

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 8
# A chunk of this many tokens or more is prompt evaluation, which gains from more threads (on
# 2 cores, SmolLM2-135M evaluated a prompt ~2.4x faster on two threads than on one, while a
# step of a few tokens was faster on one): see `BatchScheduler(prefill_threads=)`.
WIDE_CHUNK_TOKENS = 64

# Tokens per llama_decode call (and per physical batch): the Llama class's default.
N_BATCH = 512


class BatchDecodeError(LiftdspyError, InvalidRequestError):
    """llama.cpp refused a batch holding this request's tokens (the others go on)."""


@dataclass
class SchedulerStats:
    """Counters of one scheduler since it was made (for tests and benchmarks)."""

    steps: int = 0
    decode_calls: int = 0
    tokens_decoded: int = 0
    sequences: int = 0
    joined_running: int = 0
    max_active: int = 0
    prefix_copies: int = 0
    reused_tokens: int = 0
    failed: int = 0
    # Prompt chunks decoded with more threads than the lane's own (the other lanes were idle).
    wide_chunks: int = 0
    # Wall seconds the worker spent in llama_decode, and in the sequences' own work between
    # decodes (logits copy, grammar mask, sampling, jump-forward, budget check).
    decode_seconds: float = 0.0
    sequence_seconds: float = 0.0
    # How many sequences each step decoded: {batch size: steps}.
    batch_sizes: dict[int, int] = field(default_factory=dict)


class _Job:
    """One request inside the scheduler."""

    def __init__(self, decoder: SequenceDecoder) -> None:
        self.decoder = decoder
        self.done = threading.Event()
        self.generation: Generation | None = None
        self.error: BaseException | None = None
        self.slot: Slot | None = None
        self.feed: list[int] = []
        self.reused = 0
        self.admitted = 0.0
        self.first_logits: float | None = None


class BatchScheduler:
    """One llama.cpp context with `max_batch` sequences, decoded together by a worker thread."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        n_threads: int | None = None,
        prefill_threads: Callable[[], int] | None = None,
    ) -> None:
        """`n_threads`: llama.cpp compute threads of this context (default the model's).

        `prefill_threads`: asked before each chunk of at least `WIDE_CHUNK_TOKENS` tokens (a
        prompt being evaluated) for how many threads it may use; None always uses `n_threads`.
        A lane pool lends a lone busy lane the idle lanes' cores this way: prompt evaluation
        gains from more threads where a one-token step does not.
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        llama_cpp = require_llama_cpp()
        from llama_cpp import _internals

        self.model = model
        self.max_batch = max_batch
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = model.n_ctx * max_batch
        params.n_batch = N_BATCH
        params.n_ubatch = N_BATCH
        params.n_seq_max = max_batch
        self.n_threads = n_threads or model.n_threads
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.kv_unified = False
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._prefill_threads = prefill_threads
        self._batch_threads = self.n_threads
        self._llama_cpp = llama_cpp
        self._context = _internals.LlamaContext(
            model=model.llama._model, params=params, verbose=False
        )
        per_sequence = llama_cpp.llama_n_ctx_seq(self._context.ctx)
        if per_sequence < model.n_ctx:
            raise ValueError(
                f"llama.cpp gives each of {max_batch} sequences {per_sequence} positions, fewer "
                f"than n_ctx={model.n_ctx}; lower max_batch or n_ctx"
            )
        self._memory = self._context.memory
        self._batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)
        self._slots = [Slot(seq_id) for seq_id in range(max_batch)]
        self._queue: collections.deque[_Job] = collections.deque()
        self._active: list[_Job] = []
        self._cond = threading.Condition()
        self._stats = SchedulerStats()
        self._stats_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stopping = False
        atexit.register(self.stop)
        logger.info(
            "%s: batch context of %d sequences x %d positions, %d threads",
            model.located.name,
            max_batch,
            per_sequence,
            self.n_threads,
        )

    # -- callers' side -------------------------------------------------------------------

    def submit(self, decoder: SequenceDecoder) -> Generation:
        """Decode `decoder`'s request with whatever else is running; block until it ends."""
        job = _Job(decoder)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the local engine's scheduler has stopped (process exit)")
            self._queue.append(job)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name=f"liftdspy-local-{self.model.located.name}", daemon=True
                )
                self._worker.start()
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.generation is not None
        return job.generation

    def stats(self) -> SchedulerStats:
        with self._stats_lock:
            copy = SchedulerStats(**vars(self._stats))
            copy.batch_sizes = dict(self._stats.batch_sizes)
            return copy

    def cached_tokens(self) -> list[list[int]]:
        """What each sequence's KV stream holds (a copy), by sequence id."""
        with self._cond:
            return [list(slot.tokens) for slot in self._slots]

    def stop(self) -> None:
        """Let the worker finish its step and exit (at interpreter exit, before llama.cpp's
        objects are freed under a running decode)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=30)

    def close(self) -> None:
        """Stop the worker and free the context's memory (a scheduler made apart from
        `scheduler_for`; the shared one lives as long as the process)."""
        self.stop()
        self._batch.close()
        self._context.close()

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._active and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    waiting = list(self._queue) + list(self._active)
                    self._queue.clear()
                    break
                arrivals = []
                while self._queue and len(self._active) + len(arrivals) < self.max_batch:
                    arrivals.append(self._queue.popleft())
            try:
                deferred = [job for job in arrivals if not self._admit(job)]
                if deferred:
                    with self._cond:
                        self._queue.extendleft(reversed(deferred))
                if self._active:
                    self._step()
            except Exception as exc:  # a bug here must not leave callers waiting forever
                logger.exception("local engine scheduler step failed; failing its requests")
                for job in list(self._active):
                    self._fail(job, exc)
                self._reset_cache()
        for job in waiting:
            self._fail(job, RuntimeError("the local engine stopped (process exit)"))

    def _admit(self, job: _Job) -> bool:
        """Give `job` a sequence and its cached prefix; False to let it wait one step."""
        if self._prefix_coming(job.decoder.prompt):
            return False
        job.admitted = time.perf_counter()
        try:
            first = job.decoder.start()
        except Exception as exc:
            self._fail(job, exc)
            return True
        if first is None:  # ended before the model was asked (the grammar forced it all)
            self._finish(job)
            return True
        running = any(other.first_logits is not None for other in self._active)
        with self._cond:
            slot, keep, source = self._place(job.decoder.prompt)
            slot.job = job
        if source is not None:
            self._copy_prefix(source, slot, keep)
        else:
            self._trim(slot, keep)
        job.slot = slot
        job.reused = len(slot.tokens)
        job.feed = job.decoder.prompt[job.reused :] + first
        self._active.append(job)
        with self._stats_lock:
            self._stats.sequences += 1
            self._stats.joined_running += running
            self._stats.reused_tokens += job.reused
            self._stats.prefix_copies += source is not None
            self._stats.max_active = max(self._stats.max_active, len(self._active))
        return True

    def _prefix_coming(self, prompt: list[int]) -> bool:
        """Whether `prompt` should wait one step for a prefix being evaluated now."""
        pending = [job.decoder.prompt for job in self._active if job.first_logits is None]
        return prefix_coming(self._slots, pending, prompt)

    def _place(self, prompt: list[int]) -> tuple[Slot, int, Slot | None]:
        return place(self._slots, prompt)

    def _trim(self, slot: Slot, keep: int) -> None:
        if len(slot.tokens) > keep:
            llama_cpp = self._llama_cpp
            if keep == 0 or not llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
                llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
                keep = 0
        slot.tokens = slot.tokens[:keep]

    def _copy_prefix(self, source: Slot, slot: Slot, keep: int) -> None:
        # Across KV streams llama.cpp copies a whole stream; then cut it to the shared prefix.
        llama_cpp = self._llama_cpp
        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        llama_cpp.llama_memory_seq_cp(self._memory, source.seq_id, slot.seq_id, -1, -1)
        slot.tokens = list(source.tokens)
        self._trim(slot, keep)

    def _step(self) -> None:
        """One round: feed every active sequence, then let each take its logits."""
        jobs = sorted(self._active, key=lambda j: j.slot.seq_id)  # type: ignore[union-attr]
        entries = [(job, i) for job in jobs for i in range(len(job.feed))]
        logits: dict[int, Any] = {}
        failed: set[int] = set()
        for start in range(0, len(entries), N_BATCH):
            chunk = [
                entry for entry in entries[start : start + N_BATCH] if id(entry[0]) not in failed
            ]
            if chunk:
                self._decode_chunk(chunk, logits, failed)
        decoded = time.perf_counter()
        with self._stats_lock:
            self._stats.steps += 1
            self._stats.batch_sizes[len(jobs)] = self._stats.batch_sizes.get(len(jobs), 0) + 1
        for job in jobs:
            if id(job) in failed:
                continue
            assert job.slot is not None
            job.slot.tokens.extend(job.feed)
            if job.first_logits is None:
                job.first_logits = time.perf_counter()
            try:
                feed = job.decoder.step(logits[id(job)])
            except Exception as exc:
                self._fail(job, exc)
                continue
            if feed is None:
                self._finish(job)
            elif not feed:
                self._fail(job, RuntimeError("the decoder asked for logits without a token"))
            else:
                job.feed = feed
        with self._stats_lock:
            self._stats.sequence_seconds += time.perf_counter() - decoded

    def _decode_chunk(
        self, chunk: list[tuple[_Job, int]], logits: dict[int, Any], failed: set[int]
    ) -> None:
        import numpy as np

        llama_cpp = self._llama_cpp
        batch = self._batch.batch
        batch.n_tokens = len(chunk)
        last: list[tuple[_Job, int]] = []
        for k, (job, i) in enumerate(chunk):
            assert job.slot is not None
            batch.token[k] = job.feed[i]
            batch.pos[k] = len(job.slot.tokens) + i
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = job.slot.seq_id
            is_last = i == len(job.feed) - 1
            batch.logits[k] = is_last
            if is_last:
                last.append((job, k))
        wide = self._set_batch_threads(len(chunk))
        started = time.perf_counter()
        code = llama_cpp.llama_decode(self._context.ctx, batch)
        with self._stats_lock:
            self._stats.decode_seconds += time.perf_counter() - started
            self._stats.decode_calls += 1
            self._stats.tokens_decoded += len(chunk)
            self._stats.wide_chunks += wide
        if code != 0:
            # 1: no room in the KV cache, -1: invalid batch (state restored); < -1 or 2: the
            # state is unknown. Either way fail the requests in this chunk and forget their caches.
            names = sorted({job.slot.seq_id for job, _ in chunk if job.slot is not None})
            error = BatchDecodeError(
                f"local model {self.model.located.name}: llama_decode returned {code} for a "
                f"batch of {len(chunk)} tokens (sequences {names})",
                provider=PROVIDER,
            )
            for job in {id(j): j for j, _ in chunk}.values():
                failed.add(id(job))
                self._forget(job.slot)
                self._fail(job, error)
            return
        n_vocab = self.model.n_vocab
        for job, k in last:
            row = llama_cpp.llama_get_logits_ith(self._context.ctx, k)
            logits[id(job)] = np.ctypeslib.as_array(row, shape=(n_vocab,)).copy()

    def _set_batch_threads(self, n_tokens: int) -> bool:
        """Set the threads llama.cpp uses for a batch of `n_tokens` (it uses `n_threads_batch`
        for any batch of more than one token); True when that is more than the lane's own."""
        threads = self.n_threads
        if self._prefill_threads is not None and n_tokens >= WIDE_CHUNK_TOKENS:
            threads = max(self.n_threads, self._prefill_threads())
        if threads != self._batch_threads:
            self._llama_cpp.llama_set_n_threads(self._context.ctx, self.n_threads, threads)
            self._batch_threads = threads
        return threads > self.n_threads

    def _forget(self, slot: Slot | None) -> None:
        if slot is not None:
            self._llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            slot.tokens = []

    def _reset_cache(self) -> None:
        self._llama_cpp.llama_memory_clear(self._memory, True)
        with self._cond:
            for slot in self._slots:
                slot.tokens = []
                slot.job = None
        self._active.clear()

    def _finish(self, job: _Job) -> None:
        now = time.perf_counter()
        first = job.first_logits if job.first_logits is not None else now
        try:
            job.generation = job.decoder.generation(
                reused=job.reused,
                prompt_seconds=first - job.admitted,
                decode_seconds=now - first,
            )
        except Exception as exc:
            self._fail(job, exc)
            return
        self._release(job)
        job.done.set()

    def _fail(self, job: _Job, error: BaseException) -> None:
        job.error = error
        with self._stats_lock:
            self._stats.failed += 1
        self._release(job)
        job.done.set()

    def _release(self, job: _Job) -> None:
        if job in self._active:
            self._active.remove(job)
        if job.slot is not None:
            with self._cond:
                job.slot.job = None
            job.slot = None
