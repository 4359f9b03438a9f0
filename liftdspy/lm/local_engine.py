"""The embedded engine: a small GGUF model run in-process by llama.cpp, as a DSPy 3.4 LM engine.

Use it through `build_lm(LMConfig(kind="local", ...))` or `liftdspy.lm.shortcuts.local_lm()`
(both recorded), or bare as `dspy.LM("local/smollm2-135m", engine=LocalEngine(), cache=False)`.

- DSPy hands the engine one `dspy.lm15.Request` per call; the LM's default kwargs (temperature,
  max_tokens) arrive merged into `request.config`.
- The engine declares `supports_response_schema` and a `supported_params` holding
  `response_format`, so DSPy's JSONAdapter sends the output fields' JSON schema; the engine then
  constrains decoding with XGrammar (`liftdspy.lm.grammar`), in the exact layout of DSPy's demos.
- Decoding is the engine's own loop over llama.cpp (`Llama.eval` + argmax or seeded sampling):
  * jump-forward: text the grammar forces (keys, quotes, braces, indentation) is tokenized and
    evaluated in one batch instead of sampled token by token (all but its last token, which the
    model samples so it can merge with what follows, as its tokenizer would);
  * budget-aware end: before taking a token, the engine checks that the shortest close of the
    answer from the new state still fits in `max_tokens`; if not, it feeds that close instead and
    stops. Such an answer parses and matches the schema but the model was cut: it is reported
    with `finish_reason="length"` and `provider_data["local"]["budget_closed"] = True`, so it is
    never scored as complete. A budget too small for the shortest valid answer is refused before
    decoding (`BudgetTooSmallError`, naming the minimum).
- The chat template is rendered here and token ids are passed to llama.cpp, which keeps the KV
  cache of the prefix shared with the previous call (DSPy's long system message).
- One llama.cpp model per (file, n_ctx, n_threads) lives for the process, guarded by a lock:
  llama.cpp objects are not thread-safe and DSPy evaluates with threads.
- Token usage (with the reused prefix as `cache_read_tokens`) goes back in `Response.usage`;
  timings go in `Response.provider_data["local"]`.

`llama_cpp` and `xgrammar` are imported lazily: the module imports without the `local` extra.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dspy.lm15 import (
    ContextLengthError,
    InvalidRequestError,
    Message,
    Request,
    Response,
    TextPart,
    Usage,
    response_to_events,
)

from liftdspy.errors import LiftdspyError
from liftdspy.lm.grammar import (
    GrammarCompiler,
    GrammarError,
    GrammarSpec,
    GrammarState,
    cap_schema,
    grammar_spec_from_config,
)
from liftdspy.lm.local_chat import CHAT_TEMPLATES, ChatTemplate, request_turns
from liftdspy.lm.models import DEFAULT_MODEL, LocatedModel, file_sha256, locate_model

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
# Decoding budget for JSON schemas (see grammar.cap_schema): worst case one IR is ~1,000 tokens.
DEFAULT_MAX_STRING_CHARS = 100
DEFAULT_MAX_ARRAY_ITEMS = 3
PROVIDER = "local"
# Bumped when the decoding loop changes what a greedy call answers (part of the identity).
DECODER = "jf-budget-1"


class BudgetTooSmallError(LiftdspyError, InvalidRequestError):
    """`max_tokens` cannot hold even the shortest answer the grammar allows."""


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


@dataclass
class Generation:
    """What one call produced, with the numbers behind usage and timing."""

    text: str
    prompt_tokens: int
    reused_tokens: int
    output_tokens: int
    finish_reason: str
    prompt_seconds: float
    decode_seconds: float
    mask_seconds: float
    grammar: str | None
    forced_tokens: int = 0
    budget_closed: bool = False
    min_tokens: int | None = None

    def timing(self) -> dict[str, Any]:
        return {
            "prompt_tokens_evaluated": self.prompt_tokens - self.reused_tokens,
            "prompt_seconds": round(self.prompt_seconds, 4),
            "decode_seconds": round(self.decode_seconds, 4),
            "decode_tokens_per_second": (
                round(self.output_tokens / self.decode_seconds, 2)
                if self.decode_seconds > 0
                else None
            ),
            "grammar": self.grammar,
            # Tokens the grammar forced (jump-forward and budget close), fed without sampling.
            "forced_tokens": self.forced_tokens,
            "budget_closed": self.budget_closed,
            "min_tokens": self.min_tokens,
            "mask_ms_per_token": (
                round(1000 * self.mask_seconds / self.output_tokens, 4)
                if self.grammar and self.output_tokens
                else None
            ),
        }


class LoadedModel:
    """One llama.cpp model in memory, its vocabulary, grammar compiler and lock."""

    def __init__(self, located: LocatedModel, *, n_ctx: int, n_threads: int, seed: int) -> None:
        llama_cpp = require_llama_cpp()
        started = time.perf_counter()
        self.located = located
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

    def tokenize_prompt(self, text: str) -> list[int]:
        add_bos = bool(self.llama._model.add_bos_token())
        return self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def tokenize_text(self, text: bytes) -> list[int]:
        """Tokens of a piece of output text (no BOS, special markers not parsed)."""
        return self.llama.tokenize(text, add_bos=False, special=False)

    def pieces(self) -> list[bytes]:
        """The vocabulary's bytes, computed once."""
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


