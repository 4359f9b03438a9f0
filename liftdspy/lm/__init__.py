"""Language-model engines for DSPy (local llama.cpp, OpenAI-compatible/Modal) and the recorder."""

from liftdspy.lm.config import LMConfig, RecorderConfig, build_lm, recorder_of
from liftdspy.lm.local import LocalEngine
from liftdspy.lm.recorder import (
    AsyncRecordingEngine,
    RecorderMode,
    RecorderStats,
    RecordingEngine,
    RecordingMissError,
    RolloutScope,
)
from liftdspy.lm.shortcuts import local_lm, modal_lm, openai_lm
from liftdspy.lm.store import RecordedCall, RecordingStore, ensure_imported

__all__ = [
    "AsyncRecordingEngine",
    "LMConfig",
    "LocalEngine",
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
    "local_lm",
    "modal_lm",
    "openai_lm",
    "recorder_of",
]
