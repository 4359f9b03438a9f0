"""Grammar-constrained decoding with XGrammar: compile once, mask every token.

A request asks for structure in one of three ways, read by `grammar_spec_from_config`:

- `config.response_format = {"type": "json_schema", "schema": {...}}` (what DSPy's JSONAdapter
  sends when the engine declares schema support; a pydantic class is turned into this by DSPy),
- `config.response_format = {"type": "json_object"}` (any JSON),
- `config.extensions = {"xgrammar": {"ebnf": "root ::= ..."}}` or `{"xgrammar": {"regex": "..."}}`
  for anything else, e.g. a code block (`python_code_block_ebnf()`).

JSON schemas are compiled with bounded whitespace between tokens: no whitespace fights DSPy's
indented JSON demos, unbounded whitespace lets a small model ramble until its token limit.
Compiled grammars are cached by the schema's JSON text in its own property order (sorting keys
changes the order the model writes fields in).

`xgrammar` is imported lazily: this module imports without the `local` extra.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from liftdspy.errors import LiftdspyError

if TYPE_CHECKING:
    import numpy as np
    import xgrammar

logger = logging.getLogger(__name__)

DEFAULT_MAX_WHITESPACE = 14

GrammarKind = Literal["json_schema", "json_object", "ebnf", "regex"]


class GrammarSpec(BaseModel):
    """What to constrain the output to: a kind and its source text (schema JSON, EBNF or regex)."""

    model_config = ConfigDict(frozen=True)

    kind: GrammarKind
    source: str = ""


class GrammarError(LiftdspyError, ValueError):
    """A grammar or schema in a request cannot be compiled."""


def require_xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "grammar-constrained decoding needs xgrammar: run scripts/setup.sh, or install "
            "liftdspy's `local` extra and then `pip install --no-deps xgrammar==0.2.8`"
        ) from exc
    return xgrammar


def grammar_spec_from_config(
    response_format: dict[str, Any] | type | None, extensions: dict[str, Any] | None = None
) -> GrammarSpec | None:
    """The grammar a request's config asks for, or None for free text."""
    custom = (extensions or {}).get("xgrammar")
    if custom is not None:
        if not isinstance(custom, dict) or len(custom.keys() & {"ebnf", "regex"}) != 1:
            raise GrammarError(
                'config.extensions["xgrammar"] must be {"ebnf": "..."} or {"regex": "..."}, '
                f"got {custom!r}"
            )
        kind = "ebnf" if "ebnf" in custom else "regex"
        return GrammarSpec(kind=kind, source=str(custom[kind]))
    if response_format is None:
        return None
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return GrammarSpec(
            kind="json_schema", source=json.dumps(response_format.model_json_schema())
        )
    if not isinstance(response_format, dict):
        raise GrammarError(
            f"response_format must be a dict or pydantic model, got {response_format!r}"
        )
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return GrammarSpec(kind="json_object")
    if kind == "json_schema":
        # lm15's canonical shape carries the schema at the top level; the OpenAI wire shape
        # nests it under "json_schema". Accept both.
        schema = response_format.get("schema")
        if schema is None and isinstance(response_format.get("json_schema"), dict):
            schema = response_format["json_schema"].get("schema")
        if not isinstance(schema, dict):
            raise GrammarError(
                f"response_format json_schema without a schema object: {response_format!r}"
            )
        return GrammarSpec(kind="json_schema", source=json.dumps(schema))
    raise GrammarError(f"response_format type {kind!r} is not text, json_object or json_schema")


def schema_spec(schema: dict[str, Any] | type[BaseModel]) -> GrammarSpec:
    """A GrammarSpec for a JSON schema dict or a pydantic model class."""
    if isinstance(schema, type):
        schema = schema.model_json_schema()
    return GrammarSpec(kind="json_schema", source=json.dumps(schema))


def cap_schema(schema: Any, *, max_string_chars: int | None, max_array_items: int | None) -> Any:
    """A copy of a JSON schema whose strings and arrays are bounded by the decoding budget.

    Every free string gets `maxLength <= max_string_chars` (strings that have none get one) and
    every array `maxItems <= max_array_items`. A tiny model fills whatever room a schema gives it
    (repeating a phrase to `maxLength`, an item to `maxItems`); these caps keep one answer inside
    `max_tokens` so it ends as valid JSON. Key order is kept: it is the order of generation.
    """
    if isinstance(schema, list):
        return [
            cap_schema(v, max_string_chars=max_string_chars, max_array_items=max_array_items)
            for v in schema
        ]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: cap_schema(v, max_string_chars=max_string_chars, max_array_items=max_array_items)
        for k, v in schema.items()
    }
    kind = out.get("type")
    if kind == "string" and max_string_chars and not ({"enum", "const"} & out.keys()):
        out["maxLength"] = min(out.get("maxLength", max_string_chars), max_string_chars)
        if out.get("minLength", 0) > out["maxLength"]:
            out["minLength"] = out["maxLength"]
    if kind == "array" and max_array_items:
        out["maxItems"] = min(out.get("maxItems", max_array_items), max_array_items)
        if out.get("minItems", 0) > out["maxItems"]:
            out["minItems"] = out["maxItems"]
    return out


