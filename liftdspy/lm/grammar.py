"""Grammar-constrained decoding with XGrammar: compile once, mask every token.

A request asks for structure in one of three ways, read by `grammar_spec_from_config`:

- `config.response_format = {"type": "json_schema", "schema": {...}}` (what DSPy's JSONAdapter
  sends when the engine declares schema support; a pydantic class is turned into this by DSPy),
- `config.response_format = {"type": "json_object"}` (any JSON),
- `config.extensions = {"xgrammar": {"ebnf": "root ::= ..."}}` or `{"xgrammar": {"regex": "..."}}`
  for anything else, e.g. a code block (`python_code_block_ebnf()`).

JSON is compiled in one of two fixed layouts (`liftdspy.chat.json_layout`: `indent2`, DSPy's
JSONAdapter demos, by default; `compact`, one line, when the request names it) and no other
whitespace, so every newline, indent and space is forced by the grammar instead of sampled: free
whitespace let a small model spend its budget on runs of spaces, and a layout other than the
demos' fought them. Compiled grammars are cached by the spec: the schema's JSON text in its own
property order (sorting keys changes the order the model writes fields in) and the layout.

`GrammarState` follows one generation: the token mask (a bitmask, as a llama.cpp logits processor
or applied to a logits array), the string the grammar forces next (for jump-forward decoding) and
the shortest way to close the answer from here (for a budget-aware end, see `closing_text`).

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

from liftdspy.chat.json_layout import JSON_LAYOUTS, JsonLayout, json_layout_of
from liftdspy.errors import LiftdspyError

if TYPE_CHECKING:
    import numpy as np
    import xgrammar

logger = logging.getLogger(__name__)

# What the budget-aware close prefers at a choice (see ByteMatcher.closing_text). In JSON a letter
# is only ever allowed inside a string, so "a" before "]" fills a string that needs content and
# never opens anything; for other grammars (a code block) ending the line and the fence comes first.
JSON_CLOSING_PREFERENCE = b'"a]}\n0 '
OTHER_CLOSING_PREFERENCE = b'`\n"]}a0 '
_MAX_CLOSING_BYTES = 8192

GrammarKind = Literal["json_schema", "json_object", "ebnf", "regex"]


class GrammarSpec(BaseModel):
    """What to constrain the output to: a kind, its source text (schema JSON, EBNF or regex) and,
    for JSON, the layout whitespace is forced into."""

    model_config = ConfigDict(frozen=True)

    kind: GrammarKind
    source: str = ""
    layout: JsonLayout = "indent2"


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
    spec = _grammar_spec(response_format, extensions)
    if spec is not None and spec.kind in {"json_schema", "json_object"}:
        try:
            layout = json_layout_of(extensions)
        except ValueError as exc:
            raise GrammarError(str(exc)) from exc
        if layout != spec.layout:
            spec = spec.model_copy(update={"layout": layout})
    return spec


def _grammar_spec(
    response_format: dict[str, Any] | type | None, extensions: dict[str, Any] | None
) -> GrammarSpec | None:
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


def schema_spec(
    schema: dict[str, Any] | type[BaseModel], layout: JsonLayout = "indent2"
) -> GrammarSpec:
    """A GrammarSpec for a JSON schema dict or a pydantic model class."""
    if isinstance(schema, type):
        schema = schema.model_json_schema()
    return GrammarSpec(kind="json_schema", source=json.dumps(schema), layout=layout)


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
    # A pattern bounds its string itself; vLLM refuses maxLength next to one (see liftdspy.ir).
    if kind == "string" and max_string_chars and not ({"enum", "const", "pattern"} & out.keys()):
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
        max_threads: int = 2,
    ) -> None:
        xgr = require_xgrammar()
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
        indent, separators = JSON_LAYOUTS[spec.layout]
        try:
            if spec.kind == "json_schema":
                return self._compiler.compile_json_schema(
                    spec.source,
                    any_whitespace=False,
                    indent=indent,
                    separators=separators,
                    strict_mode=True,
                )
            if spec.kind == "json_object":
                xgr = require_xgrammar()
                grammar = xgr.Grammar.from_json_schema(
                    '{"type": "object"}',
                    any_whitespace=False,
                    indent=indent,
                    separators=separators,
                )
                return self._compiler.compile_grammar(grammar)
            if spec.kind == "ebnf":
                return self._compiler.compile_grammar(spec.source, root_rule_name="root")
            return self._compiler.compile_regex(spec.source)
        except (RuntimeError, ValueError) as exc:
            raise GrammarError(f"cannot compile {spec.kind} grammar: {exc}") from exc


@dataclass
class TokenMask:
    """One generation's token-level grammar matcher and its bitmask.

    As a llama.cpp logits processor (`mask(input_ids, scores)`) it masks the next step's logits;
    `fill()` + `apply(scores)` do the same in two steps. Call `accept(token)` for every token.
    """

    compiled: Any
    vocab_size: int
    mask_seconds: float = 0.0
    mask_calls: int = 0
    _matcher: Any = field(init=False, repr=False)
    _bitmask: np.ndarray = field(init=False, repr=False)
    _need_apply: bool = field(init=False, repr=False, default=True)

    def __post_init__(self) -> None:
        import numpy as np

        xgr = require_xgrammar()
        self._matcher = xgr.GrammarMatcher(self.compiled)
        words = (self.vocab_size + 31) // 32
        self._bitmask = np.full((1, words), -1, dtype=np.int32)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        self.fill()
        return self.apply(scores)

    def fill(self) -> None:
        """Compute the bitmask of the tokens the grammar allows next."""
        started = time.perf_counter()
        self._need_apply = bool(self._matcher.fill_next_token_bitmask(self._bitmask))
        self.mask_seconds += time.perf_counter() - started
        self.mask_calls += 1

    def allowed(self) -> np.ndarray:
        """A 0/1 array over the vocabulary from the last `fill()`."""
        import numpy as np

        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        return bits[: self.vocab_size]

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Set the logits of tokens the last `fill()` forbids to -inf (in place)."""
        import numpy as np

        started = time.perf_counter()
        if self._need_apply:
            allowed = self.allowed()
            n = min(len(scores), self.vocab_size)
            np.putmask(scores[:n], allowed[:n] == 0, -np.inf)
            if len(scores) > n:
                scores[n:] = -np.inf
        self.mask_seconds += time.perf_counter() - started
        return scores

    def accept(self, token: int) -> bool:
        """Advance the grammar by one token; False if the grammar rejects it."""
        return bool(self._matcher.accept_token(token))

    def is_terminated(self) -> bool:
        return bool(self._matcher.is_terminated())

    def is_completed(self) -> bool:
        """True when the text so far is a complete answer (a stop token is allowed)."""
        return bool(self._matcher.is_completed())

    def forced_text(self) -> str:
        """The text every continuation starts with (jump-forward), '' if there is a choice."""
        return str(self._matcher.find_jump_forward_string())


