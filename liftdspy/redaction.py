"""Credentials out of everything liftdspy logs, stores or prints (stdlib only; `runtime` uses it).

- `redact_url`: a URL with its userinfo (`user:password@`) and secret-looking query or fragment
  parameters (`?token=...`, `#access_token=...`) replaced by `<redacted>`; the rest unchanged.
- `is_secret_key`: a config key that names a credential (`api_key`, `token`, `password`, ...),
  not a count (`max_tokens`) or the NAME of a variable holding one (`api_key_env`).
- `redact_data` / `redact_text`: the same over nested config data and free text (a YAML file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

# The last word of a key: `api_key`, `openai_api_key`, `access_token`, `password`, `secret`, ...
_SECRET_KEY = re.compile(
    r"(^|[_.-])(api_?key|key|token|secret|password|passwd|authorization|credentials?|sig|"
    r"signature)$",
    re.IGNORECASE,
)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*@)")


def is_secret_key(key: str) -> bool:
    """True for a key whose value is a credential (compared on its last word)."""
    return bool(_SECRET_KEY.search(key.strip()))


def _redact_params(text: str) -> str:
    parts = []
    for item in text.split("&"):
        name, sep, _ = item.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and is_secret_key(name) else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """`url` with userinfo and secret query/fragment parameters redacted; otherwise unchanged."""
    out = _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", url, count=1)
    head, hash_sep, fragment = out.partition("#")
    base, query_sep, query = head.partition("?")
    if query_sep:
        base = f"{base}?{_redact_params(query)}"
    if hash_sep:
        base = f"{base}#{_redact_params(fragment)}"
    return base


def redact_text(text: str) -> str:
    """Every URL inside `text` redacted (e.g. a raw YAML config, comments kept)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_data(data: Any) -> Any:
    """A copy of nested config data: values under secret keys and credentials in URLs redacted."""
    if isinstance(data, Mapping):
        return {
            key: REDACTED
            if is_secret_key(str(key)) and data[key] not in (None, "")
            else redact_data(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_data(item) for item in data]
    if isinstance(data, str):
        return redact_text(data)
    return data