class LocalEngine:
    """A DSPy engine running a GGUF model in-process with grammar-constrained decoding."""

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = frozenset(
        {"temperature", "max_tokens", "top_p", "top_k", "stop", "seed", "response_format"}
    )

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        model_path: str | None = None,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        seed: int = 0,
        max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
        max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
        jump_forward: bool = True,
        budget_close: bool = True,
        max_whitespace: int | None = None,
    ) -> None:
        """`jump_forward` and `budget_close` exist to measure what they buy (benchmarks/);
        `max_whitespace` is accepted from older saved programs and ignored (the JSON layout is
        fixed to DSPy's)."""
        if n_ctx < 256:
            raise ValueError(f"n_ctx={n_ctx} is too small for DSPy prompts; use at least 256")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {n_threads}")
        self.model = model
        self.model_path = model_path
        self._n_threads = n_threads
        self.n_ctx = n_ctx
        self.seed = seed
        if max_whitespace is not None:
            logger.info(
                "max_whitespace=%s ignored: JSON whitespace is DSPy's layout", max_whitespace
            )
        self.max_string_chars = max_string_chars
        self.max_array_items = max_array_items
        self.jump_forward = jump_forward
        self.budget_close = budget_close
        self._located: LocatedModel | None = None

    # -- what this engine is -------------------------------------------------------------

    @property
    def n_threads(self) -> int:
        return self._n_threads or os.cpu_count() or 1

    @property
    def located(self) -> LocatedModel:
        if self._located is None:
            self._located = locate_model(self.model, self.model_path)
        return self._located

    def identity(self) -> dict[str, str]:
        """Everything that changes this engine's answers, for keying recorded responses."""
        located = self.located
        try:
            llama_version = importlib.metadata.version("llama_cpp_python")
        except importlib.metadata.PackageNotFoundError:
            llama_version = "missing"
        return {
            "kind": "local",
            "model": located.name,
            "model_file": located.path.name,
            "model_sha256": file_sha256(located.path),
            "n_ctx": str(self.n_ctx),
            "chat_format": located.chat_format,
            "seed": str(self.seed),
            "grammar": (f"xgrammar-indent2-str{self.max_string_chars}-items{self.max_array_items}"),
            "decoder": (f"{DECODER}-jf{int(self.jump_forward)}-close{int(self.budget_close)}"),
            "llama_cpp_python": llama_version,
        }

    def info(self) -> dict[str, str]:
        """Human-facing facts for `liftdspy lm info`."""
        located = self.located
        return {
            "model": located.name,
            "path": str(located.path),
            "size_mb": f"{located.path.stat().st_size / 1e6:.1f}",
            "chat_format": located.chat_format,
            "n_threads": str(self.n_threads),
            "n_ctx": str(self.n_ctx),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default: spin)"),
        }

    # -- saving with a DSPy program ------------------------------------------------------

    def dump_state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "n_threads": self._n_threads,
            "n_ctx": self.n_ctx,
            "seed": self.seed,
            "max_string_chars": self.max_string_chars,
            "max_array_items": self.max_array_items,
            "jump_forward": self.jump_forward,
            "budget_close": self.budget_close,
        }

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> LocalEngine:
        return cls(**state)

    # -- the engine contract -------------------------------------------------------------

    def complete(self, request: Request) -> Response:
        from dspy.clients.engines.base import validate_request

        validate_request(request)
        config = request.config
        try:
            spec = grammar_spec_from_config(config.response_format, config.extensions)
        except GrammarError as exc:
            raise InvalidRequestError(str(exc), provider=PROVIDER) from exc
        generation = self.generate(
            request_turns(request),
            spec=spec,
            max_tokens=config.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=config.temperature if config.temperature is not None else 0.0,
            top_p=config.top_p if config.top_p is not None else 1.0,
            top_k=config.top_k or 0,
            stop=config.stop,
            seed=config.seed if config.seed is not None else self.seed,
        )
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(generation.text)]),
            finish_reason=generation.finish_reason,  # type: ignore[arg-type]
            usage=Usage(
                input_tokens=generation.prompt_tokens,
                output_tokens=generation.output_tokens,
                cache_read_tokens=generation.reused_tokens,
            ),
            provider_data={"local": generation.timing()},
        )

    def stream(self, request: Request) -> Iterator[Any]:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Models are shared by every engine in the process; nothing to release per engine."""

    # -- generation ----------------------------------------------------------------------

    def loaded(self) -> LoadedModel:
        return load_model(self.located, n_ctx=self.n_ctx, n_threads=self.n_threads, seed=self.seed)

    def generate(
        self,
        turns: list[Any],
        *,
        spec: GrammarSpec | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        stop: tuple[str, ...] = (),
        seed: int | None = None,
    ) -> Generation:
        model = self.loaded()
        prompt = model.template.render(turns)
        if spec is not None and spec.kind == "json_schema":
            capped = cap_schema(
                json.loads(spec.source),
                max_string_chars=self.max_string_chars,
                max_array_items=self.max_array_items,
            )
            spec = spec.model_copy(update={"source": json.dumps(capped)})
        with model.lock:
            state = None
            if spec is not None:
                state = GrammarState(spec, model.grammar_compiler().compile(spec), model.n_vocab)
            tokens = model.tokenize_prompt(prompt)
            if len(tokens) >= self.n_ctx:
                raise ContextLengthError(
                    f"local model {self.model}: the prompt has {len(tokens)} tokens, "
                    f"n_ctx is {self.n_ctx}",
                    provider=PROVIDER,
                )
            budget = min(max_tokens, self.n_ctx - len(tokens))
            min_tokens = self._shortest_answer(model, state) if state is not None else None
            if min_tokens is not None and min_tokens > budget:
                where = (
                    f"max_tokens={max_tokens}"
                    if budget == max_tokens
                    else f"the {budget} tokens n_ctx={self.n_ctx} leaves after the prompt"
                )
                raise BudgetTooSmallError(
                    f"local model {self.model}: {where} cannot hold any answer of this "
                    f"{spec.kind if spec else ''} grammar; the shortest valid answer takes "
                    f"{min_tokens} tokens",
                    provider=PROVIDER,
                )
            generation = self._decode(
                model,
                tokens,
                state,
                budget,
                temperature,
                top_p,
                top_k,
                stop,
                self.seed if seed is None else seed,
            )
        generation.grammar = spec.kind if spec is not None else None
        generation.min_tokens = min_tokens
        return generation

    def _shortest_answer(self, model: LoadedModel, state: GrammarState) -> int | None:
        """Tokens of the shortest answer the budget-aware close would write, or None."""
        if not self.budget_close:
            return None
        closing = state.bytes.closing_text()
        if closing is None:
            logger.warning("local model %s: no closing path for this grammar", self.model)
            return None
        return len(model.tokenize_text(closing))

    def _decode(
        self,
        model: LoadedModel,
        tokens: list[int],
        state: GrammarState | None,
        max_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> Generation:
        """Prefill, then sample, jump forward over forced text, and close within the budget."""
        import numpy as np

        llama = model.llama
        pieces = model.pieces() if state is not None else []
        stop_ids = set(model.stop_token_ids)
        closing = self.budget_close and state is not None
        rng = np.random.default_rng(seed)
        reused = _keep_cached_prefix(llama, tokens)
        out: list[int] = []
        forced = 0
        finish = "length"
        budget_closed = False

        def close_now() -> None:
            # Feed the close computed from the current state; it fits by the loop's invariant.
            nonlocal forced, budget_closed
            assert state is not None
            text = state.bytes.closing_text() or b""
            for token in model.tokenize_text(text):
                if not state.accept(token, pieces[token]):
                    raise InvalidRequestError(
                        f"local model {self.model}: the grammar rejected its own closing text "
                        f"{text!r}",
                        provider=PROVIDER,
                    )
                out.append(token)
                forced += 1
            budget_closed = True

        def fits(extra: int, after: bytes) -> bool:
            # After `extra` more tokens whose text is `after`, can the answer still close?
            assert state is not None
            rest = state.bytes.closing_text(after)
            if rest is None:
                return False
            return len(out) + extra + len(model.tokenize_text(rest)) <= max_tokens

        started = time.perf_counter()
        llama.eval(tokens[reused:])
        prefilled = time.perf_counter()
        pending: list[int] = []
        while True:
            if state is not None:
                if state.mask.is_completed() and _only_stop_allowed(state, stop_ids):
                    finish = "stop"
                    break
                jump = self._jump_tokens(model, state)
                if jump:
                    text = b"".join(pieces[t] for t in jump)
                    if closing and not fits(len(jump), text):
                        close_now()
                        break
                    for token in jump:
                        state.accept(token, pieces[token])
                    out.extend(jump)
                    pending.extend(jump)
                    forced += len(jump)
            if len(out) >= max_tokens:
                break
            if pending:
                llama.eval(pending)
                pending = []
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(model.n_vocab,))
            logits = logits.copy()
            if state is not None:
                state.mask.fill()
                state.mask.apply(logits)
            token = _choose(logits, temperature, top_p, top_k, rng)
            if token in stop_ids:
                finish = "stop"
                break
            if state is not None:
                if closing and not fits(1, pieces[token]):
                    close_now()
                    break
                if not state.accept(token, pieces[token]):
                    raise InvalidRequestError(
                        f"local model {self.model}: the grammar rejected token {token}",
                        provider=PROVIDER,
                    )
            out.append(token)
            pending = [token]
            if stop and _ends_with_stop(llama, out, stop):
                finish = "stop"
                break
        ended = time.perf_counter()
        text = llama.detokenize(out).decode("utf-8", errors="replace")
        if stop:
            text = _cut_at_stop(text, stop)
        return Generation(
            text=text,
            prompt_tokens=len(tokens),
            reused_tokens=reused,
            output_tokens=len(out),
            finish_reason=finish,
            prompt_seconds=prefilled - started,
            decode_seconds=ended - prefilled,
            mask_seconds=state.mask.mask_seconds if state is not None else 0.0,
            grammar=None,
            forced_tokens=forced,
            budget_closed=budget_closed,
        )

    def _jump_tokens(self, model: LoadedModel, state: GrammarState) -> list[int]:
        """Tokens of the text the grammar forces next, less the last one.

        The last token is left to the model: the text after the forced part may merge with it
        into one token (`": "` then `"` is the token ` "` in SmolLM2's vocabulary), and a model
        fed a split it was never trained on writes worse answers.
        """
        if not self.jump_forward:
            return []
        text = state.mask.forced_text()
        if not text:
            return []
        return model.tokenize_text(text.encode("utf-8"))[:-1]


def _only_stop_allowed(state: GrammarState, stop_ids: set[int]) -> bool:
    state.mask.fill()
    allowed = state.mask.allowed()
    import numpy as np

    return all(int(t) in stop_ids for t in np.flatnonzero(allowed))


def _choose(logits: Any, temperature: float, top_p: float, top_k: int, rng: Any) -> int:
    """Greedy (argmax, the first of equal maxima) at temperature 0, else seeded sampling."""
    import numpy as np

    if temperature <= 0.0:
        return int(np.argmax(logits))
    candidates = np.flatnonzero(np.isfinite(logits))
    values = logits[candidates].astype(np.float64) / temperature
    if top_k and top_k < len(candidates):
        keep = np.argsort(-values, kind="stable")[:top_k]
        candidates, values = candidates[keep], values[keep]
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        candidates, probs = candidates[keep], probs[keep] / probs[keep].sum()
    return int(rng.choice(candidates, p=probs))


def _keep_cached_prefix(llama: Any, tokens: list[int]) -> int:
    """Trim llama.cpp's KV cache to the prefix it shares with `tokens`, less at least two tokens.

    llama-cpp-python 0.3.36 reuses the cached prefix itself, but when all but one prompt token
    (or all of them) are cached it re-decodes a single token after trimming the cache, and greedy
    output then differs from a fresh run (measured on SmolLM2). Re-decoding two or more tokens
    gives the fresh-run output, so the cache is trimmed here first. Returns the tokens kept.
    """
    keep = min(_common_prefix(llama._input_ids[: llama.n_tokens].tolist(), tokens), len(tokens) - 2)
    keep = max(keep, 0)
    if llama.n_tokens > keep:
        if keep == 0 or not llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            llama.reset()
            return 0
        llama.n_tokens = keep
    return keep


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _ends_with_stop(llama: Any, out: list[int], stop: tuple[str, ...]) -> bool:
    tail = llama.detokenize(out[-16:]).decode("utf-8", errors="ignore")
    return any(s in tail for s in stop)


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
