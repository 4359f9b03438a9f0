"""One GGUF model loaded by llama.cpp for the process: weights, tokenizer, vocabulary, grammars.

`load_model` keeps one `LoadedModel` per (file, n_ctx, n_threads) for the life of the process;
every `LocalEngine` with those settings shares it, and the one `BatchScheduler` that decodes its
requests (`liftdspy.lm.local.batch.scheduler_for`).

`llama_cpp` is imported lazily (`require_llama_cpp`): this module imports without the `local`
extra.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from typing import Any

from liftdspy.lm.grammar import GrammarCompiler
from liftdspy.lm.local_chat import CHAT_TEMPLATES, ChatTemplate
from liftdspy.lm.models import LocatedModel

logger = logging.getLogger(__name__)


def require_llama_cpp() -> Any:
    """Import llama_cpp, first making its OpenMP threads sleep at barriers instead of spinning.

    llama.cpp's CPU build runs every op on an OpenMP team; with libgomp's default (spin) policy a
    thread that waits at a barrier burns its core, so on a busy machine (sandbox workers, other
    processes) one descheduled thread stalls the others: measured on 2 cores at load ~10, decoding
    fell from ~22 to 0.6 tokens/s (benchmarks/lm_under_load.py). `OMP_WAIT_POLICY=PASSIVE` costs
    ~20% decode speed on an idle machine and keeps a busy one proportional. libgomp reads it once,
    when llama.cpp's library is loaded, so it is set here unless the user set any OpenMP policy.
    """
    if "llama_cpp" not in sys.modules and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(
        os.environ
    ):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            "the embedded local engine needs llama-cpp-python: install liftdspy's `local` extra "
            "(pip install 'liftdspy[local]')"
        ) from exc
    return llama_cpp


class LoadedModel:
    """One llama.cpp model in memory: its weights, tokenizer, vocabulary and grammar compiler.

    `llama` is llama-cpp-python's `Llama` (the weights, the tokenizer, and a single-sequence
    context of `n_ctx` tokens that benchmarks use directly); the engine decodes in the batch
    context of its `BatchScheduler` instead, which shares these weights.
    """

    def __init__(self, located: LocatedModel, *, n_ctx: int, n_threads: int, seed: int) -> None:
        llama_cpp = require_llama_cpp()
        started = time.perf_counter()
        self.located = located
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.template: ChatTemplate = CHAT_TEMPLATES[located.chat_format]
        self.lock = threading.RLock()
        self.llama = llama_cpp.Llama(
            model_path=str(located.path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed,
            verbose=False,
        )
        self.n_vocab = self.llama.n_vocab()
        self.stop_token_ids = self._stop_token_ids()
        self._compiler: GrammarCompiler | None = None
        self._pieces: list[bytes] | None = None
        logger.info(
            "loaded %s (%s) in %.1f s: n_ctx=%d n_threads=%d",
            located.name,
            located.path,
            time.perf_counter() - started,
            n_ctx,
            n_threads,
        )

    def _stop_token_ids(self) -> list[int]:
        ids = {self.llama.token_eos(), self.llama._model.token_eot()}
        marker = self.llama.tokenize(
            self.template.end_of_turn.encode(), add_bos=False, special=True
        )
        if len(marker) == 1:
            ids.add(marker[0])
        return sorted(i for i in ids if 0 <= i < self.n_vocab)

    # Tokenizing reads only the vocabulary: safe from any thread while the scheduler decodes.

    def tokenize_prompt(self, text: str) -> list[int]:
        add_bos = bool(self.llama._model.add_bos_token())
        return self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def tokenize_text(self, text: bytes) -> list[int]:
        """Tokens of a piece of output text (no BOS, special markers not parsed)."""
        return self.llama.tokenize(text, add_bos=False, special=False)

    def detokenize(self, tokens: list[int]) -> bytes:
        return self.llama.detokenize(tokens)

    def pieces(self) -> list[bytes]:
        """The vocabulary's bytes, computed once."""
        with self.lock:
            if self._pieces is None:
                self._pieces = self.vocabulary()
            return self._pieces

    def vocabulary(self) -> list[bytes]:
        """Every token's bytes as they appear in text; control tokens are empty (xgrammar's
        sign of a special token)."""
        llama_cpp = require_llama_cpp()
        vocab = self.llama._model.vocab
        size = 64
        buffer = ctypes.create_string_buffer(size)
        pieces: list[bytes] = []
        for token in range(self.n_vocab):
            n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
            if n < 0:
                bigger = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(vocab, token, bigger, -n, 0, False)
                pieces.append(bigger.raw[:n])
            else:
                pieces.append(buffer.raw[:n])
        return pieces

    def grammar_compiler(self) -> GrammarCompiler:
        with self.lock:
            if self._compiler is None:
                started = time.perf_counter()
                self._compiler = GrammarCompiler(
                    self.pieces(), self.stop_token_ids, vocab_size=self.n_vocab
                )
                logger.debug("xgrammar tokenizer info in %.2f s", time.perf_counter() - started)
            return self._compiler


_models: dict[tuple[str, int, int], LoadedModel] = {}
_models_lock = threading.Lock()


def load_model(located: LocatedModel, *, n_ctx: int, n_threads: int, seed: int) -> LoadedModel:
    """The process-wide model for this file and settings, loaded on first use."""
    key = (str(located.path), n_ctx, n_threads)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            loaded = LoadedModel(located, n_ctx=n_ctx, n_threads=n_threads, seed=seed)
            _models[key] = loaded
        return loaded
