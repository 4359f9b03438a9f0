"""The JSON layouts an answer can be forced into, and how a request names one.

- `indent2` (the default): DSPy's JSONAdapter demos, `json.dumps(indent=2)`: two-space
  indentation, `","`/`": "` separators, `[]`/`{}` when empty;
- `compact`: one line, `json.dumps(separators=(",", ":"))` (`dump_compact`), the layout of the
  compact adapter's demos and answers (`liftdspy.programs.adapters`), and the one vLLM forces with
  `disable_any_whitespace` (`liftdspy.serving.vllm_command`). Until 2026-12-07 it kept DSPy's
  `", "`/`": "`; without the two spaces the grammar forces 71 tokens per NL->IR answer instead of
  95 (`benchmarks/answers_per_minute.py`, docs/measurements/engine.md), so
  `COMPACT_LAYOUT_VERSION` names the layout in the embedded engine's identity and recordings of the
  old one are never replayed as this one.

A request selects the compact layout with `config.extensions["metadata"]["json_layout"] ==
"compact"`. DSPy 3.4 turns the LM keyword `metadata={"json_layout": "compact"}` into exactly
that: lm15's ingest of LM keywords passes only keys it has a verdict for into
`Config.extensions` (`metadata` verbatim) and refuses any other, so a bare `json_layout=` keyword
cannot reach an engine. Servers never see it: `OpenAIEngine` leaves it out of the body it sends.

Standard library only (the runtime and the grammar module both use it).
"""

from __future__ import annotations

import json
from typing import Any, Literal

JsonLayout = Literal["indent2", "compact"]

# DSPy's JSONAdapter writes demos with json.dumps(..., indent=2): separators "," and ": ".
JSON_INDENT = 2
JSON_SEPARATORS = (",", ": ")
COMPACT_SEPARATORS = (",", ":")
# Part of the embedded engine's identity (recording keys): bumped when the compact layout changes.
COMPACT_LAYOUT_VERSION = "compact2"
# layout -> (indent, separators), as json.dumps and XGrammar's JSON grammars take them.
JSON_LAYOUTS: dict[str, tuple[int | None, tuple[str, str]]] = {
    "indent2": (JSON_INDENT, JSON_SEPARATORS),
    "compact": (None, COMPACT_SEPARATORS),
}
# Where a request names its layout: config.extensions[LAYOUT_EXTENSION][LAYOUT_KEY].
LAYOUT_EXTENSION = "metadata"
LAYOUT_KEY = "json_layout"


def dump_compact(value: Any) -> str:
    """`value` (JSON data) in the compact layout: one line, `,` and `:`, no whitespace."""
    return json.dumps(value, ensure_ascii=False, separators=COMPACT_SEPARATORS)


def layout_lm_kwargs(layout: JsonLayout, lm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`lm_kwargs` with the LM keyword that names `layout` merged into its `metadata`."""
    metadata = lm_kwargs.get(LAYOUT_EXTENSION) or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"LM keyword {LAYOUT_EXTENSION}= must be a dict, got {metadata!r}")
    return {**lm_kwargs, LAYOUT_EXTENSION: {**metadata, LAYOUT_KEY: layout}}


def json_layout_of(extensions: dict[str, Any] | None) -> JsonLayout:
    """The layout `config.extensions` names, `indent2` when it names none; a `ValueError`
    naming the key for an unknown one."""
    holder = (extensions or {}).get(LAYOUT_EXTENSION)
    layout = holder.get(LAYOUT_KEY) if isinstance(holder, dict) else None
    if layout is None:
        return "indent2"
    if layout not in JSON_LAYOUTS:
        raise ValueError(
            f'config.extensions["{LAYOUT_EXTENSION}"]["{LAYOUT_KEY}"] must be one of '
            f"{', '.join(JSON_LAYOUTS)}, got {layout!r}"
        )
    return layout


def without_layout(extensions: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of `extensions` without the layout key (and without `metadata` if that was all it
    held): what goes to a server, which decides its own whitespace."""
    out = dict(extensions or {})
    holder = out.get(LAYOUT_EXTENSION)
    if isinstance(holder, dict) and LAYOUT_KEY in holder:
        rest = {k: v for k, v in holder.items() if k != LAYOUT_KEY}
        if rest:
            out[LAYOUT_EXTENSION] = rest
        else:
            del out[LAYOUT_EXTENSION]
    return out
