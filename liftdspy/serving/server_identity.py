"""What an OpenAI-compatible server says it is: software, version, served name, weights.

Recordings of an `lm.kind: openai` engine are keyed on its identity (`OpenAIEngine.identity()`).
The endpoint and the served name alone do not say which model answered: the same URL can serve
other weights or another vLLM tomorrow. `ServerIdentity` is the rest, declared in the config
(`lm.server`) so offline replay needs no server, and checked against the live server on the first
real call (`check_server`), so a recording is never filed under a server it did not come from.

vLLM answers `GET /version` (outside the API-key check) and `GET /v1/models` (inside it), whose
entry for the served name carries `root`, the weights it loaded.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liftdspy.errors import LiftdspyError
from liftdspy.redaction import redact_url
from liftdspy.versioning import Version


class ServerIdentityError(LiftdspyError, RuntimeError):
    """The live server is not the one the config declares (or cannot say what it is)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerIdentity(BaseModel):
    """The server behind an endpoint. Part of every recording key of calls to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Version = "1"
    software: Literal["vllm"] = "vllm"
    software_version: str = Field(min_length=1, description="e.g. vLLM's /version: 0.32.0")
    weights: str = Field(
        min_length=1, description="The loaded weights' name (last path part of vLLM's `root`)."
    )

    def identity_fields(self) -> dict[str, str]:
        """Fields merged into the engine identity (all strings, no credentials)."""
        return {
            "server": self.software,
            "server_version": self.software_version,
            "server_weights": self.weights,
        }


def _get_json(url: str, api_key: str | None, timeout: float) -> object:
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def probe_vllm(
    base_url: str, served_name: str, api_key: str | None, *, timeout: float = 10.0
) -> ServerIdentity:
    """Ask the vLLM server at `base_url` (`.../v1`) what it is. Errors name the endpoint only."""
    where = redact_url(base_url)
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        version = _get_json(f"{root}/version", None, timeout)
        models = _get_json(f"{base_url.rstrip('/')}/models", api_key, timeout)
    except urllib.error.HTTPError as exc:
        raise ServerIdentityError(
            f"{where} answered HTTP {exc.code} when asked what it serves", status=exc.code
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServerIdentityError(
            f"cannot ask {where} what it serves: {type(exc).__name__}"
        ) from None
    if not isinstance(version, dict) or not version.get("version"):
        raise ServerIdentityError(f"{where} has no vLLM /version answer (is it vLLM?)")
    entries = models.get("data", []) if isinstance(models, dict) else []
    entry = next((m for m in entries if isinstance(m, dict) and m.get("id") == served_name), None)
    if entry is None:
        served = [m.get("id") for m in entries if isinstance(m, dict)]
        raise ServerIdentityError(f"{where} does not serve {served_name!r} (it serves {served})")
    weights = PurePosixPath(str(entry.get("root") or served_name).rstrip("/")).name
    return ServerIdentity(software_version=str(version["version"]), weights=weights)


def check_server(
    declared: ServerIdentity,
    base_url: str,
    served_name: str,
    api_key: str | None,
    *,
    timeout: float = 10.0,
) -> None:
    """Raise `ServerIdentityError` unless the live server is `declared`."""
    live = probe_vllm(base_url, served_name, api_key, timeout=timeout)
    if live != declared:
        raise ServerIdentityError(
            f"{redact_url(base_url)} is {live.software} {live.software_version} serving "
            f"{live.weights!r}, but lm.server declares {declared.software} "
            f"{declared.software_version} serving {declared.weights!r}; update lm.server (its "
            "recordings are keyed on it) or point base_url at the declared server"
        )
