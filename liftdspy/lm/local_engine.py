"""The embedded engine: a small GGUF model run in-process by llama.cpp, as a DSPy 3.4 LM engine.

Use it as `dspy.LM("local/smollm2-135m", engine=LocalEngine())`, or `local_lm()`.

- DSPy hands the engine one `dspy.lm15.Request` per call; the LM's default kwargs (temperature,
  max_tokens) arrive merged into `request.config`.
- The engine declares `supports_response_schema` and a `supported_params` holding
  `response_format`, so DSPy's JSONAdapter sends the output fields' JSON schema; the engine then
  constrains decoding with XGrammar (`liftdspy.lm.grammar`) and the output always parses.
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
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

from liftdspy.lm.grammar import (
    DEFAULT_MAX_WHITESPACE,
    GrammarCompiler,
    GrammarError,
    GrammarSpec,
    TokenMask,
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


def require_llama_cpp() -> Any:
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

    def timing(self) -> dict[str, Any]:
        decode_steps = max(self.output_tokens - 1, 0)
        return {
            "prompt_tokens_evaluated": self.prompt_tokens - self.reused_tokens,
            "prompt_seconds": round(self.prompt_seconds, 4),
            "decode_seconds": round(self.decode_seconds, 4),
            "decode_tokens_per_second": (
                round(decode_steps / self.decode_seconds, 2) if self.decode_seconds > 0 else None
            ),
            "grammar": self.grammar,
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
        self._max_whitespace: int | None = None
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

    def grammar_compiler(self, max_whitespace: int) -> GrammarCompiler:
        with self.lock:
            if self._compiler is None or self._max_whitespace != max_whitespace:
                started = time.perf_counter()
                self._compiler = GrammarCompiler(
                    self.vocabulary(),
                    self.stop_token_ids,
                    vocab_size=self.n_vocab,
                    max_whitespace=max_whitespace,
                )
                self._max_whitespace = max_whitespace
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
        max_whitespace: int = DEFAULT_MAX_WHITESPACE,
        max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
        max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
    ) -> None:
        if n_ctx < 256:
            raise ValueError(f"n_ctx={n_ctx} is too small for DSPy prompts; use at least 256")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {n_threads}")
        self.model = model
        self.model_path = model_path
        self._n_threads = n_threads
        self.n_ctx = n_ctx
        self.seed = seed
        self.max_whitespace = max_whitespace
        self.max_string_chars = max_string_chars
        self.max_array_items = max_array_items
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
            "grammar": (
                f"xgrammar-ws{self.max_whitespace}"
                f"-str{self.max_string_chars}-items{self.max_array_items}"
            ),
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
        }

    # -- saving with a DSPy program ------------------------------------------------------

    def dump_state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "n_threads": self._n_threads,
            "n_ctx": self.n_ctx,
            "seed": self.seed,
            "max_whitespace": self.max_whitespace,
            "max_string_chars": self.max_string_chars,
            "max_array_items": self.max_array_items,
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
            compiled = model.grammar_compiler(self.max_whitespace).compile(spec) if spec else None
            tokens = model.tokenize_prompt(prompt)
            if len(tokens) >= self.n_ctx:
                raise ContextLengthError(
                    f"local model {self.model}: the prompt has {len(tokens)} tokens, "
                    f"n_ctx is {self.n_ctx}",
                    provider=PROVIDER,
                )
            max_tokens = min(max_tokens, self.n_ctx - len(tokens))
            return self._decode(
                model,
                tokens,
                compiled,
                spec,
                max_tokens,
                temperature,
                top_p,
                top_k,
                stop,
                self.seed if seed is None else seed,
            )

    def _decode(
        self,
        model: LoadedModel,
        tokens: list[int],
        compiled: Any,
        spec: GrammarSpec | None,
        max_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> Generation:
        llama = model.llama
        reused = _keep_cached_prefix(llama, tokens)
        mask = TokenMask(compiled, model.n_vocab) if compiled is not None else None
        llama.set_seed(seed)
        stop_ids = set(model.stop_token_ids)
        out: list[int] = []
        finish = "length"
        started = time.perf_counter()
        first_token_at = started
        generator = llama.generate(
            tokens,
            top_k=top_k,
            top_p=top_p,
            min_p=0.0,
            temp=temperature,
            repeat_penalty=1.0,
            logits_processor=[mask] if mask is not None else None,
        )
        try:
            for token in generator:
                if not out:
                    first_token_at = time.perf_counter()
                if mask is not None and not mask.accept(token):
                    raise InvalidRequestError(
                        f"local model {self.model}: the grammar rejected token {token}",
                        provider=PROVIDER,
                    )
                if token in stop_ids:
                    finish = "stop"
                    break
                out.append(token)
                if mask is not None and mask.is_terminated():
                    finish = "stop"
                    break
                if stop and _ends_with_stop(llama, out, stop):
                    finish = "stop"
                    break
                if len(out) >= max_tokens:
                    break
        finally:
            generator.close()
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
            prompt_seconds=first_token_at - started,
            decode_seconds=ended - first_token_at,
            mask_seconds=mask.mask_seconds if mask is not None else 0.0,
            grammar=spec.kind if spec is not None else None,
        )


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


def local_lm(
    model: str = DEFAULT_MODEL,
    *,
    model_path: str | None = None,
    n_threads: int | None = None,
    n_ctx: int = 4096,
    seed: int = 0,
    temperature: float = 0.0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    **lm_kwargs: Any,
) -> dspy.LM:
    """A `dspy.LM` backed by the embedded engine (greedy decoding by default)."""
    engine = LocalEngine(
        model=model, model_path=model_path, n_threads=n_threads, n_ctx=n_ctx, seed=seed
    )
    label = Path(model_path).stem if model_path and model == DEFAULT_MODEL else model
    return dspy.LM(
        f"{PROVIDER}/{label}",
        engine=engine,
        temperature=temperature,
        max_tokens=max_tokens,
        **lm_kwargs,
    )
