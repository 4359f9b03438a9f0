"""The diskcache `Disk` of the recording store: text keys and JSON text values, never a pickle.

diskcache's default `Disk` pickles every key and value that is not a plain str/bytes/number and
unpickles whatever a row of the cache says is a pickle: anyone who can write the cache directory
runs code in every reader (CVE-2025-69872, diskcache <= 5.6.3). Its `JSONDisk` still hands
zlib-compressed bytes to the parent class and fetches rows of any mode, a pickled one included.
DSPy 3.4 restricts its own cache with a `Disk` whose `fetch` unpickles through an allowlist; the
recording store needs no pickle at all, so `JsonDisk` uses the same extension point to allow none:

* keys are `str`, stored raw; a row whose key is not raw text is refused, unread;
* values are JSON text (`str`), stored raw in SQLite or, past diskcache's `min_file_size`, as a
  UTF-8 file inside the cache directory; a row of any other mode (pickle, binary), a raw value
  that is not text, or a file name that leaves the directory is refused, unread.

A refusal is a `RefusedEntryError` naming the cache directory; `RecordingStore` adds the key.
`pickle.load`/`loads` are never reached: `put`/`get`/`store`/`fetch`, the only places diskcache
serialises, are all overridden and never call the pickling branches of `Disk`.
"""

from __future__ import annotations

import os.path

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT, UNKNOWN

from liftdspy.errors import LiftdspyError

_MODE_NAMES = {MODE_RAW: "raw", MODE_BINARY: "binary", MODE_TEXT: "text", MODE_PICKLE: "pickle"}


class RefusedEntryError(LiftdspyError, ValueError):
    """A row of a recording store that is not text/JSON text; it was refused, not read."""


def mode_name(mode: object) -> str:
    return _MODE_NAMES.get(mode, f"unknown mode {mode!r}")  # type: ignore[arg-type]


class JsonDisk(diskcache.Disk):
    """Keys: `str`. Values: JSON text. Anything else is refused in both directions."""

    def put(self, key: object) -> tuple[str, bool]:
        if type(key) is not str:
            raise TypeError(f"recording store keys are str, not {type(key).__name__}")
        return key, True

    def get(self, key: object, raw: bool) -> str:
        if raw and type(key) is str:
            return key
        shown = bytes(key)[:24] if isinstance(key, bytes | memoryview) else key
        raise RefusedEntryError(
            f"{self._directory}: a stored key is not text (raw={bool(raw)}, "
            f"{type(key).__name__} {shown!r}): refused unread, it may be a pickle"
        )

    def store(self, value: object, read: bool, key: object = UNKNOWN) -> tuple:
        if read or type(value) is not str:
            raise TypeError(f"recording store values are JSON text, not {type(value).__name__}")
        return super().store(value, False, key=key)

    def fetch(self, mode: int, filename: str | None, value: object, read: bool) -> str:
        if not read and mode == MODE_RAW and type(value) is str:
            return value
        if not read and mode == MODE_TEXT and value is None and self._inside(filename):
            full_path = os.path.join(self._directory, filename)  # type: ignore[arg-type]
            with open(full_path, encoding="utf-8") as reader:
                return reader.read()
        raise RefusedEntryError(
            f"{self._directory}: a stored value has diskcache mode {mode_name(mode)}"
            + (f" (file {filename!r})" if filename else "")
            + (f" ({type(value).__name__})" if mode == MODE_RAW else "")
            + ": refused unread; this store only holds JSON text"
        )

    def _inside(self, filename: str | None) -> bool:
        """A value file name below the cache directory (no absolute path, no `..`, no link out)."""
        if not filename or os.path.isabs(filename) or ".." in filename.split(os.sep):
            return False
        root = os.path.realpath(self._directory)
        return os.path.realpath(os.path.join(root, filename)).startswith(root + os.sep)
