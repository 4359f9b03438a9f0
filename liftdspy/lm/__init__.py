"""Language-model engines for DSPy (local llama.cpp, OpenAI-compatible/Modal) and the recorder."""

from liftdspy.lm.config import LMConfig, RecorderConfig, build_lm, recorder_of
from liftdspy.lm.recorder import (
    AsyncRecordingEngine,
    RecorderMode,
    RecorderStats,
    RecordingEngine,
    RecordingMissError,
    RolloutScope,
)
from liftdspy.lm.store import RecordedCall, RecordingStore, ensure_imported

__all__ = [
    "AsyncRecordingEngine",
    "LMConfig",
    "RecordedCall",
    "RecorderConfig",
    "RecorderMode",
    "RecorderStats",
    "RecordingEngine",
    "RecordingMissError",
    "RecordingStore",
    "RolloutScope",
    "build_lm",
    "ensure_imported",
    "recorder_of",
]
