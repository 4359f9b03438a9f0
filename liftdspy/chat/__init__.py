"""What every client of an OpenAI-compatible `/chat/completions` server shares (DSPy-free): the
`response_format` styles servers honour and the retry policy. The DSPy engine
(`liftdspy.lm.openai_engine`) and the DSPy-free runtime (`liftdspy.runtime.endpoint`) both use
these, so an exported program talks to its server exactly as the optimized one did."""

from liftdspy.chat.response_format import (
    RESPONSE_FORMAT_STYLES,
    ResponseFormatStyle,
    check_style,
    openai_response_format,
    response_format_in_style,
)
from liftdspy.chat.retry import RetryPolicy, retry_after_seconds, retryable_status

__all__ = [
    "RESPONSE_FORMAT_STYLES",
    "ResponseFormatStyle",
    "RetryPolicy",
    "check_style",
    "openai_response_format",
    "response_format_in_style",
    "retry_after_seconds",
    "retryable_status",
]