BYTE_VOCABULARY = [bytes([i]) for i in range(256)] + [b""]
BYTE_STOP = 256
_byte_compiler: GrammarCompiler | None = None
_byte_compiler_lock = threading.Lock()


def byte_compiler() -> GrammarCompiler:
    """A compiler for a vocabulary of the 256 single bytes (and one stop token): walking a
    grammar byte by byte is how `closing_text` finds the shortest way to end an answer."""
    global _byte_compiler
    with _byte_compiler_lock:
        if _byte_compiler is None:
            _byte_compiler = GrammarCompiler(BYTE_VOCABULARY, [BYTE_STOP])
        return _byte_compiler


class ByteMatcher:
    """The same grammar as a generation's `TokenMask`, advanced by the bytes of its tokens."""

    def __init__(self, compiled: Any, preference: bytes = JSON_CLOSING_PREFERENCE) -> None:
        import numpy as np

        xgr = require_xgrammar()
        self._matcher = xgr.GrammarMatcher(compiled)
        self._preference = preference
        self._bitmask = np.full((1, (len(BYTE_VOCABULARY) + 31) // 32), -1, dtype=np.int32)

    @classmethod
    def for_spec(cls, spec: GrammarSpec, compiled: Any) -> ByteMatcher:
        """A matcher of `compiled` (compiled for the byte vocabulary) closing the way `spec`'s
        kind of grammar closes best."""
        json_like = spec.kind in {"json_schema", "json_object"}
        return cls(compiled, JSON_CLOSING_PREFERENCE if json_like else OTHER_CLOSING_PREFERENCE)

    def accept_bytes(self, data: bytes) -> bool:
        return not data or bool(self._matcher.accept_string(data))

    def closing_text(self, after: bytes = b"") -> bytes | None:
        """A short text that ends the answer from here (after `after`), or None if `after` is
        not allowed or no end is reachable within 8 KiB.

        Walks a fork of the matcher: the text the grammar forces is taken whole; at a choice the
        first allowed byte of the preference wins (JSON: close the string, else one filler
        letter, else close the array or object), else the smallest allowed byte. That ends
        strings as soon as their minimum length allows, arrays and optional parts empty. Greedy,
        so not always the very shortest, but the engine only relies on the length of the path it
        computed (it feeds exactly this text).
        """
        import numpy as np

        matcher = self._matcher.fork()
        if after and not matcher.accept_string(after):
            return None
        text = bytearray()
        while len(text) < _MAX_CLOSING_BYTES:
            if matcher.is_completed():
                return bytes(text)
            forced = matcher.find_jump_forward_string()
            if forced:
                matcher.accept_string(forced)
                text += forced.encode("utf-8")
                continue
            matcher.fill_next_token_bitmask(self._bitmask)
            bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")[:256]
            choice = next((b for b in self._preference if bits[b]), None)
            if choice is None:
                allowed = np.flatnonzero(bits)
                if not len(allowed):
                    return None
                choice = int(allowed[0])
            matcher.accept_token(choice)
            text.append(choice)
        return None


class GrammarState:
    """One generation under a grammar: the token mask plus a byte-level twin for closing."""

    def __init__(self, spec: GrammarSpec, compiled: Any, vocab_size: int) -> None:
        self.mask = TokenMask(compiled, vocab_size)
        self.bytes = ByteMatcher.for_spec(spec, byte_compiler().compile(spec))

    def accept(self, token: int, piece: bytes) -> bool:
        """Advance both matchers by one token whose text is `piece`."""
        return self.mask.accept(token) and self.bytes.accept_bytes(piece)
