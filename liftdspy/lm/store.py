"""Recorded LM calls on disk: a `diskcache.Cache` of `RecordedCall` entries, and JSONL files.

One entry per distinct request (its key is a sha256 chosen by `liftdspy.lm.recorder`). diskcache
keeps every entry in SQLite (WAL journal), so many threads and processes can read and write one
store at once, and a writer killed mid-stream loses nothing it had already committed.

The store never unpickles: its `Disk` is `liftdspy.lm.json_disk.JsonDisk` (text keys, JSON text
values, every other row refused unread), bookkeeping keys are text too, and opening a store looks
up (through an index of its own: no value is read) any row whose key or mode JsonDisk would
refuse, so that a store holding a planted pickle, or written by liftdspy before it became
JSON-only, is refused with what to do before any entry is read.

The JSONL form (`cache/recordings/<name>.jsonl`) is the reviewable, committable copy: one entry per
line, sorted by key, keys sorted inside each line, so a re-recording shows up as a line-level diff.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW, MODE_TEXT
from dspy.lm15 import Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# DSPy's own response cache round-trips lm15 objects with these (private, via dspy_compat).
from liftdspy.dspy_compat import request_to_dict, response_from_dict, response_to_dict
from liftdspy.errors import LiftdspyError
from liftdspy.lm.json_disk import JsonDisk, RefusedEntryError, mode_name
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "LIFTDSPY_CACHE_DIR"
_IMPORT_MARK = "import:"  # + sha256 of an imported JSONL file
FORMAT_KEY = "liftdspy:store-format"
FORMAT = '{"format":"json","version":"1"}'
_ENTRY_KEY = re.compile(r"^[0-9a-f]{64}$")
# Rows JsonDisk refuses by their key or mode, found through a covering index (a few ms for 20,000
# entries; a table scan reads every value). A raw value that is not text, or a text-mode row
# without a file, JsonDisk refuses when it is read.
_ROWS_INDEX = "liftdspy_raw_mode_key"
_HAS_INDEX = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
_FOREIGN_ROWS = f"""
    SELECT key, raw, mode FROM Cache
    WHERE raw != 1 OR typeof(key) != 'text' OR mode NOT IN ({MODE_RAW}, {MODE_TEXT})
    LIMIT 3
"""
_MARKED = "SELECT 1 FROM Cache WHERE key = ? AND raw = 1"


class RecordingStoreError(LiftdspyError, ValueError):
    """A recording file or entry is malformed; the message names the file and line."""


class RecordedCall(BaseModel):
    """One recorded engine call: what was asked (identity + request), and what came back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Version = "1"
    key: str = Field(pattern=r"^[0-9a-f]{64}$")
    identity: dict[str, str]
    request: dict[str, Any]
    rollout_id: str | int | None = None
    candidate: int = 0
    response: dict[str, Any]
    created: str
    model: str
    latency_s: float
    truncated: bool = False  # the answer ended at max_tokens (finish_reason "length")

    @model_validator(mode="before")
    @classmethod
    def _truncated_from_response(cls, data: Any) -> Any:
        # Entries recorded before the field existed carry it only in the response.
        if isinstance(data, dict) and "truncated" not in data:
            response = data.get("response")
            finish = response.get("finish_reason") if isinstance(response, dict) else None
            data = {**data, "truncated": finish == "length"}
        return data

    def to_response(self) -> Response:
        return response_from_dict(self.response)

    def summary(self, width: int = 60) -> str:
        return f"{self.model} {self.key[:12]} {last_message_text(self.request)[:width]!r}"


def request_json(request: Request) -> dict[str, Any]:
    """The full canonical request as plain JSON data (messages, system, tools, config)."""
    return request_to_dict(request)


def response_json(response: Response) -> dict[str, Any]:
    return response_to_dict(response, include_provider_data=True)


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Bump when the key material changes: every stored key then misses.
KEY_VERSION = 1


