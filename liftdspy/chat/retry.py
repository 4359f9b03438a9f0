"""When and how long to wait before calling a chat server again.

Retried: HTTP 408, 409, 429 and every 5xx (the statuses the openai SDK retries), time-outs and
connection errors. Waits: exponential backoff with full jitter, capped, except that a server's
`Retry-After` (seconds, milliseconds or an HTTP date) wins, up to `retry_after_cap`.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RETRY_STATUSES = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status is worth another try."""
    return status in RETRY_STATUSES or status >= 500


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter, capped, honouring a server's Retry-After."""

    model_config = ConfigDict(frozen=True)

    max_retries: int = Field(default=5, ge=0)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=30.0, ge=0)
    retry_after_cap: float = Field(default=120.0, ge=0, description="Longest Retry-After obeyed.")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based). A server's Retry-After
        wins over the backoff schedule (up to `retry_after_cap`)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return random.uniform(0, ceiling)


def retry_after_seconds(headers: Any) -> float | None:
    """Parse `retry-after-ms` / `Retry-After` (seconds or an HTTP date); None if absent or bad.
    `headers` is any mapping with `.get` (httpx headers, `email.message.Message`, a dict)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
