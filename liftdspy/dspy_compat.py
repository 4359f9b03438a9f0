"""The one module that imports DSPy's private names.

DSPy 3.4 does not export these; liftdspy needs them to render exactly what DSPy sends
(`liftdspy.export`) and to serialise lm15 requests/responses the way DSPy's own cache does
(`liftdspy.lm.store`). Keeping them here means a DSPy upgrade breaks one import, named in the
error, and `tests/test_dspy_compat.py` checks each still behaves as liftdspy relies on.
"""

from __future__ import annotations

from dspy._vendor.lm15.serde import request_to_dict, response_from_dict, response_to_dict
from dspy.adapters.json_adapter import (
    _get_structured_outputs_response_format as structured_outputs_response_format,
)
from dspy.clients.legacy_requests import _strict_json_schema as strict_json_schema

__all__ = [
    "request_to_dict",
    "response_from_dict",
    "response_to_dict",
    "strict_json_schema",
    "structured_outputs_response_format",
]
