"""Export a compiled program for production: `program.json`, a prompt pack, plain-text prompts.

The prompt pack format lives in `liftdspy.runtime.pack` (readable without DSPy); this package
renders it from a DSPy program and writes the export directory (see `programs/README.md`).
"""

from liftdspy.export.lm_config import (
    LM_CONFIG_FILE,
    ExportedLMConfig,
    read_lm_config,
    redacted_lm_config,
)
from liftdspy.export.prompt_pack import ExportError, build_prompt_pack, response_format_for
from liftdspy.export.prompt_registry import RegisteredPrompt, register_prompts
from liftdspy.export.writer import (
    ExportedFile,
    ExportManifest,
    load_exported_program,
    read_manifest,
    write_export,
)

__all__ = [
    "LM_CONFIG_FILE",
    "ExportError",
    "ExportManifest",
    "ExportedFile",
    "ExportedLMConfig",
    "RegisteredPrompt",
    "build_prompt_pack",
    "load_exported_program",
    "read_lm_config",
    "read_manifest",
    "redacted_lm_config",
    "register_prompts",
    "response_format_for",
    "write_export",
]
