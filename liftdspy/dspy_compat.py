"""The one module that imports DSPy's private names.

DSPy 3.4 does not export these; liftdspy needs them to render exactly what DSPy sends
(`liftdspy.export`) and to serialise lm15 requests/responses the way DSPy's own cache does
(`liftdspy.lm.store`). Keeping them here means a DSPy upgrade breaks one import, named in the
error, and `tests/test_dspy_compat.py` checks each still behaves as liftdspy relies on.
"""

from __future__ import annotations

from typing import Any

from dspy._vendor.lm15.serde import request_to_dict, response_from_dict, response_to_dict
from dspy.adapters.json_adapter import (
    _get_structured_outputs_response_format as structured_outputs_response_format,
)
from dspy.clients.legacy_requests import _strict_json_schema as strict_json_schema


class _SchemaCapableLM:
    """What an adapter reads of an LM before a call: it takes `response_format` and JSON schemas
    (as `LocalEngine` and `OpenAIEngine` declare)."""

    supported_params = frozenset({"response_format"})
    supports_response_schema = True


def adapter_lm_kwargs(adapter: Any, signature: Any) -> dict[str, Any]:
    """The LM keywords `adapter` adds to a call of `signature` on a schema-capable LM (JSONAdapter
    and its subclasses: `response_format`, and what they add beside it; ChatAdapter: none).
    Uses the adapter's private `_prepare_response_format`, the step its `__call__` runs."""
    kwargs: dict[str, Any] = {}
    prepare = getattr(adapter, "_prepare_response_format", None)
    if prepare is not None:
        prepare(_SchemaCapableLM(), kwargs, signature)
    return kwargs


__all__ = [
    "adapter_lm_kwargs",
    "request_to_dict",
    "response_from_dict",
    "response_to_dict",
    "strict_json_schema",
    "structured_outputs_response_format",
]
