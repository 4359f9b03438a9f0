"""The one Markdown code fence an LM may wrap its whole answer in (```python ... ```).

Parsed strictly: only a fence around the whole answer (any language tag, surrounding whitespace
allowed) is stripped; prose before or after a fence leaves the text as it is, so an answer that
is not code (or not JSON) is scored as what it is. DSPy-free (the runtime uses it too).
"""

from __future__ import annotations

import re

_WHOLE_ANSWER_FENCE = re.compile(r"^\s*```[A-Za-z0-9_+-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def strip_code_fence(text: str) -> str:
    """The content of a fence around the whole of `text`, or `text` unchanged."""
    match = _WHOLE_ANSWER_FENCE.match(text)
    return match.group(1) if match else text
