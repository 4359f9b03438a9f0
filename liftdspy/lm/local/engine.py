"""The DSPy engine of the embedded model: `LocalEngine.complete(Request) -> Response`.

Use it through `build_lm(LMConfig(kind="local", ...))` or `liftdspy.lm.shortcuts.local_lm()`
(both recorded), or bare as `dspy.LM("local/smollm2-135m", engine=LocalEngine(), cache=False)`.

- DSPy hands the engine one `dspy.lm15.Request` per call; the LM's default kwargs (temperature,
  max_tokens) arrive merged into `request.config`.
- The engine declares `supports_response_schema` and a `supported_params` holding
  `response_format`, so DSPy's JSONAdapter sends the output fields' JSON schema; the engine then
  constrains decoding with XGrammar (`liftdspy.lm.grammar`), in the exact layout of DSPy's demos.
- The calling thread renders the chat template, tokenizes, compiles the grammar and checks the
  budget (`BudgetTooSmallError` before anything is decoded); the answer is then decoded on one
  of the model's lanes (`liftdspy.lm.local.lanes`: one `BatchScheduler` per core by default)
  beside the other requests in flight on that lane, with
  its own `SequenceDecoder` (`liftdspy.lm.local.decode`: mask, sampling seeded from the request,
  jump-forward, budget-aware end).
- Token usage (with the reused prefix as `cache_read_tokens`) goes back in `Response.usage`;
  timings go in `Response.provider_data["local"]`.

`llama_cpp` and `xgrammar` are imported lazily: the module imports without the `local` extra.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from collections.abc import Iterator
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

from liftdspy.chat.json_layout import COMPACT_LAYOUT_VERSION
from liftdspy.errors import LiftdspyError
from liftdspy.lm.grammar import (
    GrammarError,
    GrammarSpec,
    GrammarState,
    cap_schema,
    grammar_spec_from_config,
)
from liftdspy.lm.local.batch import DEFAULT_MAX_BATCH
from liftdspy.lm.local.decode import PROVIDER, Generation, Sampling, SequenceDecoder
from liftdspy.lm.local.lanes import LanePool, pool_for
from liftdspy.lm.local.model import LoadedModel, load_model
from liftdspy.lm.local_chat import request_turns
from liftdspy.lm.models import DEFAULT_MODEL, LocatedModel, file_sha256, locate_model

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
# Decoding budget for JSON schemas (see grammar.cap_schema): worst case one IR is ~1,000 tokens.
DEFAULT_MAX_STRING_CHARS = 100
DEFAULT_MAX_ARRAY_ITEMS = 3
# Bumped when the decoding loop changes what a greedy call answers (part of the identity).
DECODER = "jf-budget-1"

__all__ = [
    "DECODER",
    "DEFAULT_MAX_TOKENS",
    "PROVIDER",
    "BudgetTooSmallError",
    "LocalEngine",
]


class BudgetTooSmallError(LiftdspyError, InvalidRequestError):
    """`max_tokens` cannot hold even the shortest answer the grammar allows."""


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
        max_batch: int = DEFAULT_MAX_BATCH,
        lanes: int | None = None,
    ) -> None:
        """`jump_forward` and `budget_close` exist to measure what they buy (benchmarks/);
        `max_whitespace` is accepted from older saved programs and ignored (the JSON layout is
        fixed to DSPy's). `max_batch` is how many requests the model's scheduler decodes at once
        (more wait for a free sequence); it costs `max_batch * n_ctx` KV positions of memory
        and does not change any answer decoded alone. `lanes` is how many schedulers (each its
        own llama.cpp context and `n_threads // lanes` compute threads) share the weights and
        the `max_batch` sequences; default one per thread (`liftdspy.lm.local.lanes`)."""
        if n_ctx < 256:
            raise ValueError(f"n_ctx={n_ctx} is too small for DSPy prompts; use at least 256")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {n_threads}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if lanes is not None and lanes < 1:
            raise ValueError(f"lanes must be at least 1, got {lanes}")
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
        self.max_batch = max_batch
        self._lanes = lanes
        self._located: LocatedModel | None = None

    # -- what this engine is -------------------------------------------------------------

    @property
    def n_threads(self) -> int:
        return self._n_threads or os.cpu_count() or 1

    @property
    def lanes(self) -> int:
        """Schedulers decoding this engine's requests: `lanes`, else one per thread."""
        return min(self._lanes or self.n_threads, self.n_threads)

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
                f"xgrammar-indent2-{COMPACT_LAYOUT_VERSION}"
                f"-str{self.max_string_chars}-items{self.max_array_items}"
            ),
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
            "max_batch": str(self.max_batch),
            "lanes": f"{self.lanes} x {max(1, self.n_threads // self.lanes)} thread(s)",
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
            "max_batch": self.max_batch,
            "lanes": self._lanes,
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
        """Decode one answer to `turns` (blocks; other threads' calls are decoded alongside)."""
        model = self.loaded()
        prompt = model.template.render(turns)
        if spec is not None and spec.kind == "json_schema":
            capped = cap_schema(
                json.loads(spec.source),
                max_string_chars=self.max_string_chars,
                max_array_items=self.max_array_items,
            )
            spec = spec.model_copy(update={"source": json.dumps(capped)})
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
        decoder = SequenceDecoder(
            model,
            tokens,
            state,
            max_tokens=budget,
            sampling=Sampling(
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                seed=self.seed if seed is None else seed,
                stop=tuple(stop or ()),
            ),
            jump_forward=self.jump_forward,
            budget_close=self.budget_close,
            name=self.model,
        )
        generation = self.pool(model).submit(decoder)
        generation.grammar = spec.kind if spec is not None else None
        generation.min_tokens = min_tokens
        return generation

    def pool(self, model: LoadedModel | None = None) -> LanePool:
        """The lanes this engine decodes on (shared with every engine of the same model,
        settings and lanes in the process)."""
        return pool_for(model or self.loaded(), lanes=self.lanes, max_batch=self.max_batch)

    def scheduler_stats(self) -> Any:
        """Counters of the lanes this engine decodes on, added up (`SchedulerStats`)."""
        return self.pool().stats()

    def _shortest_answer(self, model: LoadedModel, state: GrammarState) -> int | None:
        """Tokens of the shortest answer the budget-aware close would write, or None."""
        if not self.budget_close:
            return None
        closing = state.bytes.closing_text()
        if closing is None:
            logger.warning("local model %s: no closing path for this grammar", self.model)
            return None
        return len(model.tokenize_text(closing))