def python_code_block_ebnf(max_lines: int = 60) -> str:
    """EBNF for a fenced Python code block: ```python, up to `max_lines` lines, closing fence."""
    return 'root ::= "```python\\n" line{1,' + str(max_lines) + '} "```"\nline ::= [^`\\n]* "\\n"\n'


class GrammarCompiler:
    """Compiles grammars for one vocabulary, caching each compiled grammar by its spec."""

    def __init__(
        self,
        vocabulary: list[bytes],
        stop_token_ids: list[int],
        *,
        vocab_size: int | None = None,
        max_whitespace: int = DEFAULT_MAX_WHITESPACE,
        max_threads: int = 2,
    ) -> None:
        xgr = require_xgrammar()
        self.max_whitespace = max_whitespace
        self.tokenizer_info = xgr.TokenizerInfo(
            vocabulary,
            xgr.VocabType.RAW,
            vocab_size=vocab_size or len(vocabulary),
            stop_token_ids=stop_token_ids,
        )
        self._compiler = xgr.GrammarCompiler(
            self.tokenizer_info, max_threads=max_threads, cache_enabled=False
        )
        self._compiled: dict[GrammarSpec, xgrammar.CompiledGrammar] = {}
        self._lock = threading.Lock()

    def compile(self, spec: GrammarSpec) -> xgrammar.CompiledGrammar:
        with self._lock:
            compiled = self._compiled.get(spec)
            if compiled is None:
                started = time.perf_counter()
                compiled = self._compile(spec)
                self._compiled[spec] = compiled
                logger.debug(
                    "compiled %s grammar in %.2f s", spec.kind, time.perf_counter() - started
                )
            return compiled

    def _compile(self, spec: GrammarSpec) -> xgrammar.CompiledGrammar:
        try:
            if spec.kind == "json_schema":
                return self._compiler.compile_json_schema(
                    spec.source,
                    any_whitespace=True,
                    max_whitespace_cnt=self.max_whitespace,
                    strict_mode=True,
                )
            if spec.kind == "json_object":
                xgr = require_xgrammar()
                grammar = xgr.Grammar.from_json_schema(
                    '{"type": "object"}',
                    any_whitespace=True,
                    max_whitespace_cnt=self.max_whitespace,
                )
                return self._compiler.compile_grammar(grammar)
            if spec.kind == "ebnf":
                return self._compiler.compile_grammar(spec.source, root_rule_name="root")
            return self._compiler.compile_regex(spec.source)
        except (RuntimeError, ValueError) as exc:
            raise GrammarError(f"cannot compile {spec.kind} grammar: {exc}") from exc


@dataclass
class TokenMask:
    """One generation's grammar state, used as a llama.cpp logits processor.

    Call `accept(token)` for every sampled token; the processor masks the next step's logits.
    """

    compiled: Any
    vocab_size: int
    mask_seconds: float = 0.0
    mask_calls: int = 0
    _matcher: Any = field(init=False, repr=False)
    _bitmask: np.ndarray = field(init=False, repr=False)
    _neg_inf: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import numpy as np

        xgr = require_xgrammar()
        self._matcher = xgr.GrammarMatcher(self.compiled)
        words = (self.vocab_size + 31) // 32
        self._bitmask = np.full((1, words), -1, dtype=np.int32)
        self._neg_inf = float("-inf")

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        import numpy as np

        started = time.perf_counter()
        need_apply = self._matcher.fill_next_token_bitmask(self._bitmask)
        if need_apply:
            allowed = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
            n = min(len(scores), self.vocab_size)
            np.putmask(scores[:n], allowed[:n] == 0, self._neg_inf)
            if len(scores) > n:
                scores[n:] = self._neg_inf
        self.mask_seconds += time.perf_counter() - started
        self.mask_calls += 1
        return scores

    def accept(self, token: int) -> bool:
        """Advance the grammar by one sampled token; False if the grammar rejects it."""
        return bool(self._matcher.accept_token(token))

    def is_terminated(self) -> bool:
        return bool(self._matcher.is_terminated())
