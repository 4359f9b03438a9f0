"""Committed recordings: `cache/recordings/<name>.jsonl` is imported into a store on first use.

A fresh clone has the committed JSONL but no `cache/diskcache/<name>` store. `build_lm` calls
`import_committed(store, name)`, so an LM whose recorder is named `demo` replays
`cache/recordings/demo.jsonl` without a manual `liftdspy cache import`. The import happens once
per file content (`ensure_imported` marks the file's sha256 in the store), so a re-recorded and
re-committed JSONL is imported again, and an unchanged one costs one hash of the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from liftdspy.lm.store import RecordingStore, default_jsonl_path, ensure_imported

logger = logging.getLogger(__name__)


def committed_recording(name: str) -> Path | None:
    """The committed JSONL for a recorder name (`<cache dir>/recordings/<name>.jsonl`), if any."""
    path = default_jsonl_path(name)
    return path if path.is_file() else None


def import_committed(store: RecordingStore, name: str) -> int:
    """Import the committed recording for `name` into `store` unless this content already is.

    Returns how many entries were imported now (0: no committed file, or already imported).
    """
    path = committed_recording(name)
    if path is None:
        return 0
    count = ensure_imported(path, store)
    if count:
        logger.info("Recorder %r: imported %d committed calls from %s", name, count, path)
    return count