def recording_key(
    identity: dict[str, str], request: dict[str, Any], rollout_id: Any, candidate: int = 0
) -> str:
    """sha256 of all that changes an answer: engine identity, full request, rollout, candidate."""
    material = {
        "v": KEY_VERSION,
        "identity": identity,
        "request": request,
        "rollout_id": rollout_id,
        "candidate": candidate,
    }
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def last_message_text(request: dict[str, Any]) -> str:
    """The text of the last message of a request dict (for error messages and summaries)."""
    messages = request.get("messages") or []
    if not messages:
        return ""
    parts = messages[-1].get("parts") or []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)).strip()


def project_root() -> Path:
    """The checkout holding pyproject.toml (editable install), else the current directory."""
    package_parent = Path(__file__).resolve().parents[2]
    if (package_parent / "pyproject.toml").is_file():
        return package_parent
    return Path.cwd()


def cache_dir() -> Path:
    """`$LIFTDSPY_CACHE_DIR`, else `<project root>/cache`."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured) if configured else project_root() / "cache"


def default_store_path(name: str) -> Path:
    return cache_dir() / "diskcache" / name


def default_jsonl_path(name: str) -> Path:
    return cache_dir() / "recordings" / f"{name}.jsonl"


class RecordingStore:
    """A directory of recorded calls, safe to share between threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        # No size limit: recordings are data, never evicted behind the user's back.
        self._cache = diskcache.Cache(
            str(self.path), disk=JsonDisk, size_limit=2**62, eviction_policy="none"
        )
        try:
            self._check_format()
        except BaseException:
            self._cache.close()
            raise

    def _check_format(self) -> None:
        """Refuse a store holding rows that are not JSON text, or of an unknown format."""
        # diskcache's own connection (`_sql`, pinned diskcache): no value is read or decoded.
        if not self._cache._sql(_HAS_INDEX, (_ROWS_INDEX,)).fetchall():  # no write when it is there
            self._cache._sql(f"CREATE INDEX IF NOT EXISTS {_ROWS_INDEX} ON Cache (raw, mode, key)")
        foreign = self._cache._sql(_FOREIGN_ROWS).fetchall()
        marked = bool(self._cache._sql(_MARKED, (FORMAT_KEY,)).fetchall())
        if foreign:
            raise RecordingStoreError(self._foreign_message(foreign, marked))
        if not marked:
            if len(self._cache):
                raise RecordingStoreError(
                    f"{self.path}: this recording store has no format mark: it was written by "
                    "liftdspy before stores became JSON-only, or by something else. " + _MIGRATION
                )
            self._cache.set(FORMAT_KEY, FORMAT)
            return
        found = self._cache.get(FORMAT_KEY)
        if found != FORMAT:
            raise RecordingStoreError(
                f"{self.path}: unknown recording store format {found!r} (expected {FORMAT}); "
                "it was written by another liftdspy version. " + _MIGRATION
            )

    def _foreign_message(self, rows: list[tuple], marked: bool) -> str:
        shown = []
        for key, raw, mode in rows:
            name = key if isinstance(key, str) and raw == 1 else f"a non-text key ({raw=})"
            shown.append(f"{name} (diskcache mode {mode_name(mode)})")
        origin = (
            "something other than liftdspy wrote to it (a pickle is how code is planted in a "
            "diskcache directory)"
            if marked
            else "it was written by liftdspy before stores became JSON-only (its bookkeeping "
            "keys are pickles), or by something else"
        )
        return (
            f"{self.path}: refused unread: entries that are not JSON text, e.g. "
            + "; ".join(shown)
            + f"; {origin}. "
            + _MIGRATION
        )

    @classmethod
    def named(cls, name: str) -> RecordingStore:
        return cls(default_store_path(name))

    def __enter__(self) -> RecordingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cache.close()

    def get(self, key: str) -> RecordedCall | None:
        try:
            raw = self._cache.get(key)
        except RefusedEntryError as exc:
            raise RecordingStoreError(f"entry {key}: {exc}. {_MIGRATION}") from None
        if raw is None:
            return None
        try:
            return RecordedCall.model_validate_json(raw)
        except ValidationError as exc:
            raise RecordingStoreError(f"{self.path}: entry {key[:12]} is malformed: {exc}") from exc

    def put(self, entry: RecordedCall) -> None:
        self._cache.set(entry.key, canonical_json(entry.model_dump(mode="json")))

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def keys(self) -> Iterator[str]:
        """Entry keys (sha256 hex); bookkeeping keys (the format mark, import marks) are skipped."""
        try:
            for key in self._cache.iterkeys():
                if _ENTRY_KEY.match(key):
                    yield key
        except RefusedEntryError as exc:
            raise RecordingStoreError(f"{exc}. {_MIGRATION}") from None

    def entries(self) -> Iterator[RecordedCall]:
        for key in sorted(self.keys()):
            entry = self.get(key)
            if entry is not None:
                yield entry

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def volume(self) -> int:
        """Bytes on disk (SQLite file plus any value files)."""
        return int(self._cache.volume())

    def per_model(self) -> dict[str, int]:
        return dict(Counter(entry.model for entry in self.entries()))

    def clear(self) -> int:
        """Delete every entry (the format mark stays); returns how many entries there were."""
        count = len(self)
        self._cache.clear()
        self._cache.set(FORMAT_KEY, FORMAT)
        return count

    def export_jsonl(self, path: Path | str) -> int:
        """Write all entries sorted by key, one canonical JSON object per line; return the count."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [canonical_json(entry.model_dump(mode="json")) for entry in self.entries()]
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        tmp.replace(path)
        return len(lines)

    def import_jsonl(self, path: Path | str) -> int:
        """Add every entry of a JSONL file (existing keys are overwritten). Returns the count.

        Each entry's key is checked against its identity/request/rollout/candidate, so a hand-edited
        request that no longer matches its key is refused instead of answering the wrong call.
        """
        path = Path(path)
        entries = list(read_jsonl(path))
        for lineno, entry in entries:
            expected = recording_key(
                entry.identity, entry.request, entry.rollout_id, entry.candidate
            )
            if expected != entry.key:
                raise RecordingStoreError(
                    f"{path}:{lineno}: key {entry.key[:12]} does not match its request "
                    f"(expected {expected[:12]}); re-record instead of editing requests by hand"
                )
        with self._cache.transact():
            for _, entry in entries:
                self.put(entry)
        return len(entries)

    def mark_imported(self, digest: str) -> None:
        self._cache.set(_IMPORT_MARK + digest, "true")

    def was_imported(self, digest: str) -> bool:
        return _IMPORT_MARK + digest in self._cache


_MIGRATION = (
    "A recording store is only ever read as JSON text, never unpickled. Delete the directory "
    "(`rm -r` it; `liftdspy cache clear` would have to open it): committed recordings "
    "(cache/recordings/NAME.jsonl) are imported again on first use, other JSONL files with "
    "`liftdspy cache import FILE`; calls that were never exported must be recorded again"
)


def read_jsonl(path: Path) -> Iterator[tuple[int, RecordedCall]]:
    """(line number, entry) for each non-blank line; errors say `file:line: message`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingStoreError(f"{path}: cannot read recordings: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, RecordedCall.model_validate_json(line)
        except ValidationError as exc:
            raise RecordingStoreError(f"{path}:{lineno}: not a recorded call: {exc}") from exc


def ensure_imported(jsonl_path: Path | str, store: RecordingStore) -> int:
    """Import a JSONL recording file once per content version; later calls are no-ops.

    Returns the number of entries imported now (0 when this exact file content was imported before).
    """
    path = Path(jsonl_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if store.was_imported(digest):
        return 0
    count = store.import_jsonl(path)
    store.mark_imported(digest)
    logger.info("Imported %d recorded calls from %s into %s", count, path, store.path)
    return count
